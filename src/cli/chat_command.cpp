// `dip chat`: the model stays loaded and answers line after line; the conversation so far stays
// in the KV cache, so each turn evaluates only its own tokens. Ctrl-C stops the current answer,
// Ctrl-D (end of input) ends the session.
#include <fmt/format.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>

#include "api/conversation.h"
#include "api/model_files.h"
#include "api/run.h"
#include "cli/commands.h"
#include "cli/flags.h"
#include "cli/terminal.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"

namespace dip::cli {

namespace {

std::atomic<bool> g_interrupted{false};

void on_sigint(int) { g_interrupted = true; }

// SIGINT sets a flag instead of ending the process while an answer is generated.
class InterruptScope {
 public:
  InterruptScope() {
    g_interrupted = false;
    struct sigaction sa {};
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_);
  }
  ~InterruptScope() { sigaction(SIGINT, &old_, nullptr); }

 private:
  struct sigaction old_ {};
};

}  // namespace

void add_chat(CLI::App& app) {
  auto* c = app.add_subcommand(
      "chat", "talk to a model: each line read is answered, the conversation stays in context");
  auto o = std::make_shared<ModelOpts>();
  auto sp = std::make_shared<SamplingParams>();
  auto so = std::make_shared<SparsityOptions>();
  auto fo = std::make_shared<FlashOptions>();
  auto n_predict = std::make_shared<int>(256);
  auto batch = std::make_shared<uint32_t>(0);
  auto quiet = std::make_shared<bool>(false);
  auto ignore_eos = std::make_shared<bool>(false);
  auto template_name = std::make_shared<std::string>();
  add_model_opts(c, *o, true);
  add_sparsity_opts(c, *so, true);
  add_flash_opts(c, *fo);
  add_sampling_opts(c, *sp);
  c->add_option("-n,--n-predict", *n_predict, "at most this many tokens per answer")
      ->check(CLI::Range(1, 1 << 20));
  c->add_option("-b,--batch-size", *batch,
                "tokens per internal batch (default 512, 32 with --flash)")
      ->check(CLI::Range(1, 1 << 16));
  c->add_flag("-q,--quiet", *quiet, "no timings after each answer");
  c->add_flag("--ignore-eos", *ignore_eos, "answers end only at -n tokens (or Ctrl-C)");
  c->add_option("--chat-template", *template_name,
                "chat format: chatml, llama2, llama3, phi3, gemma, deepseek, ... or none "
                "(default: the model's template, recognised)");
  c->callback([=] {
    finish_sampling_opts(c, *sp);
    auto model = load_model(o->model, o->adapters());
    const uint32_t n_ctx = pick_ctx(*model, o->ctx, 1);
    Runner run(*model, {o->threads, *batch, *so, *fo}, n_ctx, 1);
    run.warm_up();  // the first answer does not wait for the weights' pages and layouts
    const bool tty = isatty(0);
    const bool out_tty = isatty(1);  // answers shown on a terminal lose their control characters
    std::string why;
    const std::unique_ptr<ChatFormat> format = resolve_chat_format(*model, *template_name, &why);
    if (!*quiet) {
      std::fprintf(stderr,
                   "dip chat: %s, context %u tokens, MLP %s, seed %llu; %s; Ctrl-C stops an "
                   "answer, Ctrl-D ends\n",
                   model->path().c_str(), n_ctx, method_name(run.sparsity_config().method),
                   (unsigned long long)sp->seed,
                   format ? fmt::format("chat template {}", format->name()).c_str() : why.c_str());
    }
    GenerateOptions g{*sp, *n_predict, *ignore_eos};
    Conversation conv(run, format.get());
    std::string line;
    while (true) {
      if (tty) std::fputs("> ", stderr);
      if (!std::getline(std::cin, line)) break;
      if (line.empty()) continue;
      // Plain continuation: each line starts a new line of the text.
      if (!format && run.session().n_past() > 0) std::fputs("\n", stdout);
      Turn turn;
      try {
        InterruptScope scope;
        turn = conv.reply(line, g, [out_tty](int32_t, const std::string& piece) {
          return write_generated(piece, out_tty) && !g_interrupted;
        });
      } catch (const LineTooLong& e) {  // the session goes on with the next line
        std::fprintf(stderr, "error: %s\n", e.what());
        continue;
      }
      std::fputs("\n", stdout);
      std::fflush(stdout);
      if (turn.restarted)
        std::fprintf(
            stderr, "[the conversation filled the context of %u tokens: it started anew]\n", n_ctx);
      if (turn.context_limited)
        std::fprintf(stderr, "[the answer reached the end of the context of %u tokens]\n", n_ctx);
      const GenerateResult& r = turn.result;
      if (!*quiet) {
        const int n = int(r.tokens.size());
        std::string flash;
        if (run.flash()) {
          const auto& f = r.report["flash"];
          flash = fmt::format(" | flash {:.2f} MiB/token, hit rate {:.3f}",
                              f["flash_bytes_per_token"].get<double>() / 1048576.0,
                              f["hit_rate"].get<double>());
        }
        std::fprintf(stderr,
                     "[prompt %zu tokens, %.2f tokens/s | answer %d tokens, %.2f tokens/s%s%s]\n",
                     turn.evaluated, double(turn.evaluated) / r.prompt_s, n,
                     n > 1 ? double(n - 1) / r.gen_s : 0.0, flash.c_str(),
                     r.stopped_by_callback ? " | stopped" : "");
      }
    }
  });
}

}  // namespace dip::cli
