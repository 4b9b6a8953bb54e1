// The flash-run flags shared by generate, perplexity and sweep (--flash IMAGE, --dram-budget,
// --flash-bw, ...), building a run from them, and the run report.
#pragma once
#include <CLI/CLI.hpp>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "flash/dram_budget.h"
#include "flash/flash_columns.h"
#include "flash/flash_image.h"

namespace dip {
class Model;
class SparseMlp;
}  // namespace dip

namespace dip::cli {

struct FlashOpts {
  std::string image, budget, mlp_cache, bandwidth, latency, io = "auto", gap = "0",
                                                            prefetch = "off";
  bool buffered = false, verify = false, no_verify = false;
  uint32_t queue_depth = 64;
  bool enabled() const { return !image.empty(); }
};
void add_flash_opts(CLI::App* c, FlashOpts& o);

// Tokens per internal batch in flash runs: the MLP runs token by token anyway; small batches
// keep the activation buffers inside the budget.
constexpr uint32_t kFlashMaxBatch = 32;

struct FlashRun {
  std::unique_ptr<FlashImage> image;
  DramPlan plan;
  std::unique_ptr<FlashColumns> columns;
  uint64_t overhead_rss = 0;  // RSS before any weight was touched
};

// Null without --flash (then the other flash flags are an error). Reads and checks the image
// against m, plans the budget (n_logits: tokens whose logits are kept at once), opens the store.
std::unique_ptr<FlashRun> make_flash_run(const Model& m, const FlashOpts& o, uint32_t n_ctx,
                                         uint32_t n_logits, int n_threads, uint64_t overhead_rss);

// The run report: tokens/s, time split, flash bytes per token, hit rates, DRAM. `tokens` and
// `seconds` are of the measured phase (the stats were reset at its start).
nlohmann::json flash_report(const FlashRun& run, const SparseMlp& mlp, size_t tokens,
                            double seconds);
void print_flash_report(const nlohmann::json& r);

}  // namespace dip::cli
