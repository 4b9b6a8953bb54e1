#include "sim/hardware_model.h"

#include <algorithm>
#include <cmath>
#include <queue>
#include <random>

#include "cache/column_cache.h"
#include "model/model.h"
#include "sparsity/config.h"
#include "sparsity/select.h"
#include "util/error.h"

namespace dip {

ModelShape shape_preset(const std::string& n) {
  // Public configs (method.md's table); the default model is ours (models/MODEL_CARD.md).
  if (n == "phi-3-medium") return {n, 5120, 17920, 40, 40, 10, 32064, false};
  if (n == "phi-3-mini") return {n, 3072, 8192, 32, 32, 32, 32064, false};
  if (n == "llama-3-8b") return {n, 4096, 14336, 32, 32, 8, 128256, false};
  if (n == "mistral-7b") return {n, 4096, 14336, 32, 32, 8, 32000, false};
  if (n == "default") return {n, 512, 1536, 8, 8, 4, 8192, true};
  fail("unknown model shape '{}' (phi-3-medium, phi-3-mini, llama-3-8b, mistral-7b, default)", n);
}

ModelShape shape_of(const Model& m) {
  const HParams& hp = m.hparams();
  ModelShape s{m.path(),  hp.n_embd,    hp.n_ff,    hp.n_layer,
               hp.n_head, hp.n_head_kv, hp.n_vocab, false};
  s.tied = m.output.data == m.tok_embd.data;
  return s;
}

Device device_preset(const std::string& n) {
  constexpr double G = 1e9;
  if (n == "a18")
    return {n, 60 * G, 1 * G, 8 * G,
            "the paper's reference code: Apple A18-like, 60 GB/s DRAM, 1 GB/s flash; 8 GB"};
  if (n == "snapdragon-8-gen-3") {
    return {n, 76.8 * G, 4.2 * G, 12 * G,
            "LPDDR5X-4800 x 64 bit = 76.8 GB/s peak (Qualcomm spec); UFS 4.0 sequential read 4.2 "
            "GB/s (JEDEC/vendor); 12 GB"};
  }
  if (n == "this-machine") {
    return {n,
            32 * G,
            1 * G,
            24 * G,
            "measured here: ~32 GB/s read, ~1 GB/s random 16 KiB O_DIRECT reads, ~80k 4 KiB "
            "reads/s (fio, queue depth 64); 24 GB",
            80000};
  }
  if (n == "snapdragon-8-elite") {
    return {n, 84.8 * G, 4.2 * G, 12 * G,
            "LPDDR5X-5300 (10,600 MT/s) x 64 bit = 84.8 GB/s peak (Qualcomm spec); UFS 4.0 "
            "sequential read 4.2 GB/s; 12 GB "
            "(e.g. Galaxy S25)"};
  }
  if (n == "laptop-x-elite") {
    return {n, 135 * G, 7 * G, 16 * G,
            "Snapdragon X Elite laptop: LPDDR5X, 128 bit, 135 GB/s peak (Qualcomm product brief); "
            "PCIe 4.0 x4 NVMe sequential "
            "read ~7 GB/s (drive spec); 16 GB"};
  }
  fail(
      "unknown device '{}' (a18, snapdragon-8-gen-3, snapdragon-8-elite, laptop-x-elite, "
      "this-machine)",
      n);
}

SimPolicy parse_sim_policy(const std::string& n) {
  if (n == "none") return SimPolicy::kNone;
  if (n == "lru") return SimPolicy::kLru;
  if (n == "lfu") return SimPolicy::kLfu;
  if (n == "belady") return SimPolicy::kBelady;
  fail("unknown eviction policy '{}' (none, lru, lfu, belady)", n);
}

const char* sim_policy_name(SimPolicy p) {
  const char* names[] = {"none", "lru", "lfu", "belady"};
  return names[int(p)];
}

Footprint footprint(const SimConfig& c) {
  const ModelShape& s = c.shape;
  const Device& d = c.device;
  if (!(d.dram_bw > 0) || !(d.flash_bw > 0))
    fail("device '{}': bandwidths must be positive", d.name);
  if (!(d.dram_size > 0)) fail("device '{}': DRAM size must be positive", d.name);
  if (!(c.bits > 0 && c.bits <= 32)) fail("weight precision of {} bits is not possible", c.bits);
  if (s.d_model == 0 || s.d_ff == 0 || s.n_layer == 0 || s.n_head == 0 || s.n_kv_head == 0 ||
      s.vocab == 0) {
    fail("model shape '{}' has a zero dimension", s.name);
  }
  const double b = c.bits / 8.0, H = s.d_model, I = s.d_ff, L = s.n_layer, V = s.vocab;
  const double g = double(s.n_kv_head) / double(s.n_head);
  const double seq =
      double(c.prompt) + double(c.gen) / 2.0;  // mean sequence length over generation
  Footprint f;
  f.embeddings = H * V * b * (s.tied ? 1.0 : 2.0);  // embedding and lm_head
  f.attention = H * H * (2.0 + 2.0 * g) * L * b;
  f.kv_cache = seq * H * 2.0 * L * g * b;
  f.mlp = H * I * 3.0 * L * b;
  f.static_bytes = f.embeddings + f.attention + f.kv_cache;
  if (d.dram_size < f.static_bytes) {
    fail(
        "device '{}': {:.2f} GB of DRAM cannot hold the static part ({:.2f} GB: attention, KV "
        "cache, embeddings)",
        d.name, d.dram_size / 1e9, f.static_bytes / 1e9);
  }
  f.cache_bytes = std::min(d.dram_size - f.static_bytes, f.mlp);
  // Uniform split over the 3L masked linear layers, whole columns only.
  const double per_linear = f.cache_bytes / (3.0 * L);
  f.upgate_columns = std::min<uint64_t>(s.d_model, uint64_t(std::floor(per_linear / (I * b))));
  f.down_columns = std::min<uint64_t>(s.d_ff, uint64_t(std::floor(per_linear / (H * b))));
  return f;
}

std::vector<TokenMasks> masks_from_trace(const Trace& t, const ModelShape& s) {
  const TraceHeader& h = t.header;
  if (h.n_layer != s.n_layer || h.n_embd != s.d_model || h.n_ff != s.d_ff) {
    fail("the trace was recorded on a model of shape {} layers x {} x {}, not {} ({} x {} x {})",
         h.n_layer, h.n_embd, h.n_ff, s.name, s.n_layer, s.d_model, s.d_ff);
  }
  std::vector<TokenMasks> out(h.n_tokens);
  const size_t ub = h.up_bytes(), db = h.down_bytes();
  for (uint64_t k = 0; k < h.n_tokens; ++k) {
    const uint8_t* r = t.record(k);
    TokenMasks& m = out[k];
    m.up.resize(h.n_layer);
    m.down.resize(h.n_layer);
    for (uint32_t l = 0; l < h.n_layer; ++l) {
      const uint8_t* up = r + size_t(l) * (ub + db);
      for (uint32_t i = 0; i < h.n_embd; ++i)
        if (up[i / 8] >> (i % 8) & 1) m.up[l].push_back(int32_t(i));
      for (uint32_t j = 0; j < h.n_ff; ++j)
        if (up[ub + j / 8] >> (j % 8) & 1) m.down[l].push_back(int32_t(j));
    }
  }
  return out;
}

std::vector<TokenMasks> synthetic_masks(const ModelShape& s, uint32_t n_tokens, double density,
                                        double skew, uint64_t seed, const CacheAwareSynthesis* ca) {
  if (!(density > 0 && density <= 1))
    fail("synthetic mask density must be in (0, 1] (got {})", density);
  if (ca && ca->policy != SimPolicy::kLru && ca->policy != SimPolicy::kLfu) {
    fail("cache-aware synthetic masks rescore against a live cache: use the lru or lfu policy");
  }
  if (ca && !(ca->gamma >= 0 && ca->gamma <= 1))
    fail("gamma must be in [0, 1] (got {})", ca->gamma);
  const LayerKeep k = dip_optimized_split(density);
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<std::vector<float>> pop_up(s.n_layer, std::vector<float>(s.d_model)),
      pop_down(s.n_layer, std::vector<float>(s.d_ff));
  for (auto* v : {&pop_up, &pop_down})
    for (auto& layer : *v)
      for (auto& p : layer) p = std::exp(float(skew) * nd(rng));
  std::vector<ColumnCache> up_cache, down_cache;
  if (ca) {
    const CachePolicy cp = ca->policy == SimPolicy::kLfu ? CachePolicy::kLfu : CachePolicy::kLru;
    for (uint32_t l = 0; l < s.n_layer; ++l) {
      up_cache.emplace_back(s.d_model, std::min<uint64_t>(ca->upgate_columns, s.d_model), cp);
      down_cache.emplace_back(s.d_ff, std::min<uint64_t>(ca->down_columns, s.d_ff), cp);
    }
  }
  std::vector<TokenMasks> out(n_tokens);
  std::vector<float> score, scratch;
  std::vector<uint32_t> topk_scratch;
  // One matrix's mask: |N(0,1)| x popularity, rescored against its cache when cache-aware.
  auto pick = [&](const std::vector<float>& pop, double keep, ColumnCache* cache,
                  std::vector<int32_t>& idx) {
    const size_t n = pop.size();
    score.resize(n);
    for (size_t i = 0; i < n; ++i) score[i] = std::fabs(nd(rng)) * pop[i];
    if (cache && cache->capacity() > 0)
      cache_aware_scores(score.data(), n, cache->cached(), ca->gamma, 0, false, scratch);
    select_topk(score.data(), n, keep_count(keep, n), idx, topk_scratch);
    if (cache && cache->capacity() > 0) cache->access(idx.data(), idx.size());
  };
  for (auto& m : out) {
    m.up.resize(s.n_layer);
    m.down.resize(s.n_layer);
    for (uint32_t l = 0; l < s.n_layer; ++l) {
      pick(pop_up[l], k.up, ca ? &up_cache[l] : nullptr, m.up[l]);
      pick(pop_down[l], k.down, ca ? &down_cache[l] : nullptr, m.down[l]);
    }
  }
  return out;
}

namespace {
// Read requests of one token (cols ascending): runs of missed columns joined across gaps of at
// most max_gap columns; gap_cols counts the columns read only to join them.
uint64_t miss_runs(const std::vector<int32_t>& cols, const std::vector<uint8_t>& hit,
                   uint32_t max_gap, uint64_t& gap_cols) {
  uint64_t runs = 0;
  int64_t prev = 0;
  gap_cols = 0;
  for (size_t i = 0; i < cols.size(); ++i) {
    if (hit[i]) continue;
    const int64_t between = int64_t(cols[i]) - prev - 1;
    if (runs > 0 && between <= int64_t(max_gap)) {
      gap_cols += uint64_t(between);
    } else {
      ++runs;
    }
    prev = cols[i];
  }
  return runs;
}
}  // namespace

std::vector<uint64_t> cache_replay(SimPolicy p, const std::vector<const std::vector<int32_t>*>& seq,
                                   size_t n_cols, size_t cap, uint64_t& events, ReadRuns* reads) {
  const size_t T = seq.size();
  std::vector<uint64_t> hits(T, 0);
  if (reads) {
    reads->runs.assign(T, 0);
    reads->gap.assign(T, 0);
  }
  std::vector<uint8_t> hit;  // per column of the current token (for the reads)
  auto note_reads = [&](size_t t) {
    if (reads) reads->runs[t] = miss_runs(*seq[t], hit, reads->max_gap, reads->gap[t]);
  };
  for (const auto* s : seq) events += s->size();
  if (cap == 0) {
    for (size_t t = 0; reads && t < T; ++t) {
      hit.assign(seq[t]->size(), 0);
      note_reads(t);
    }
    return hits;
  }
  if (p == SimPolicy::kLru || p == SimPolicy::kLfu) {
    ColumnCache c(n_cols, cap, p == SimPolicy::kLru ? CachePolicy::kLru : CachePolicy::kLfu);
    for (size_t t = 0; t < T; ++t) {
      hit.assign(seq[t]->size(), 0);
      hits[t] = c.access(seq[t]->data(), seq[t]->size(), hit.data());
      note_reads(t);
    }
    return hits;
  }
  std::vector<uint8_t> in(n_cols, 0);
  size_t size = 0;
  if (p == SimPolicy::kNone) {  // filled by first use, never evicted
    for (size_t t = 0; t < T; ++t) {
      hit.assign(seq[t]->size(), 0);
      for (size_t i = 0; i < seq[t]->size(); ++i) {
        const size_t c = size_t((*seq[t])[i]);
        if (in[c]) {
          ++hits[t];
          hit[i] = 1;
        } else if (size < cap) {
          in[c] = 1;
          ++size;
        }
      }
      note_reads(t);
    }
    return hits;
  }
  // Belady (with bypass): evict the resident column whose next use is farthest; a missing
  // column is not admitted when its own next use is farther still. Next uses are precomputed
  // backwards; a max-heap with lazy deletion makes the whole replay O(n log n).
  const uint32_t kNever = uint32_t(T);
  std::vector<std::vector<uint32_t>> next(T);
  std::vector<uint32_t> last(n_cols, kNever), key(n_cols, kNever);
  for (size_t t = T; t-- > 0;) {
    next[t].resize(seq[t]->size());
    for (size_t i = 0; i < seq[t]->size(); ++i) {
      const size_t c = size_t((*seq[t])[i]);
      next[t][i] = last[c];
      last[c] = uint32_t(t);
    }
  }
  std::priority_queue<std::pair<uint32_t, int32_t>> heap;  // (next use, column)
  for (size_t t = 0; t < T; ++t) {
    const auto& s = *seq[t];
    hit.assign(s.size(), 0);
    for (size_t i = 0; i < s.size(); ++i) {
      const size_t c = size_t(s[i]);
      if (in[c]) {
        ++hits[t];
        hit[i] = 1;
        key[c] = next[t][i];
        heap.push({key[c], int32_t(c)});
      }
    }
    note_reads(t);
    for (size_t i = 0; i < s.size(); ++i) {
      const size_t c = size_t(s[i]);
      if (in[c]) continue;
      const uint32_t k = next[t][i];
      if (k == kNever) continue;  // never used again: caching it cannot help
      if (size == cap) {
        while (!heap.empty() && (!in[size_t(heap.top().second)] ||
                                 key[size_t(heap.top().second)] != heap.top().first))
          heap.pop();
        if (heap.empty() || heap.top().first <= k) continue;  // bypass
        in[size_t(heap.top().second)] = 0;
        heap.pop();
        --size;
      }
      in[c] = 1;
      key[c] = k;
      heap.push({k, int32_t(c)});
      ++size;
    }
  }
  return hits;
}

namespace {
// Bytes of one cache/read unit of a masked matrix (up/gate: the up and the gate columns, one mask).
double unit_bytes(const SimConfig& c, bool up) {
  return (up ? 2.0 * c.shape.d_ff : double(c.shape.d_model)) * (c.bits / 8.0) * c.bundle;
}

// Units (bundles of `bundle` adjacent columns) a column set touches, ascending and distinct.
void to_units(const std::vector<int32_t>& cols, uint32_t bundle, std::vector<int32_t>& out) {
  out.clear();
  for (int32_t c : cols) {
    const int32_t u = c / int32_t(bundle);
    if (out.empty() || out.back() != u) out.push_back(u);
  }
}
}  // namespace

CacheSplit parse_cache_split(const std::string& n) {
  if (n == "uniform") return CacheSplit::kUniform;
  if (n == "traffic") return CacheSplit::kByTraffic;
  fail("unknown cache split '{}' (uniform, traffic)", n);
}

const char* cache_split_name(CacheSplit s) {
  return s == CacheSplit::kUniform ? "uniform" : "traffic";
}

Replay replay(const SimConfig& c, const Footprint& fp, const std::vector<TokenMasks>& masks) {
  if (masks.empty()) fail("nothing to simulate: the mask trace has no tokens");
  if (c.bundle == 0) fail("a bundle must hold at least one column");
  const ModelShape& s = c.shape;
  const size_t T = masks.size();
  for (const TokenMasks& m : masks) {
    if (m.up.size() != s.n_layer || m.down.size() != s.n_layer) {
      fail("mask trace has {} layers, the shape {}", m.up.size(), s.n_layer);
    }
  }
  Replay r;
  r.n_tokens = T;
  r.matrices.resize(2 * size_t(s.n_layer));
  // Units per matrix.
  auto n_units = [&](bool up) {
    return (size_t(up ? s.d_model : s.d_ff) + c.bundle - 1) / c.bundle;
  };
  std::vector<std::vector<int32_t>> units(T);
  std::vector<const std::vector<int32_t>*> seq(T);
  // Capacities: the uniform split is the footprint's; by traffic, the cache's bytes go to each
  // matrix in proportion to its mean kept bytes per token, a matrix never holding more than all
  // its units (what a full matrix cannot use goes to the others).
  std::vector<double> want(r.matrices.size(), 0.0);
  if (c.split == CacheSplit::kByTraffic) {
    for (size_t mi = 0; mi < r.matrices.size(); ++mi) {
      const bool up = mi % 2 == 0;
      uint64_t n = 0;
      for (size_t t = 0; t < T; ++t) n += (up ? masks[t].up : masks[t].down)[mi / 2].size();
      want[mi] = double(n) / double(T) * unit_bytes(c, up) / c.bundle;
    }
    std::vector<double> cap_bytes(r.matrices.size(), 0.0);
    std::vector<uint8_t> full(r.matrices.size(), 0);
    double left = fp.cache_bytes;
    for (int round = 0; round < 64 && left > 1e-9; ++round) {
      double w = 0;
      for (size_t mi = 0; mi < want.size(); ++mi) w += full[mi] ? 0.0 : want[mi];
      if (w <= 0) break;
      double given = 0;
      for (size_t mi = 0; mi < want.size(); ++mi) {
        if (full[mi]) continue;
        const double all = double(n_units(mi % 2 == 0)) * unit_bytes(c, mi % 2 == 0);
        const double add = std::min(left * want[mi] / w, all - cap_bytes[mi]);
        cap_bytes[mi] += add;
        given += add;
        if (cap_bytes[mi] >= all - 1e-9) full[mi] = 1;
      }
      left -= given;
    }
    for (size_t mi = 0; mi < r.matrices.size(); ++mi) {
      r.matrices[mi].capacity =
          uint64_t(std::floor(cap_bytes[mi] / unit_bytes(c, mi % 2 == 0) + 1e-9));
    }
  } else {
    for (size_t mi = 0; mi < r.matrices.size(); ++mi) {
      const bool up = mi % 2 == 0;
      // The footprint's whole columns per matrix, as whole bundles.
      r.matrices[mi].capacity = (up ? fp.upgate_columns : fp.down_columns) / c.bundle;
    }
  }
  for (size_t mi = 0; mi < r.matrices.size(); ++mi) {
    const bool up = mi % 2 == 0;
    MatrixReplay& mr = r.matrices[mi];
    mr.columns.resize(T);
    mr.accesses.resize(T);
    for (size_t t = 0; t < T; ++t) {
      const std::vector<int32_t>& cols = (up ? masks[t].up : masks[t].down)[mi / 2];
      mr.columns[t] = uint32_t(cols.size());
      if (c.bundle == 1) {
        seq[t] = &cols;
      } else {
        to_units(cols, c.bundle, units[t]);
        seq[t] = &units[t];
      }
      mr.accesses[t] = uint32_t(seq[t]->size());
    }
    ReadRuns reads;
    reads.max_gap = uint32_t(double(c.read_gap) / unit_bytes(c, up));
    const std::vector<uint64_t> hits =
        cache_replay(c.policy, seq, n_units(up), mr.capacity, r.events, &reads);
    mr.hits.assign(hits.begin(), hits.end());
    mr.runs.assign(reads.runs.begin(), reads.runs.end());
    mr.gap.assign(reads.gap.begin(), reads.gap.end());
  }
  return r;
}

SimResult time_replay(const SimConfig& c, const Footprint& fp, const Replay& rp) {
  SimResult r;
  r.fp = fp;
  r.events = rp.events;
  const ModelShape& s = c.shape;
  const Device& d = c.device;
  const double H = s.d_model, I = s.d_ff;
  auto f = [&](double flash_s, double dram_s) {
    return c.concurrent ? std::max(flash_s, dram_s) : flash_s + dram_s;
  };
  // The compute term: FLOPs / the device's rate, after the memory time (serial) or overlapping
  // it (roofline); none when the device has no compute rate (the paper's model).
  auto with_compute = [&](double mem_s, double flops) {
    if (!(d.compute_flops > 0)) return mem_s;
    const double comp = flops / d.compute_flops;
    return c.compute_serial ? mem_s + comp : std::max(mem_s, comp);
  };
  const size_t T = rp.n_tokens;
  if (c.warm_tokens >= T)
    fail("--warm-tokens {} leaves none of the trace's {} tokens to measure", c.warm_tokens, T);
  const size_t t0 = c.warm_tokens;
  double sum_t = 0, sum_f = 0, sum_d = 0, sum_flops = 0;
  uint64_t all_hits = 0, all_acc = 0, requests = 0;
  r.upgate_hit_rate.assign(s.n_layer, 0.0);
  r.down_hit_rate.assign(s.n_layer, 0.0);
  for (size_t mi = 0; mi < rp.matrices.size(); ++mi) {
    const MatrixReplay& m = rp.matrices[mi];
    const bool up = mi % 2 == 0;
    const double ub = unit_bytes(c, up);  // both of up and gate: they share the mask
    const double n_lin = up ? 2.0 : 1.0;
    const double col_flops = 2.0 * n_lin * (up ? I : H);
    uint64_t h_sum = 0, a_sum = 0;
    for (size_t t = t0; t < T; ++t) {  // warm-up tokens: replayed, not counted
      // Missed units and the gaps read to join their reads.
      const double hit = double(m.hits[t]), miss = double(m.accesses[t]) - hit + double(m.gap[t]);
      // The transfer: bytes at the flash bandwidth, plus the round trips of the batch (one, or one
      // per queue depth of requests); the request rate limits it (max) or adds to it (serial).
      double flash_s = miss * ub / d.flash_bw;
      if (miss > 0) {
        const double rounds =
            d.flash_qd > 0 ? std::ceil(double(m.runs[t]) / double(d.flash_qd)) : 1.0;
        flash_s += rounds * d.flash_latency;
      }
      if (d.flash_iops > 0) {
        const double req_s = double(m.runs[t]) / d.flash_iops;
        flash_s = c.requests_serial ? flash_s + req_s : std::max(flash_s, req_s);
      }
      const double flops = col_flops * m.columns[t];
      sum_t +=
          with_compute(f(flash_s, hit * ub / d.dram_bw), flops) + double(m.runs[t]) * d.request_cpu;
      sum_flops += flops;
      requests += m.runs[t];
      sum_f += miss * ub;
      sum_d += hit * ub;
      h_sum += m.hits[t];
      a_sum += m.accesses[t];
    }
    (up ? r.upgate_hit_rate : r.down_hit_rate)[mi / 2] =
        a_sum ? double(h_sum) / double(a_sum) : 0.0;
    all_hits += uint64_t(n_lin) * h_sum;
    all_acc += uint64_t(n_lin) * a_sum;
  }
  const double n = double(T - t0);
  // The static part's work per token: attention and lm_head products, attention over the KV
  // cache at the mean sequence length (4 FLOPs per cached element pair: q.k and p.v).
  const double g = double(s.n_kv_head) / double(s.n_head);
  const double seq = double(c.prompt) + double(c.gen) / 2.0;
  const double static_flops =
      2.0 * (H * H * (2.0 + 2.0 * g) * s.n_layer + H * s.vocab) + 4.0 * seq * H * s.n_layer;
  r.t_dyn = sum_t / n;
  r.t_fixed = with_compute(f(0.0, fp.static_bytes / d.dram_bw), static_flops);
  r.tokens_per_s = 1.0 / (r.t_fixed + r.t_dyn);
  r.flash_bytes_per_token = sum_f / n;
  r.flash_requests_per_token = double(requests) / n;
  r.dram_bytes_per_token = sum_d / n + fp.static_bytes;
  r.request_cpu_s_per_token = r.flash_requests_per_token * d.request_cpu;
  r.compute_s_per_token =
      d.compute_flops > 0 ? (sum_flops / n + static_flops) / d.compute_flops : 0.0;
  r.hit_rate = all_acc ? double(all_hits) / double(all_acc) : 0.0;
  // The prompt as one dense pass with a cold cache: every weight read once, every token's work.
  const double dense_flops = static_flops + 2.0 * 3.0 * H * I * s.n_layer;
  r.ttft = with_compute(f(fp.mlp / d.flash_bw, fp.static_bytes / d.dram_bw),
                        std::max(1u, c.prompt) * dense_flops);
  return r;
}

SimResult simulate(const SimConfig& c, const std::vector<TokenMasks>& masks) {
  const Footprint fp = footprint(c);
  return time_replay(c, fp, replay(c, fp, masks));
}

}  // namespace dip
