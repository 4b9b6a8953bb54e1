// The hardware simulator: the paper's memory-traffic model (docs/method.md, "The
// hardware model") of a device with DRAM and flash, run over a mask trace recorded by the engine
// (--trace) or synthesized. Only memory traffic is timed, as in the paper.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "sparsity/trace.h"

namespace dip {

class Model;

struct ModelShape {
  std::string name;
  uint32_t d_model = 0, d_ff = 0, n_layer = 0, n_head = 0, n_kv_head = 0, vocab = 0;
  bool tied = false;
};
// phi-3-medium, phi-3-mini, llama-3-8b, mistral-7b, default (the table in method.md).
ModelShape shape_preset(const std::string& name);
ModelShape shape_of(const Model& m);

struct Device {
  std::string name;
  double dram_bw = 0, flash_bw = 0;  // bytes per second
  double dram_size = 0;              // bytes
  std::string source;                // where the figures come from
  // Read requests per second the flash serves (0: unlimited, the paper's model). With it, a
  // matrix's flash time is max(bytes / flash_bw, requests / flash_iops), a request being a run
  // of adjacent missed columns (the engine coalesces those into one read; an up+gate bundle is
  // one column).
  double flash_iops = 0;
  // Round trip of one batch of reads (seconds): each matrix with misses pays it once per token,
  // since a layer's misses go as one batch and the next matrix's mask needs this one's product;
  // with a queue depth (flash_qd > 0), once per round of flash_qd requests of the batch.
  double flash_latency = 0;
  uint32_t flash_qd = 0;
  // Matrix-vector work the device sustains (FLOP/s; 0: no compute term, the paper's model).
  double compute_flops = 0;
  // Host CPU time per read request (seconds: system call, block layer, driver, completion),
  // spent by the thread that computes, so it adds to the token's time instead of overlapping
  // the transfer (0: none, the paper's model).
  double request_cpu = 0;
};
// a18 (the paper's default), snapdragon-8-gen-3, snapdragon-8-elite, laptop-x-elite, this-machine.
Device device_preset(const std::string& name);

enum class SimPolicy { kNone, kLru, kLfu, kBelady };
// How the MLP cache is divided over the masked matrices: the paper's uniform split of bytes, or
// in proportion to each matrix's mean bytes kept per token in the mask trace (each matrix then
// holds the same share of what it uses per token).
enum class CacheSplit { kUniform, kByTraffic };
CacheSplit parse_cache_split(const std::string& name);
const char* cache_split_name(CacheSplit s);
SimPolicy parse_sim_policy(const std::string& name);
const char* sim_policy_name(SimPolicy p);

struct SimConfig {
  ModelShape shape;
  double bits = 16;  // per weight
  Device device;
  uint32_t prompt = 128, gen = 128;
  SimPolicy policy = SimPolicy::kLru;
  bool concurrent = true;  // f = max (flash and DRAM reads overlap) or sum
  // The first warm_tokens masks fill the caches but are not counted (e.g. a trace's prompt,
  // when comparing with an engine run that reports its generation steps).
  uint32_t warm_tokens = 0;
  // Past the paper's model (each off by default): columns per cache/read unit (a bundle of
  // adjacent columns is read and cached whole when any of its columns is kept; the paper's
  // granularity is 1), the cache split, and whether compute overlaps memory reads (roofline:
  // time = max(memory, compute)) or follows them (time = memory + compute).
  uint32_t bundle = 1;
  CacheSplit split = CacheSplit::kUniform;
  bool compute_serial = false;
  // With a request rate (flash_iops): a request's fixed cost adds to its transfer time (flash
  // time = bytes / bandwidth + requests / IOPS) instead of overlapping it (the max of the two).
  bool requests_serial = false;
  // Reads joined across gaps of at most this many bytes (the engine's --flash-gap): one request
  // instead of two, the gap's bytes read too.
  uint32_t read_gap = 0;
};

// The paper's footprints (bytes) and the cache they leave for the MLP.
struct Footprint {
  double embeddings = 0, attention = 0, kv_cache = 0, mlp = 0;
  double static_bytes = 0;      // attention + KV (at the mean sequence length) + embeddings/lm_head
  double cache_bytes = 0;       // DRAM left for MLP columns
  uint64_t upgate_columns = 0;  // columns each of up and gate keeps per layer
  uint64_t down_columns = 0;    // down columns kept per layer
};
// Fails (clear error) for impossible devices: zero bandwidth, DRAM smaller than the static part.
Footprint footprint(const SimConfig& c);

// Masks of one token: per layer, kept up/gate inputs and kept down columns (ascending).
struct TokenMasks {
  std::vector<std::vector<int32_t>> up, down;
};
// From an engine trace (its shape must be c.shape's: clear error otherwise).
std::vector<TokenMasks> masks_from_trace(const Trace& t, const ModelShape& s);
// Synthetic DIP-like masks: per token, top-k of |N(0,1)| x a fixed per-column popularity
// (log-normal, sigma `skew`), k from DIP's optimized split of `density`.
// With `ca`, DIP-CA's rescoring (method.md) against a live per-matrix cache of the given
// capacities and policy, as the engine does: s'_i = s_i if cached, else gamma * s_i; top-k of s'.
struct CacheAwareSynthesis {
  double gamma = 1.0;
  uint64_t upgate_columns = 0, down_columns = 0;
  SimPolicy policy = SimPolicy::kLru;  // lru or lfu
};
std::vector<TokenMasks> synthetic_masks(const ModelShape& s, uint32_t n_tokens, double density,
                                        double skew, uint64_t seed,
                                        const CacheAwareSynthesis* ca = nullptr);

// The cache replay of a mask trace, independent of bandwidths (one replay serves every flash
// speed and compute rate): per masked matrix (index 2 * layer + kind, kind 0 = up/gate, 1 =
// down) and token, the kept columns, the units accessed (bundles; columns when bundle = 1), the
// hits among them and the read requests (runs of adjacent missed units).
struct MatrixReplay {
  uint64_t capacity = 0;                                     // units the matrix's cache holds
  std::vector<uint32_t> columns, accesses, hits, runs, gap;  // gap: units read only to join reads
};
struct Replay {
  std::vector<MatrixReplay> matrices;
  size_t n_tokens = 0;
  uint64_t events = 0;  // unit accesses replayed
};
Replay replay(const SimConfig& c, const Footprint& fp, const std::vector<TokenMasks>& masks);

struct SimResult {
  Footprint fp;
  double t_fixed = 0, t_dyn = 0;  // seconds per token (t_dyn: mean over tokens)
  double tokens_per_s = 0;
  double ttft = 0;  // prompt read as one dense pass with a cold cache
  double flash_bytes_per_token = 0, dram_bytes_per_token = 0;
  double flash_requests_per_token = 0;  // runs of adjacent missed columns
  double compute_s_per_token = 0;       // the compute term's FLOPs / compute_flops (0 without it)
  double request_cpu_s_per_token = 0;   // requests x request_cpu (0 without it)
  double hit_rate = 0;                  // over all masked columns (up+gate counted twice)
  std::vector<double> upgate_hit_rate, down_hit_rate;  // per layer
  uint64_t events = 0;                                 // column accesses simulated
};
// The times of a replay under c's device (c must be the configuration the replay was made with,
// bandwidths, latency and compute rate aside).
SimResult time_replay(const SimConfig& c, const Footprint& fp, const Replay& r);
// footprint + replay + time_replay.
SimResult simulate(const SimConfig& c, const std::vector<TokenMasks>& masks);

// Hits per token of one matrix's column cache (capacity `cap` columns of n_cols) replaying the
// per-token column sets `seq` under policy p; `events` grows by the accesses replayed.
// With `reads` non-null, the token's read requests: runs of missed columns whose gaps (columns
// between two misses, not read otherwise) are at most reads->max_gap, and those gap columns.
struct ReadRuns {
  uint32_t max_gap = 0;             // units; 0: runs of adjacent misses only
  std::vector<uint64_t> runs, gap;  // per token
};
std::vector<uint64_t> cache_replay(SimPolicy p, const std::vector<const std::vector<int32_t>*>& seq,
                                   size_t n_cols, size_t cap, uint64_t& events,
                                   ReadRuns* reads = nullptr);

}  // namespace dip
