// Memory read bandwidth of this machine, measured the way token generation reads weights:
// N threads each stream their share of a buffer far larger than the caches, summing it with
// SIMD loads. The buffer holds pseudo-random data: pages with repeated content can be merged
// by a hypervisor and then read faster than real weights ever are (seen here: 55 GB/s for
// memset pages against 34 GB/s for random ones).
// Prints one JSON object: {"threads", "bytes", "gbps_median", "gbps_runs"}.
#include <hwy/aligned_allocator.h>
#include <hwy/cache_control.h>
#include <hwy/highway.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "ops/kernel_tiling.h"
#include "util/threadpool.h"

namespace hn = hwy::HWY_NAMESPACE;

// HWY_ATTR: on Arm the static target needs its target attributes on the function.
static HWY_ATTR float sum_range(const float* p, size_t n) {
  const hn::ScalableTag<float> d;
  const size_t L = hn::Lanes(d);
  auto a0 = hn::Zero(d), a1 = hn::Zero(d), a2 = hn::Zero(d), a3 = hn::Zero(d);
  for (size_t i = 0; i + 4 * L <= n; i += 4 * L) {
    // Software prefetch every line, as far ahead as the weight kernels do: on some machines
    // (the AVX-512 Xeon VM of 2026-12-02) the hardware prefetchers alone reach only ~3/4 of
    // what the memory delivers, and the limit is what the memory delivers.
    for (size_t b = 0; b < 4 * L * sizeof(float); b += 64) {
      hwy::Prefetch(reinterpret_cast<const uint8_t*>(p + i) + dip::kWeightPrefetchBytes + b);
    }
    a0 = hn::Add(a0, hn::Load(d, p + i));
    a1 = hn::Add(a1, hn::Load(d, p + i + L));
    a2 = hn::Add(a2, hn::Load(d, p + i + 2 * L));
    a3 = hn::Add(a3, hn::Load(d, p + i + 3 * L));
  }
  return hn::GetLane(hn::SumOfLanes(d, hn::Add(hn::Add(a0, a1), hn::Add(a2, a3))));
}

int main(int argc, char** argv) {
  const int threads = argc > 1 ? std::atoi(argv[1]) : 2;
  const size_t mib = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 1024;
  const int runs = argc > 3 ? std::atoi(argv[3]) : 7;
  if (threads < 1 || mib < 64 || runs < 1) {
    std::fprintf(stderr, "usage: membw [THREADS>=1] [MIB>=64] [RUNS>=1]\n");
    return 2;
  }
  const size_t n = mib * (1u << 20) / sizeof(float);
  auto buf = hwy::AllocateAligned<float>(n);
  dip::ThreadPool pool(threads);
  const size_t chunk = 1u << 16;  // floats per task (256 KiB), a multiple of every vector size
  pool.parallel_for(n, chunk, [&](size_t b, size_t e) {
    uint64_t st = 0x9E3779B97F4A7C15ull ^ b;
    for (size_t i = b; i < e; ++i) {
      st ^= st << 13;
      st ^= st >> 7;
      st ^= st << 17;
      buf[i] = float(st >> 40) * 1e-7f;
    }
  });
  std::vector<double> gbps;
  volatile float sink = 0;
  for (int r = 0; r < runs; ++r) {
    std::vector<float> part(threads, 0.0f);
    const auto t0 = std::chrono::steady_clock::now();
    pool.run([&](int t, int nt) {
      const size_t per = n / nt / chunk * chunk;
      const size_t b = size_t(t) * per, e = t + 1 == nt ? n / chunk * chunk : b + per;
      part[t] = sum_range(buf.get() + b, e - b);
    });
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    for (float v : part) sink = sink + v;
    gbps.push_back(double(n / chunk * chunk) * sizeof(float) / s / 1e9);
  }
  std::vector<double> sorted = gbps;
  std::sort(sorted.begin(), sorted.end());
  std::string list;
  for (double g : gbps) {
    if (!list.empty()) list.push_back(',');
    list.append(std::to_string(g));
  }
  std::printf("{\"threads\":%d,\"bytes\":%zu,\"gbps_median\":%.3f,\"gbps_runs\":[%s]}\n", threads,
              n * sizeof(float), sorted[sorted.size() / 2], list.c_str());
  return 0;
}
