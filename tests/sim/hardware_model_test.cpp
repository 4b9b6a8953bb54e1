// The simulator's equations on hand-computed cases, the eviction policies, and bad input.
#include "sim/hardware_model.h"

#include <gtest/gtest.h>

#include "util/error.h"

namespace dip {
namespace {

// H 4, I 8, one layer, V 10, 2 heads / 1 KV head (g = 0.5), 16-bit, prompt 2 + gen 4 (mean
// sequence 4). Bandwidths in bytes/s so that every term is a small number.
SimConfig tiny(double dram_size) {
  SimConfig c;
  c.shape = {"tiny", 4, 8, 1, 2, 1, 10, false};
  c.bits = 16;
  c.device = {"hand", 64.0, 16.0, dram_size, ""};
  c.prompt = 2;
  c.gen = 4;
  c.policy = SimPolicy::kLru;
  return c;
}

TEST(Simulator, FootprintsByHand) {
  const Footprint f = footprint(tiny(384));
  EXPECT_DOUBLE_EQ(f.embeddings, 4 * 10 * 2 * 2);         // embedding + lm_head, 2 bytes each
  EXPECT_DOUBLE_EQ(f.attention, 16 * (2 + 1) * 1 * 2);    // H^2 (2 + 2g) L b
  EXPECT_DOUBLE_EQ(f.kv_cache, 4 * 4 * 2 * 1 * 0.5 * 2);  // seq H 2 L g b
  EXPECT_DOUBLE_EQ(f.mlp, 4 * 8 * 3 * 2);
  EXPECT_DOUBLE_EQ(f.static_bytes, 288);
  EXPECT_DOUBLE_EQ(f.cache_bytes, 96);
  EXPECT_EQ(f.upgate_columns, 2u);  // 96 / 3 linears = 32 bytes; a column of up is 8 x 2 bytes
  EXPECT_EQ(f.down_columns, 4u);    // a column of down is 4 x 2 bytes
}

TEST(Simulator, ThroughputByHand) {
  SimConfig c = tiny(384);
  TokenMasks m;
  m.up = {{0, 1}};
  m.down = {{0, 1, 2, 3}};
  const std::vector<TokenMasks> masks = {m, m};
  const SimResult r = simulate(c, masks);
  // Token 0: all from flash: up+gate 2 x (2 cols x 16 B / 16 B/s) = 4 s, down 4 x 8 B / 16 = 2 s.
  // Token 1: all cached: 2 x 32 / 64 + 32 / 64 = 1.5 s. Fixed: 288 B / 64 B/s = 4.5 s.
  EXPECT_DOUBLE_EQ(r.t_dyn, (6.0 + 1.5) / 2);
  EXPECT_DOUBLE_EQ(r.t_fixed, 4.5);
  EXPECT_DOUBLE_EQ(r.tokens_per_s, 1.0 / (4.5 + 3.75));
  EXPECT_DOUBLE_EQ(r.hit_rate, 0.5);
  EXPECT_DOUBLE_EQ(r.flash_bytes_per_token, (2 * 32 + 32) / 2.0);
  // Half the up columns cached: max vs sum of the flash and DRAM parts.
  TokenMasks m2;
  m2.up = {{0, 1, 2, 3}};
  m2.down = {{0}};
  c.policy = SimPolicy::kNone;
  const std::vector<TokenMasks> two = {m2, m2};
  const SimResult conc = simulate(c, two);
  c.concurrent = false;
  const SimResult seq = simulate(c, two);
  // Token 1: up 2 hits (2 x 16 B / 64) and 2 misses (2 x 16 B / 16); down 1 hit (8 / 64).
  const double up_max = 2 * std::max(32.0 / 16, 32.0 / 64), up_sum = 2 * (32.0 / 16 + 32.0 / 64);
  const double t0 = 2 * (64.0 / 16) + 8.0 / 16;
  EXPECT_DOUBLE_EQ(conc.t_dyn, (t0 + up_max + 8.0 / 64) / 2);
  EXPECT_DOUBLE_EQ(seq.t_dyn, (t0 + up_sum + 8.0 / 64) / 2);
  EXPECT_DOUBLE_EQ(conc.ttft, std::max(192.0 / 16, 288.0 / 64));
}

// The request-rate term: misses in runs of adjacent columns are one request each; the flash
// time of a matrix is max(bytes / bandwidth, requests / IOPS).
TEST(Simulator, RequestRateByHand) {
  SimConfig c = tiny(288);  // no cache: every column from flash
  c.policy = SimPolicy::kNone;
  TokenMasks m;
  m.up = {{0, 1, 3}};          // runs {0,1} {3}: 2 requests, 2 x 3 x 16 B = 96 B
  m.down = {{0, 2, 4, 5, 6}};  // runs {0} {2} {4,5,6}: 3 requests, 5 x 8 B = 40 B
  const std::vector<TokenMasks> masks = {m};
  const SimResult paper = simulate(c, masks);
  EXPECT_DOUBLE_EQ(paper.t_dyn, 96.0 / 16 + 40.0 / 16);
  EXPECT_DOUBLE_EQ(paper.flash_requests_per_token, 5);
  c.device.flash_iops = 0.5;  // 2 s per request: up 4 s (< 6 s of bytes), down 6 s (> 2.5 s)
  EXPECT_DOUBLE_EQ(simulate(c, masks).t_dyn, 6.0 + 6.0);
  c.requests_serial = true;  // bytes + requests: up 6 + 4 s, down 2.5 + 6 s
  EXPECT_DOUBLE_EQ(simulate(c, masks).t_dyn, 6.0 + 4.0 + 2.5 + 6.0);
  c.requests_serial = false;
  // Host CPU per request: 5 requests x 0.25 s, on top of the overlapped flash time.
  c.device.request_cpu = 0.25;
  const SimResult cpu = simulate(c, masks);
  EXPECT_DOUBLE_EQ(cpu.t_dyn, 6.0 + 6.0 + 5 * 0.25);
  EXPECT_DOUBLE_EQ(cpu.request_cpu_s_per_token, 1.25);
  c.device.request_cpu = 0;
  uint64_t ev = 0;
  ReadRuns reads;
  const std::vector<int32_t> a = {1, 2, 3}, b = {1, 2, 3, 4, 9};
  const std::vector<const std::vector<int32_t>*> seq = {&a, &b};
  cache_replay(SimPolicy::kLru, seq, 10, 3, ev, &reads);  // token 2 misses 4 and 9: two runs
  EXPECT_EQ(reads.runs, (std::vector<uint64_t>{1, 2}));
  EXPECT_EQ(reads.gap, (std::vector<uint64_t>{0, 0}));
  cache_replay(SimPolicy::kBelady, seq, 10, 3, ev, &reads);
  EXPECT_EQ(reads.runs, (std::vector<uint64_t>{1, 2}));
  // Joined across gaps: between 4 and 9 lie 4 columns (5..8): one read with that gap
  // at max_gap 4, two reads at 3.
  reads.max_gap = 4;
  cache_replay(SimPolicy::kLru, seq, 10, 3, ev, &reads);
  EXPECT_EQ(reads.runs, (std::vector<uint64_t>{1, 1}));
  EXPECT_EQ(reads.gap, (std::vector<uint64_t>{0, 4}));
  reads.max_gap = 3;
  cache_replay(SimPolicy::kLru, seq, 10, 3, ev, &reads);
  EXPECT_EQ(reads.runs, (std::vector<uint64_t>{1, 2}));
  EXPECT_EQ(reads.gap, (std::vector<uint64_t>{0, 0}));
}

// Past the paper: bundles of adjacent columns read whole, a per-batch latency, a compute term
// (roofline max or serial sum), and the cache split by traffic.
TEST(Simulator, BundleLatencyComputeByHand) {
  SimConfig c = tiny(288);  // no cache
  c.policy = SimPolicy::kNone;
  TokenMasks m;
  m.up = {{0, 1, 3}};
  m.down = {{0, 2, 4, 5, 6}};
  const std::vector<TokenMasks> masks = {m};
  c.bundle = 2;  // up units {0, 1}: 2 x (2 x 8 x 2 B) per matrix; down units {0, 1, 2, 3}: 4 x (2 x
                 // 4 x 2 B)
  SimResult r = simulate(c, masks);
  EXPECT_DOUBLE_EQ(r.flash_bytes_per_token, 2 * 2 * 32 + 4 * 16);
  EXPECT_DOUBLE_EQ(r.t_dyn, 128.0 / 16 + 64.0 / 16);
  EXPECT_DOUBLE_EQ(r.flash_requests_per_token, 2);  // one run of units per matrix
  c.device.flash_latency = 0.5;                     // both matrices miss: one round trip each
  EXPECT_DOUBLE_EQ(simulate(c, masks).t_dyn, 12.0 + 1.0);
  c.device.flash_qd = 1;  // one round trip per request: one request (run of units) per matrix here
  EXPECT_DOUBLE_EQ(simulate(c, masks).t_dyn, 12.0 + 1.0);
  c.bundle = 1;  // columns: up runs {0,1} {3}, down {0} {2} {4,5,6}: 2 + 3 rounds at queue depth 1
  EXPECT_DOUBLE_EQ(simulate(c, masks).t_dyn, 96.0 / 16 + 40.0 / 16 + 5 * 0.5);
  c.device.flash_qd = 2;  // ceil(2/2) + ceil(3/2) = 3 rounds
  EXPECT_DOUBLE_EQ(simulate(c, masks).t_dyn, 96.0 / 16 + 40.0 / 16 + 3 * 0.5);
  c.device.flash_qd = 0;
  c.bundle = 1;
  c.device.flash_latency = 0;
  c.device.compute_flops = 8;  // up 2 x 2 x 8 x 3 = 96 FLOPs (12 s), down 2 x 4 x 5 = 40 (5 s)
  r = simulate(c, masks);
  EXPECT_DOUBLE_EQ(r.t_dyn, std::max(6.0, 12.0) + std::max(2.5, 5.0));
  // Static work: 2 (H^2 (2 + 2g) L + H V) + 4 seq H L = 2 (48 + 40) + 64 = 240 FLOPs = 30 s.
  EXPECT_DOUBLE_EQ(r.t_fixed, 30.0);
  EXPECT_DOUBLE_EQ(r.compute_s_per_token, (96.0 + 40.0 + 240.0) / 8);
  c.compute_serial = true;
  r = simulate(c, masks);
  EXPECT_DOUBLE_EQ(r.t_dyn, 6.0 + 12.0 + 2.5 + 5.0);
  EXPECT_DOUBLE_EQ(r.t_fixed, 4.5 + 30.0);
}

TEST(Simulator, CacheSplitByTraffic) {
  SimConfig c = tiny(384);  // 96 B of cache: uniform = 2 up/gate columns (32 B each), 4 down (8 B)
  TokenMasks m;
  m.up = {{0, 1}};                      // 64 B kept per token
  m.down = {{0, 1, 2, 3, 4, 5, 6, 7}};  // 64 B kept per token
  const std::vector<TokenMasks> masks = {m, m};
  const Footprint fp = footprint(c);
  Replay u = replay(c, fp, masks);
  EXPECT_EQ(u.matrices[0].capacity, 2u);
  EXPECT_EQ(u.matrices[1].capacity, 4u);
  c.split = CacheSplit::kByTraffic;  // 48 B each: 1 up/gate column, 6 down columns
  Replay t = replay(c, fp, masks);
  EXPECT_EQ(t.matrices[0].capacity, 1u);
  EXPECT_EQ(t.matrices[1].capacity, 6u);
  EXPECT_EQ(t.matrices[1].hits[1], 6u);
  // A matrix never gets more than all of it: 4 up/gate columns (128 B) fill first here.
  c.device.dram_size = 288 + 160;
  m.down = {{0}};
  const std::vector<TokenMasks> skewed = {m};
  Replay f = replay(c, footprint(c), skewed);
  EXPECT_EQ(f.matrices[0].capacity, 4u);  // wants 64 of 72 B of traffic, capped at 128 B
  EXPECT_EQ(f.matrices[1].capacity, 4u);  // the remaining 32 B
  EXPECT_THROW(parse_cache_split("random"), Error);
}

TEST(Simulator, BeladyIsOptimalOnAHandSequence) {
  // One slot; accesses A B A C A B. Belady keeps A (hits at 2 and 4); LRU never hits.
  const std::vector<std::vector<int32_t>> s = {{0}, {1}, {0}, {2}, {0}, {1}};
  std::vector<const std::vector<int32_t>*> seq;
  for (const auto& v : s) seq.push_back(&v);
  uint64_t ev = 0;
  auto total = [](const std::vector<uint64_t>& h) {
    uint64_t t = 0;
    for (auto x : h) t += x;
    return t;
  };
  EXPECT_EQ(total(cache_replay(SimPolicy::kBelady, seq, 3, 1, ev)), 2u);
  EXPECT_EQ(total(cache_replay(SimPolicy::kLru, seq, 3, 1, ev)), 0u);
  EXPECT_EQ(total(cache_replay(SimPolicy::kNone, seq, 3, 1, ev)), 2u);  // A stays forever
  EXPECT_EQ(ev, 18u);
}

TEST(Simulator, BeladyBeatsOnlinePoliciesOnSyntheticMasks) {
  const ModelShape s = shape_preset("default");
  const auto masks = synthetic_masks(s, 200, 0.5, 1.0, 7);
  SimConfig c;
  c.shape = s;
  c.device = device_preset("a18");
  const Footprint full = footprint(c);
  c.device.dram_size = full.static_bytes + 0.4 * full.mlp;  // 40% of the MLP fits
  double hit[4];
  for (int p = 0; p < 4; ++p) {
    c.policy = SimPolicy(p);
    hit[p] = simulate(c, masks).hit_rate;
  }
  EXPECT_GT(hit[3], hit[1]);  // Belady > LRU
  EXPECT_GT(hit[3], hit[2]);  // Belady > LFU
  EXPECT_GT(hit[3], hit[0]);  // Belady > static
  c.policy = SimPolicy::kLru;
  const auto dense = synthetic_masks(s, 50, 1.0, 1.0, 7);
  EXPECT_LT(simulate(c, dense).tokens_per_s, simulate(c, masks).tokens_per_s);  // pruning pays
}

// Synthetic DIP-CA: gamma 1 is plain DIP (the same masks); a lower gamma prefers cached columns,
// so the simulated hit rate rises at the same cache.
TEST(Simulator, SyntheticCacheAwareMasks) {
  SimConfig c;
  c.shape = shape_preset("default");
  c.device = device_preset("a18");
  const Footprint full = footprint(c);
  c.device.dram_size = full.static_bytes + 0.3 * full.mlp;
  const Footprint fp = footprint(c);
  CacheAwareSynthesis ca{1.0, fp.upgate_columns, fp.down_columns, SimPolicy::kLru};
  const auto plain = synthetic_masks(c.shape, 40, 0.5, 1.0, 3);
  const auto same = synthetic_masks(c.shape, 40, 0.5, 1.0, 3, &ca);
  for (size_t t = 0; t < plain.size(); ++t) {
    ASSERT_EQ(plain[t].up, same[t].up);
    ASSERT_EQ(plain[t].down, same[t].down);
  }
  ca.gamma = 0.3;
  const auto aware = synthetic_masks(c.shape, 40, 0.5, 1.0, 3, &ca);
  EXPECT_EQ(aware[5].up[2].size(), plain[5].up[2].size());  // the same number of columns kept
  EXPECT_GT(simulate(c, aware).hit_rate, simulate(c, plain).hit_rate + 0.05);
  ca.policy = SimPolicy::kBelady;
  EXPECT_THROW(synthetic_masks(c.shape, 4, 0.5, 1.0, 3, &ca), Error);
}

TEST(Simulator, ImpossibleDevicesAndForeignTraces) {
  EXPECT_THROW(footprint(tiny(100)), Error);  // DRAM below the static 288 bytes
  SimConfig c = tiny(384);
  c.device.flash_bw = 0;
  EXPECT_THROW(footprint(c), Error);
  c = tiny(384);
  c.bits = 0;
  EXPECT_THROW(footprint(c), Error);
  Trace t;
  t.header.n_layer = 2;
  t.header.n_embd = 4;
  t.header.n_ff = 8;
  EXPECT_THROW(masks_from_trace(t, tiny(384).shape), Error);  // 2 layers, the shape has 1
  EXPECT_THROW(shape_preset("gpt-5"), Error);
  EXPECT_THROW(device_preset("nokia-3310"), Error);
  EXPECT_THROW(parse_sim_policy("random"), Error);
  EXPECT_THROW(simulate(tiny(384), {}), Error);
}

}  // namespace
}  // namespace dip
