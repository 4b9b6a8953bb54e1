#include "cli/common.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <sstream>
#include <thread>

#include "model/model.h"
#include "util/error.h"
#include "util/threadpool.h"

namespace dip::cli {

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

int default_threads() { return available_cores(); }

namespace {
// The folder of the running executable (not of the source tree it was built from).
std::filesystem::path executable_dir() {
  std::error_code ec;
  const std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::filesystem::path() : exe.parent_path();
}
}  // namespace

std::string resolve_model(const std::string& m) {
  if (!m.empty()) return m;
  if (const char* env = std::getenv("DIP_MODEL"); env && *env) return env;
  // A build tree (build/<preset>/dip next to the repository's models/), or an install prefix
  // (bin/dip with share/dip/models/).
  const std::filesystem::path dir = executable_dir();
  std::vector<std::filesystem::path> tried;
  for (const auto& p : {dir / ".." / ".." / "models" / "default.gguf",
                        dir / ".." / "share" / "dip" / "models" / "default.gguf"}) {
    std::error_code ec;
    if (std::filesystem::is_regular_file(p, ec)) return p.lexically_normal().string();
    tried.push_back(p.lexically_normal());
  }
  fail("no model given (-m), DIP_MODEL unset, and no default model at {} or {}", tried[0].string(),
       tried[1].string());
}

void add_model_opts(CLI::App* c, ModelOpts& o, bool with_ctx) {
  c->add_option("-m,--model", o.model, "GGUF model file");
  c->add_option("-t,--threads", o.threads, "threads")->check(CLI::Range(1, 1024));
  if (with_ctx) {
    c->add_option("-c,--ctx,--ctx-size", o.ctx, "context size (default: the model's, at most 4096)")
        ->check(CLI::Range(1u, 1u << 20));
  }
}

uint32_t pick_ctx(const Model& m, uint32_t want, size_t need) {
  const uint32_t trained = m.hparams().n_ctx_train;
  if (want) {
    if (trained && want > trained) {
      std::fprintf(
          stderr,
          "warning: context %u is beyond the model's trained context of %u: quality will suffer\n",
          want, trained);
    }
    return want;
  }
  // Past the trained context a model's output degrades, and the attention's time grows with the
  // square of the length: that takes an explicit -c, never a silent raise.
  if (trained && need > trained) {
    fail(
        "the prompt and the tokens to generate need a context of {} tokens, beyond the model's "
        "trained context of {}: "
        "shorten the prompt or -n, or give -c {} to run beyond it anyway",
        need, trained, need);
  }
  return std::max<uint32_t>(std::min<uint32_t>(trained ? trained : 4096, 4096), uint32_t(need));
}

void print_progress(const char* what, size_t done, size_t total, const std::string& detail) {
  if (isatty(2)) {
    const int width = 30, filled = total ? int(width * done / total) : width;
    std::fprintf(stderr, "\r%s [%s%s] %zu/%zu %s", what, std::string(filled, '#').c_str(),
                 std::string(width - filled, '.').c_str(), done, total, detail.c_str());
  } else {
    std::fprintf(stderr, "%s [%zu/%zu] %s\n", what, done, total, detail.c_str());
  }
}

void end_progress() {
  if (isatty(2)) std::fputs("\n", stderr);
}

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> v;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (!item.empty()) v.push_back(item);
  }
  return v;
}

std::vector<double> parse_number_list(const std::string& s, const char* what) {
  std::vector<double> v;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    char* end = nullptr;
    const double x = std::strtod(item.c_str(), &end);
    if (item.empty() || *end) fail("{}: '{}' is not a number", what, item);
    v.push_back(x);
  }
  if (v.empty()) fail("{}: empty list", what);
  return v;
}

}  // namespace dip::cli
