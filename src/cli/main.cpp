// dip: run SwiGLU LLMs from GGUF files; see README.md.
#include <unistd.h>

#include <csignal>
#include <cstdio>

#include "cli/commands.h"
#include "util/error.h"

namespace {
// A reader that closed our output (`dip info | head`) has all it wants: end quietly with success
// instead of dying of SIGPIPE, which a script under `set -o pipefail` takes for a failure.
// Temporary output files of an unfinished write are left as temporaries, never as the target.
extern "C" void on_sigpipe(int) { _exit(0); }
}  // namespace

int main(int argc, char** argv) {
  std::signal(SIGPIPE, on_sigpipe);
  CLI::App app{
      "dip: LLM inference with dynamic input pruning for devices whose DRAM cannot hold the model"};
  app.require_subcommand(1);
  // One line per error, like every other error of dip's (CLI11 adds a "Run with --help" line).
  app.failure_message([](const CLI::App*, const CLI::Error& e) {
    return "error: " + std::string(e.what()) + "\n";
  });
  dip::cli::add_generate(app);
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
