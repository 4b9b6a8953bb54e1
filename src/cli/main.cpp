// dip: run SwiGLU LLMs from GGUF files; see README.md.

#include <csignal>
#include <cstdio>

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
  dip::cli::add_calibrate(app);
  dip::cli::add_sweep(app);
  dip::cli::add_simulate(app);
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
