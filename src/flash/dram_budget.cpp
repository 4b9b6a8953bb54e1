#include "flash/dram_budget.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>

#include "flash/flash_image.h"
#include "flash/flash_store.h"
#include "model/model.h"
#include "ops/colsparse.h"
#include "util/error.h"

namespace dip {

BudgetSpec parse_budget(const std::string& s, const std::string& what) {
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (end == s.c_str() || !std::isfinite(v))
    fail("bad {} '{}': use e.g. 300MiB, 1.5GB or 50%", what, s);
  const std::string u(end);
  BudgetSpec b;
  if (u == "%") {
    if (!(v > 0) || v > 100) fail("{} '{}' must be a percentage in (0, 100]", what, s);
    b.fraction = v / 100.0;
    return b;
  }
  const double mul = byte_unit(u, true);  // a bare "300M" is MiB, as memory sizes usually are
  if (mul == 0) fail("bad {} '{}': use e.g. 300MiB, 1.5GB or 50%", what, s);
  const double bytes = v * mul;
  if (!(bytes >= 1) || bytes > 1e15) fail("{} '{}' is not a plausible size", what, s);
  b.bytes = uint64_t(bytes);
  return b;
}

uint64_t staging_bytes(const FlashImage& img) {
  const FlashHeader& h = img.header();
  const uint64_t region =
      std::max(uint64_t(h.n_embd) * h.up_col_stride, uint64_t(h.n_ff) * h.down_col_stride);
  // At least one kernel group of columns per half: FlashColumns::multiply sums in a fixed order.
  const uint64_t half =
      std::max(std::min<uint64_t>(4u << 20, region),
               ColSparseSum::kGroup * std::max(h.up_col_stride, h.down_col_stride));
  return 2 * half;
}

DramPlan plan_dram(const Model& m, const FlashImage& img, const BudgetSpec& spec, uint32_t n_ctx,
                   uint32_t max_batch, uint32_t n_logits, int n_threads, uint64_t process_rss) {
  const HParams& hp = m.hparams();
  DramPlan p;
  // The process is measured after the model was opened: its adapters are loaded by then (their
  // float copies written, their file's pages read), so their pages are in process_rss already.
  // They count once, with the weights.
  p.process = process_rss - std::min(process_rss, m.adapter_bytes());
  p.budget =
      spec.fraction > 0 ? uint64_t(spec.fraction * double(m.total_weight_bytes())) : spec.bytes;
  p.resident_weights = m.total_weight_bytes() - m.mlp_bytes() + m.adapter_bytes();
  p.kv_cache = 2ull * hp.n_layer * n_ctx * hp.n_embd_k() * sizeof(uint16_t);
  const uint64_t E = hp.n_embd, Eq = hp.n_embd_q(), Ek = hp.n_embd_k(), F = hp.n_ff, B = max_batch;
  // Session activations (x, xn, q/k/v, attention output), their encodings, the pruned MLP's
  // scratch, logits, and per-thread attention scratch; each float 4 bytes.
  const uint64_t acts =
      B * (2 * E + Eq + 2 * Ek + 2 * Ek + Eq) * 4 + B * std::max(E, std::max(Eq, F)) * 4;
  const uint64_t mlp_scratch = (4 * E + 8 * F) * 4;
  const uint64_t logits = uint64_t(n_logits + max_batch) * hp.n_vocab * 4;
  const uint64_t attn = uint64_t(std::max(1, n_threads)) *
                        (uint64_t(n_ctx) * (2 * hp.head_dim + 1) + 2 * hp.head_dim) * 4;
  // Plus 2 MiB for thread stacks and the allocator's slack.
  p.buffers = acts + mlp_scratch + logits + attn + (2u << 20);
  // The read buffers and the store's bounce buffer.
  p.staging = staging_bytes(img) + FlashStore::kBounceBytes;
  // ColumnCache: cached, in_use (1 byte), last_use, uses (8), slot (4) per column, the image's
  // column checksum (4), plus the hit/slot arrays of one token.
  p.cache_meta = uint64_t(hp.n_layer) * (E + F) * 26 + (E + F) * 5;
  if (spec.mlp_fraction > 0)
    p.budget = p.fixed() + uint64_t(std::ceil(spec.mlp_fraction * double(img.column_bytes())));
  if (p.budget < p.fixed()) {
    fail(
        "DRAM budget {} is too small for the part that must stay resident: {} (the process before "
        "the weights {}, weights outside the MLP and adapters {}, KV cache {} "
        "for {} tokens, buffers {}, read buffers {}, cache bookkeeping {})",
        format_bytes(p.budget), format_bytes(p.fixed()), format_bytes(p.process),
        format_bytes(p.resident_weights), format_bytes(p.kv_cache), n_ctx, format_bytes(p.buffers),
        format_bytes(p.staging), format_bytes(p.cache_meta));
  }
  p.cache_bytes = p.budget - p.fixed();
  p.cache_fraction = std::min(1.0, double(p.cache_bytes) / double(img.column_bytes()));
  return p;
}

namespace {
uint64_t status_kib(const char* key) {
  std::ifstream f("/proc/self/status");
  std::string line;
  const std::string k = std::string(key) + ":";
  while (std::getline(f, line)) {
    if (line.rfind(k, 0) == 0) return std::strtoull(line.c_str() + k.size(), nullptr, 10);
  }
  return 0;
}
}  // namespace

uint64_t current_rss() { return status_kib("VmRSS") * 1024; }
uint64_t peak_rss() { return status_kib("VmHWM") * 1024; }

std::string format_bytes(uint64_t b) {
  if (b >= (1ull << 30)) return fmt::format("{:.2f} GiB", double(b) / double(1ull << 30));
  if (b >= (1ull << 20)) return fmt::format("{:.1f} MiB", double(b) / double(1ull << 20));
  if (b >= (1ull << 10)) return fmt::format("{:.1f} KiB", double(b) / 1024.0);
  return fmt::format("{} B", b);
}

}  // namespace dip
