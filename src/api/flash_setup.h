// A run with the MLP on flash: its options (--flash IMAGE, --dram-budget, --flash-bw, ...),
// building it (image checked against the model, DRAM plan, store), and its report.
#pragma once
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "flash/dram_budget.h"
#include "flash/flash_columns.h"
#include "flash/flash_image.h"
#include "flash/flash_probe.h"
#include "sparsity/coactivation.h"

namespace dip {
class Model;
class SparseMlp;
}  // namespace dip

namespace dip {

// Sizes and speeds are strings as the flags take them ("300MiB", "50%", "1GB/s", "50us").
struct FlashOptions {
  std::string image;         // --flash: the flash image (`dip convert --flash`); empty: no flash
  std::string budget;        // --dram-budget: DRAM for the whole process (size or % of the model)
  std::string mlp_cache;     // --mlp-cache: instead of a budget, this share of the MLP columns
  std::string bandwidth;     // --flash-bw: emulate a flash of this read bandwidth
  std::string latency;       // --flash-latency: emulated latency per read request
  std::string io = "auto";   // --flash-io: auto, uring, pread
  std::string gap = "auto";  // --flash-gap: join reads whose gap is at most this (auto: probed)
  std::string prefetch = "off";  // --flash-prefetch: on, off
  bool buffered = false;         // --flash-buffered: through the page cache
  bool verify = false;           // --flash-verify: check the whole image first
  bool no_verify = false;        // --no-verify: do not check each column read
  uint32_t queue_depth = 64;     // --flash-qd
  bool enabled() const { return !image.empty(); }
};

// Tokens per internal batch of flash runs by default: the MLP runs token by token anyway; small
// batches keep the activation buffers inside the budget.
constexpr uint32_t kFlashMaxBatch = 32;
// Seconds `--flash-gap auto` spends measuring a device whose probe is not cached yet.
constexpr double kAutoProbeSeconds = 1.5;

struct FlashRun {
  std::unique_ptr<FlashImage> image;
  DramPlan plan;
  std::unique_ptr<FlashColumns> columns;
  uint64_t overhead_rss = 0;        // RSS before any weight was touched
  uint32_t max_gap = 0;             // the read gap in use (bytes)
  std::optional<FlashProbe> probe;  // the device's probe, with --flash-gap auto
  std::string probe_note;           // where it came from (measured, or the cache file)
  uint32_t max_batch = kFlashMaxBatch;
};

// A --flash-gap size ("32KiB", "0"); "auto" is the caller's to handle.
uint32_t parse_read_gap(const std::string& s);

// Null without --flash (then the other flash flags are an error). Reads and checks the image
// against m, plans the budget (n_logits: tokens whose logits are kept at once), opens the store.
// max_batch: tokens per internal batch (0: kFlashMaxBatch).
std::unique_ptr<FlashRun> make_flash_run(const Model& m, const FlashOptions& o, uint32_t n_ctx,
                                         uint32_t n_logits, int n_threads, uint64_t overhead_rss,
                                         uint32_t max_batch = 0);

// The run report: tokens/s, time split, flash bytes per token, hit rates, DRAM. `tokens` and
// `seconds` are of the measured phase (the stats were reset at its start).
nlohmann::json flash_report(const FlashRun& run, const SparseMlp& mlp, size_t tokens,
                            double seconds);

// Writing a flash image (`dip convert MODEL OUT --flash`).
struct FlashWriteOptions {
  uint32_t align = 512;          // --flash-align: the device's direct-I/O block
  std::string layout_text;       // --layout-from: learn a co-activation layout on this text
  double layout_density = 0.5;   // --layout-density: DIP's MLP density for the layout's masks
  size_t layout_tokens = 16384;  // --layout-tokens: at most this many tokens of the text
  uint32_t layout_ctx = 512;
  int threads = 0;  // 0: the cores this process may use
};

// Writes m's MLP as a flash image to out, in model order or, with a layout text, in the
// co-activation layout learned from it (returned, with its adjacency on the text; else empty).
CoactivationLayout write_flash(const Model& m, const std::string& out, const FlashWriteOptions& o,
                               const FlashProgress& progress);

}  // namespace dip
