// The DRAM budget of a flash run: what must stay resident (attention, norms, embeddings and
// lm_head, the KV cache, activation buffers, read buffers, cache bookkeeping) comes first; what
// is left holds MLP weight columns, split uniformly over the masked matrices (method.md: every
// layer's up+gate and down caches hold the same fraction of their columns). The process's
// resident memory is measured against it: peak RSS <= overhead + budget, where the overhead is
// the RSS before any weight is touched (program, libraries, the tokenizer's vocabulary).
#pragma once
#include <cstdint>
#include <string>

namespace dip {

class Model;
class FlashImage;

// "300MiB", "1.5GB", "2G", "123456" (bytes) or "50%" (of the model's weight bytes).
struct BudgetSpec {
  uint64_t bytes = 0;
  double fraction = 0;      // > 0 for the percentage form
  double mlp_fraction = 0;  // > 0: the resident part plus this fraction of the MLP columns
};
BudgetSpec parse_budget(const std::string& s, const std::string& what = "DRAM budget");

// The budget is for the whole process as the kernel counts it (peak RSS): `process` is what the
// process held before any weight was touched (code, libraries, the vocabulary, the input text).
struct DramPlan {
  uint64_t budget = 0;
  uint64_t process = 0;
  uint64_t resident_weights = 0;  // every non-MLP weight, and the adapters (all in DRAM)
  uint64_t kv_cache = 0;
  uint64_t buffers = 0;       // activations, logits, attention scratch
  uint64_t staging = 0;       // read buffers for columns the cache does not admit
  uint64_t cache_meta = 0;    // per-column bookkeeping of the caches
  uint64_t cache_bytes = 0;   // left for MLP columns
  double cache_fraction = 0;  // of every matrix's columns (uniform split)
  uint64_t fixed() const {
    return process + resident_weights + kv_cache + buffers + staging + cache_meta;
  }
};

// The plan for running m with its MLP in `img` at `spec`, a context of n_ctx tokens, batches of
// at most max_batch tokens, logits kept for n_logits tokens and n_threads threads. A budget
// below the fixed part is an Error that lists the parts.
// process_rss: the process's
// resident memory after m and its adapters were loaded, before any weight was touched (the
// adapters' share of it is counted with the weights, not twice).
DramPlan plan_dram(const Model& m, const FlashImage& img, const BudgetSpec& spec, uint32_t n_ctx,
                   uint32_t max_batch, uint32_t n_logits, int n_threads, uint64_t process_rss = 0);

// Read buffers for columns the cache does not admit: two halves (one is read while the other
// is multiplied), each at least one column of either kind.
uint64_t staging_bytes(const FlashImage& img);

// This process's resident set now and its peak (VmRSS, VmHWM of /proc/self/status), bytes.
uint64_t current_rss();
uint64_t peak_rss();

std::string format_bytes(uint64_t b);

}  // namespace dip
