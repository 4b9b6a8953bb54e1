// A conversation with a model: turn after turn from one KV cache. Each user line is added to the
// messages, rendered with the chat format (or appended as plain text without one), and only what
// follows the text already in the cache is evaluated; when the format rewrites earlier turns the
// conversation is evaluated anew, and when it would overflow the context it restarts from the
// new line. An answer ends at -n tokens or where the context does. What `dip chat` does, for any
// program.
#pragma once
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "api/run.h"
#include "tokenizer/chat_template.h"
#include "util/error.h"

namespace dip {

// A line that, with room for its answer, does not fit in the context even alone. The
// conversation is then empty, and may go on with another line.
class LineTooLong : public Error {
 public:
  using Error::Error;
};

struct Turn {
  GenerateResult result;
  std::string answer;            // the generated text
  size_t evaluated = 0;          // prompt tokens this turn evaluated
  bool restarted = false;        // the context was full: the conversation started anew
  bool context_limited = false;  // the answer ended where the context does, before -n tokens
};

class Conversation {
 public:
  // format: null for plain continuation. The runner's session is the conversation's.
  Conversation(Runner& run, const ChatFormat* format) : run_(run), format_(format) {}

  // The user's line and the model's answer, streamed through on_token.
  Turn reply(const std::string& line, const GenerateOptions& g, const TokenCallback& on_token);
  const std::vector<ChatMessage>& messages() const { return messages_; }

 private:
  Runner& run_;
  const ChatFormat* format_;
  std::vector<ChatMessage> messages_;
  std::string in_context_;        // the text whose tokens the KV cache holds (chat formats)
  std::vector<int32_t> pending_;  // the last answer's final token: sampled, not yet evaluated
};

}  // namespace dip
