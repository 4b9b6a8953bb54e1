// dip: run SwiGLU LLMs from GGUF files; see README.md.

#include <csignal>
#include <cstdio>
#include <string>

#include "cli/commands.h"
#include "util/error.h"

int main(int argc, char** argv) {
  // A reader that closed our output (`dip info | head`) has all it wants: writes to it fail
  // quietly (EPIPE) instead of killing the process with SIGPIPE, which a script under
  // `set -o pipefail` takes for a failure; the work (a conversion, say) still finishes, and
  // generation stops at the next token.
  std::signal(SIGPIPE, SIG_IGN);
  CLI::App app{
      "dip: LLM inference with dynamic input pruning for devices whose DRAM cannot hold the model"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "dip " DIP_VERSION);
  // --help shows every option's default.
  app.option_defaults()->always_capture_default();
  // One line per error, like every other error of dip's (CLI11 adds a "Run with --help" line).
  app.failure_message([](const CLI::App*, const CLI::Error& e) {
    return "error: " + std::string(e.what()) + "\n";
  });
  dip::cli::add_generate(app);
  dip::cli::add_chat(app);
  dip::cli::add_serve(app);
  dip::cli::add_perplexity(app);
  dip::cli::add_info(app);
  dip::cli::add_tokenize(app);
  dip::cli::add_eval(app);
  dip::cli::add_make_test_model(app);
  dip::cli::add_convert(app);
  dip::cli::add_convert_lora(app);
  dip::cli::add_make_test_lora(app);
  dip::cli::add_calibrate(app);
  dip::cli::add_sweep(app);
  dip::cli::add_simulate(app);
  dip::cli::add_flash_probe(app);
  // llama.cpp's flags that have another form here: a one-line pointer instead of CLI11's
  // reading of "-cnv" as three short flags.
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const char* hint = a == "-cnv" || a == "--conversation" ? "use `dip chat` for a conversation"
                       : a == "-ngl" || a == "--n-gpu-layers" || a == "--gpu-layers"
                           ? "dip runs on the CPU: no GPU layers to set"
                       : a == "-fa" || a == "--flash-attn" ? "dip's attention needs no flag"
                       : a == "-i" || a == "--interactive"
                           ? "use `dip chat` for an interactive session"
                       : a == "--mlock" || a == "--no-mmap"
                           ? "dip maps the model and budgets its memory itself (see --dram-budget)"
                           : nullptr;
    if (hint) {
      std::fprintf(stderr, "error: %s is llama.cpp's flag: %s\n", a.c_str(), hint);
      return 1;
    }
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const dip::Error& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "error: out of memory\n");
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
