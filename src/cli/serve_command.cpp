// `dip serve`: OpenAI-compatible HTTP endpoints over one model and run (server/server.h).
#include <cstdio>
#include <memory>

#include "api/model_files.h"
#include "cli/commands.h"
#include "cli/flags.h"
#include "model/model.h"
#include "server/server.h"

namespace dip::cli {

void add_serve(CLI::App& app) {
  auto* c = app.add_subcommand(
      "serve", "an OpenAI-compatible HTTP server (/v1/completions, /v1/chat/completions, ...)");
  auto o = std::make_shared<ModelOpts>();
  auto so = std::make_shared<SparsityOptions>();
  auto fo = std::make_shared<FlashOptions>();
  auto srv = std::make_shared<ServerOptions>();
  auto batch = std::make_shared<uint32_t>(0);
  add_model_opts(c, *o, true);
  add_sparsity_opts(c, *so, true);
  add_flash_opts(c, *fo);
  c->add_option("--host", srv->host, "address to listen on");
  c->add_option("--port", srv->port, "port (0: any free one, printed)")
      ->check(CLI::Range(0, 65535));
  c->add_option("--api-key", srv->api_key,
                "require \"Authorization: Bearer KEY\" on every request");
  c->add_option("--max-body", srv->max_body, "largest request body in bytes");
  c->add_option("--chat-template", srv->chat_template,
                "chat format for /v1/chat/completions: chatml, llama2, llama3, phi3, gemma, "
                "deepseek, ... or none (default: the model's template, recognised)");
  c->add_option("-b,--batch-size", *batch,
                "tokens per internal batch (default 512, 32 with --flash)")
      ->check(CLI::Range(1, 1 << 16));
  c->callback([=] {
    auto model = load_model(o->model, o->adapters());
    const uint32_t n_ctx = pick_ctx(*model, o->ctx, 1);
    serve(*model, {o->threads, *batch, *so, *fo}, n_ctx, *srv, [&](int port) {
      std::fprintf(stderr, "dip serve: %s on http://%s:%d (context %u tokens)\n",
                   model->path().c_str(), srv->host.c_str(), port, n_ctx);
    });
  });
}

}  // namespace dip::cli
