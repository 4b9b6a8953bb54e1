// Column-sparse GEMV against dense GEMV on a Llama-3-8B-sized MLP matrix (up projection:
// 14336 outputs x 4096 inputs), for every weight type and kept-column densities 10%..100%.
// Dense: the engine's row-major kernel over the whole matrix. Sparse: the column-major copy,
// a random kept set of the given density (top-k of |x| in the engine; random here).
// Effective bandwidth = bytes of the kept columns / time, against the read bandwidth measured
// by the same command (random data, same threads).
//
//   build/release/bench/sparse_bench [--threads 2] [--reps 15] [--rows 14336] [--cols 4096]
//                                    [--types f32,f16,bf16,q8_0,q4_0]
#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "ops/colsparse.h"
#include "ops/matvec.h"
#include "ops/quant.h"
#include "util/threadpool.h"

using namespace dip;
using Clock = std::chrono::steady_clock;

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Reading 96 MiB evicts the last-level cache (32 MiB here), so a small kept set is not
// served from cache on the next repetition (in a model, every layer's matrix is new).
void evict_caches() {
  static std::vector<uint8_t> junk(96u << 20, 1);
  volatile uint8_t sink = 0;
  for (size_t i = 0; i < junk.size(); i += 64) sink = sink + junk[i];
}

template <class F>
double time_median(int reps, F&& f) {
  std::vector<double> t;
  f();  // warm-up
  for (int r = 0; r < reps; ++r) {
    evict_caches();
    const auto t0 = Clock::now();
    f();
    t.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
  }
  return median(t);
}

// Read bandwidth: sum a 1 GiB buffer of random floats with the dense F32 kernel's loads.
double measure_bw(ThreadPool& pool, int reps) {
  const size_t n = size_t(1) << 28;
  std::vector<float> buf(n);
  std::mt19937 rng(1);
  for (auto& v : buf) v = float(rng() >> 8) * 1e-7f;
  // A 1 x n "matrix" per thread chunk through the F32 GEMV: rows of 4096.
  const size_t cols = 4096, rows = n / cols;
  std::vector<float> x(cols, 1.0f), y(rows);
  EncodedActs a;
  encode_acts(TensorType::F32, x.data(), cols, 1, cols, a);
  const double s = time_median(
      reps, [&] { matmul(TensorType::F32, buf.data(), cols, rows, a, y.data(), rows, &pool); });
  return double(n) * 4 / s / 1e9;
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 2, reps = 15;
  size_t rows = 14336, cols = 4096;
  std::string types = "f32,f16,bf16,q8_0,q4_0";
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i];
    if (k == "--types") {
      types = argv[i + 1];
      continue;
    }
    const long v = std::atol(argv[i + 1]);
    if (v <= 0) {
      std::fprintf(stderr, "sparse_bench: bad value for %s\n", k.c_str());
      return 2;
    }
    if (k == "--threads")
      threads = int(v);
    else if (k == "--reps")
      reps = int(v);
    else if (k == "--rows")
      rows = size_t(v);
    else if (k == "--cols")
      cols = size_t(v);
    else {
      std::fprintf(stderr, "sparse_bench: unknown option %s\n", k.c_str());
      return 2;
    }
  }
  // Every name in --types must be one of the five: a typo would otherwise print an empty table.
  std::vector<TensorType> selected;
  for (size_t p = 0; p <= types.size();) {
    const size_t e = std::min(types.find(',', p), types.size());
    const std::string want = types.substr(p, e - p);
    bool found = false;
    for (TensorType t :
         {TensorType::F32, TensorType::F16, TensorType::BF16, TensorType::Q8_0, TensorType::Q4_0}) {
      std::string name = ggml_type_name(uint32_t(t));
      for (char& ch : name) ch = char(std::tolower(ch));
      if (name == want) {
        selected.push_back(t);
        found = true;
      }
    }
    if (!found) {
      std::fprintf(stderr,
                   "sparse_bench: unknown type '%s' in --types (f32, f16, bf16, q8_0, q4_0)\n",
                   want.c_str());
      return 2;
    }
    p = e + 1;
  }
  if (rows % 32 || cols % 32) {
    std::fprintf(stderr, "sparse_bench: rows and cols must be multiples of 32\n");
    return 2;
  }
  ThreadPool pool(threads);
  const double bw = measure_bw(pool, 7);
  std::printf("Column-sparse vs dense GEMV, %zu outputs x %zu inputs, %d threads, median of %d\n",
              rows, cols, threads, reps);
  std::printf("read bandwidth (same command, F32 GEMV over 1 GiB of random data): %.1f GB/s\n\n",
              bw);
  std::printf(
      "| type | density | dense ms | sparse ms | speed-up | kept MB | sparse GB/s | share of read "
      "BW |\n");
  std::printf("| --- | --- | --- | --- | --- | --- | --- | --- |\n");
  std::mt19937 rng(42);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> wf(rows * cols);
  for (auto& v : wf) v = nd(rng);
  std::vector<float> x(cols);
  for (auto& v : x) v = nd(rng);
  std::vector<float> y(rows);
  for (TensorType t : selected) {
    const size_t rb = row_bytes(t, cols);
    std::vector<uint8_t> w(rows * rb);
    for (size_t r = 0; r < rows; ++r) quantize_row(t, &wf[r * cols], &w[r * rb], cols);
    const ColumnMatrix m = make_column_matrix(t, {w.data()}, rows, cols, t);
    EncodedActs a;
    const double dense = time_median(reps, [&] {
      encode_acts(t, x.data(), cols, 1, cols, a);
      matmul(t, w.data(), cols, rows, a, y.data(), rows, &pool);
    });
    for (int pct = 10; pct <= 100; pct += 10) {
      const size_t k = cols * size_t(pct) / 100;
      std::vector<int32_t> idx(cols);
      std::iota(idx.begin(), idx.end(), 0);
      std::shuffle(idx.begin(), idx.end(), rng);
      idx.resize(k);
      std::sort(idx.begin(), idx.end());
      std::vector<float> xs(k);
      for (size_t i = 0; i < k; ++i) xs[i] = x[size_t(idx[i])];
      const double sparse =
          time_median(reps, [&] { colsparse(m, idx.data(), xs.data(), k, y.data(), &pool); });
      const double kept = double(k) * double(m.col_bytes);
      std::printf("| %s | %d%% | %.3f | %.3f | %.2fx | %.1f | %.1f | %.0f%% |\n",
                  ggml_type_name(uint32_t(t)).c_str(), pct, dense * 1e3, sparse * 1e3,
                  dense / sparse, kept / 1e6, kept / sparse / 1e9, 100 * kept / sparse / 1e9 / bw);
      std::fflush(stdout);
    }
  }
  return 0;
}
