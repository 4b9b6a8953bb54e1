// Helpers shared by the `dip` subcommands: model options, the default model, progress bars.
#pragma once
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace dip {
class Model;
}

namespace dip::cli {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0);
int default_threads();

// The model used when -m is not given: $DIP_MODEL, else models/default.gguf next to the
// source tree the binary was built from.
std::string resolve_model(const std::string& m);

struct ModelOpts {
  std::string model;
  int threads = default_threads();
  uint32_t ctx = 0;
};
void add_model_opts(CLI::App* c, ModelOpts& o, bool with_ctx);

// An explicit --ctx-size is honoured as given (too long a prompt is then an error); by default
// the context is the model's (at most 4096), grown to fit the request.
uint32_t pick_ctx(const Model& m, uint32_t want, size_t need);

// "a,b,,c" -> {"a", "b", "c"} (empty items dropped).
std::vector<std::string> split_commas(const std::string& s);
// Comma-separated numbers; a non-number or an empty list is an error naming `what` (the flag).
std::vector<double> parse_number_list(const std::string& s, const char* what);

// A progress line on stderr: a bar on a terminal, one line per update otherwise.
void print_progress(const char* what, size_t done, size_t total, const std::string& detail);
void end_progress();

}  // namespace dip::cli
