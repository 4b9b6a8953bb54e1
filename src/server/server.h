// `dip serve`: an HTTP server with OpenAI's endpoints over one loaded model and run
// (/v1/completions, /v1/chat/completions with server-sent-event streaming, /v1/models, /health).
// Requests are served one at a time in arrival order, each from a fresh context; a client that
// goes away mid-stream ends its generation at the next token.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "api/run.h"

namespace dip {

class Model;

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;            // 0: any free port (printed)
  std::string api_key;        // when set, every request needs "Authorization: Bearer KEY"
  size_t max_body = 1 << 20;  // bytes
  int http_threads = 8;       // connections handled at once (generation itself is one at a time)
  std::string chat_template;  // --chat-template: a format name, "none", or empty (the model's)
};

// Serves until the process is stopped. ready(port) is called once the socket listens.
void serve(const Model& m, const RunOptions& run, uint32_t n_ctx, const ServerOptions& o,
           const std::function<void(int port)>& ready);

}  // namespace dip
