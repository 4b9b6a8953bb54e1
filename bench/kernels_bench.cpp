// Google Benchmark micro-benchmarks of the kernels: matrix-vector (generation) and small
// batched matrix-matrix (prompt) products per weight type, activation encoding, and the
// element-wise ops of a layer. bytes_per_second is weight bytes read per second.
//
//   build/release/bench/kernels_bench --benchmark_filter=Gemv
#include <benchmark/benchmark.h>

#include <random>
#include <string>
#include <vector>

#include "ops/colsparse.h"
#include "ops/elementwise.h"
#include "ops/matvec.h"
#include "ops/qdot_x86.h"
#include "ops/quant.h"
#include "ops/repack_x8.h"
#include "util/threadpool.h"

namespace {
using namespace dip;

const TensorType kTypes[] = {TensorType::F32, TensorType::F16, TensorType::BF16, TensorType::Q8_0,
                             TensorType::Q4_0};

std::vector<float> random_floats(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

// A weight matrix of `rows` x `cols` of type t with random values, quantized row by row.
std::vector<uint8_t> random_weight(TensorType t, size_t rows, size_t cols) {
  const size_t rb = row_bytes(t, cols);
  std::vector<uint8_t> w(rows * rb);
  std::vector<float> row;
  for (size_t r = 0; r < rows; ++r) {
    row = random_floats(cols, uint32_t(r + 1));
    quantize_row(t, row.data(), &w[r * rb], cols);
  }
  return w;
}

// args: type index, rows, cols, batch, threads
void BM_Matmul(benchmark::State& st) {
  const TensorType t = kTypes[st.range(0)];
  const size_t rows = st.range(1), cols = st.range(2), batch = st.range(3);
  ThreadPool pool(int(st.range(4)));
  const auto w = random_weight(t, rows, cols);
  const auto x = random_floats(cols * batch, 7);
  EncodedActs a;
  encode_acts(t, x.data(), cols, batch, cols, a);
  std::vector<float> y(rows * batch);
  for (auto _ : st) {
    matmul(t, w.data(), cols, rows, a, y.data(), rows, &pool);
    benchmark::DoNotOptimize(y.data());
  }
  st.SetBytesProcessed(int64_t(st.iterations()) * int64_t(w.size()));
  st.SetItemsProcessed(int64_t(st.iterations()) * int64_t(rows * cols * batch));
  st.SetLabel(ggml_type_name(uint32_t(t)));
}

void GemvArgs(benchmark::internal::Benchmark* b) {
  for (int t = 0; t < 5; ++t) {
    b->Args({t, 4096, 4096, 1, 2});   // Llama-3-8B attention projection
    b->Args({t, 14336, 4096, 1, 2});  // its up / gate projection
  }
}
void BatchArgs(benchmark::internal::Benchmark* b) {
  for (int t = 0; t < 5; ++t) b->Args({t, 2048, 2048, 32, 2});
  // A 512-token prompt's batch: its activations (4 MiB as floats) no longer fit L2.
  for (int t = 0; t < 5; ++t) b->Args({t, 2048, 2048, 512, 2});
}
// In-cache (L2-sized weights, one thread): the kernels' compute rate without the memory
// bound, which is what decides quantized prompt processing and Q4_0 generation.
void HotArgs(benchmark::internal::Benchmark* b) {
  for (int t = 0; t < 5; ++t) {
    b->Args({t, 256, 2048, 1, 1});
    b->Args({t, 256, 2048, 32, 1});
  }
}
BENCHMARK(BM_Matmul)
    ->Name("Hot")
    ->Apply(HotArgs)
    ->ArgNames({"type", "rows", "cols", "batch", "threads"})
    ->UseRealTime();
BENCHMARK(BM_Matmul)
    ->Name("Gemv")
    ->Apply(GemvArgs)
    ->ArgNames({"type", "rows", "cols", "batch", "threads"})
    ->UseRealTime();
// Column-sparse product, in cache, one thread: args type index, outputs, columns, kept columns.
// bytes_per_second counts the kept columns' bytes: the kernel's compute rate per byte, to set
// against the memory bandwidth (sparse_bench measures the out-of-cache product).
void BM_ColSparseHot(benchmark::State& st) {
  const TensorType t = kTypes[st.range(0)];
  const size_t rows = st.range(1), cols = st.range(2), kept = st.range(3);
  const auto w = random_weight(t, rows, cols);
  const ColumnMatrix m = make_column_matrix(t, {w.data()}, rows, cols, t);
  std::vector<int32_t> idx(kept);
  for (size_t i = 0; i < kept; ++i) idx[i] = int32_t(i * cols / kept);
  const auto xs = random_floats(kept, 9);
  std::vector<float> y(rows);
  for (auto _ : st) {
    colsparse(m, idx.data(), xs.data(), kept, y.data(), nullptr);
    benchmark::DoNotOptimize(y.data());
  }
  st.SetBytesProcessed(int64_t(st.iterations()) * int64_t(kept * m.col_bytes));
  st.SetLabel(ggml_type_name(uint32_t(t)));
}
BENCHMARK(BM_ColSparseHot)
    ->Name("ColsHot")
    ->ArgsProduct({{0, 1, 2, 3, 4}, {1024}, {512}, {256}})
    ->ArgNames({"type", "rows", "cols", "kept"})
    ->UseRealTime();
BENCHMARK(BM_Matmul)
    ->Name("Batch")
    ->Apply(BatchArgs)
    ->ArgNames({"type", "rows", "cols", "batch", "threads"})
    ->UseRealTime();

// Q4_0 and Q4_K in GGUF layout (what matmul picks) against the same matrix repacked eight rows at
// a time (repack_x8.h), in the same run: args type (ggml id: 2 Q4_0, 12 Q4_K), layout (0 GGUF,
// 1 repacked), rows, cols, batch, threads.
void BM_Repacked(benchmark::State& st) {
  const TensorType t = TensorType(st.range(0));
  const bool repacked = st.range(1) == 1;
  const size_t rows = st.range(2), cols = st.range(3), batch = st.range(4);
  if (repacked && !x8_available(t)) {
    st.SkipWithError("no AVX2 on this CPU");
    return;
  }
  ThreadPool pool(int(st.range(5)));
  const auto w = random_weight(t, rows, cols);
  std::vector<uint8_t> packed(w.size());
  repack_x8(t, w.data(), rows, cols, packed.data());
  const auto x = random_floats(cols * batch, 7);
  EncodedActs a;
  encode_acts(t, x.data(), cols, batch, cols, a);
  std::vector<float> y(rows * batch);
  for (auto _ : st) {
    if (repacked) {
      matmul_x8(t, packed.data(), cols, rows, a, y.data(), rows, &pool);
    } else {
      matmul(t, w.data(), cols, rows, a, y.data(), rows, &pool);
    }
    benchmark::DoNotOptimize(y.data());
  }
  st.SetBytesProcessed(int64_t(st.iterations()) * int64_t(w.size()));
  st.SetItemsProcessed(int64_t(st.iterations()) * int64_t(rows * cols * batch));
  st.SetLabel(ggml_type_name(uint32_t(t)) + (repacked ? " repacked x8" : " GGUF layout"));
}
BENCHMARK(BM_Repacked)
    ->Name("Repacked")
    ->ArgsProduct({{2, 12}, {0, 1}, {256}, {2048}, {1, 32}, {1}})
    ->ArgsProduct({{2, 12}, {0, 1}, {4096, 14336}, {4096}, {1}, {2}})
    ->ArgsProduct({{2, 12}, {0, 1}, {2048}, {2048}, {32}, {2}})
    ->ArgNames({"type", "layout", "rows", "cols", "batch", "threads"})
    ->UseRealTime();

// K-quant kernels side by side, in cache, one thread: args K type (0 Q4_K, 1 Q5_K, 2 Q6_K,
// 3 Q2_K, 4 Q3_K), kernel (0: the portable Highway dot per row and activation, what CPUs without
// a hand-written kernel run; 1: AVX2; 2: AVX-512 VNNI, which Q2_K and Q3_K do not have), batch.
// Kernels this CPU lacks are skipped.
void BM_KQuantHot(benchmark::State& st) {
  const TensorType kK[] = {TensorType::Q4_K, TensorType::Q5_K, TensorType::Q6_K, TensorType::Q2_K,
                           TensorType::Q3_K};
  const QdotIsa kIsa[] = {QdotIsa::kNone, QdotIsa::kAvx2, QdotIsa::kAvx512};
  const TensorType t = kK[st.range(0)];
  const QdotIsa isa = kIsa[st.range(1)];
  const size_t rows = 256, cols = 2048, batch = st.range(2);
  if (isa != QdotIsa::kNone && !qdot_x86_available(isa)) {
    st.SkipWithError("kernel not available on this CPU");
    return;
  }
  if (isa == QdotIsa::kAvx512 && (t == TensorType::Q2_K || t == TensorType::Q3_K)) {
    st.SkipWithError("Q2_K and Q3_K run the AVX2 kernel on AVX-512 CPUs");
    return;
  }
  const auto w = random_weight(t, rows, cols);
  const auto x = random_floats(cols * batch, 7);
  EncodedActs a;
  encode_acts(t, x.data(), cols, batch, cols, a);
  const size_t rb = row_bytes(t, cols);
  std::vector<float> y(rows * batch);
  for (auto _ : st) {
    if (isa == QdotIsa::kNone) {
      for (size_t b = 0; b < batch; ++b)
        for (size_t r = 0; r < rows; ++r) y[b * rows + r] = dot_simd(t, &w[r * rb], a.row(b), cols);
    } else {
      kmatmul_x86(isa, t, w.data(), rb, cols, a.data.data(), a.row_bytes, batch, y.data(), rows, 0,
                  rows);
    }
    benchmark::DoNotOptimize(y.data());
  }
  st.SetBytesProcessed(int64_t(st.iterations()) * int64_t(w.size()));
  st.SetItemsProcessed(int64_t(st.iterations()) * int64_t(rows * cols * batch));
  st.SetLabel(ggml_type_name(uint32_t(t)) + std::string(isa == QdotIsa::kNone ? " highway" : " ") +
              (isa == QdotIsa::kNone ? "" : qdot_isa_name(isa)));
}
BENCHMARK(BM_KQuantHot)
    ->Name("KHot")
    ->ArgsProduct({{0, 1, 2, 3, 4}, {0, 1, 2}, {1, 32}})
    ->ArgNames({"ktype", "kernel", "batch"})
    ->UseRealTime();

void BM_EncodeActs(benchmark::State& st) {
  const TensorType t = kTypes[st.range(0)];
  const size_t n = 14336;
  const auto x = random_floats(n, 3);
  EncodedActs a;
  for (auto _ : st) {
    encode_acts(t, x.data(), n, 1, n, a);
    benchmark::DoNotOptimize(a.data.data());
  }
  st.SetItemsProcessed(int64_t(st.iterations()) * int64_t(n));
  st.SetLabel(ggml_type_name(uint32_t(t)));
}
BENCHMARK(BM_EncodeActs)->DenseRange(0, 4);

void BM_RmsNorm(benchmark::State& st) {
  const size_t n = 4096;
  const auto x = random_floats(n, 4), w = random_floats(n, 5);
  std::vector<float> y(n);
  for (auto _ : st) {
    rms_norm(x.data(), w.data(), y.data(), n, 1e-5f);
    benchmark::DoNotOptimize(y.data());
  }
  st.SetItemsProcessed(int64_t(st.iterations()) * int64_t(n));
}
BENCHMARK(BM_RmsNorm);

void BM_Swiglu(benchmark::State& st) {
  const size_t n = 14336;
  const auto g = random_floats(n, 6), u = random_floats(n, 8);
  std::vector<float> h(n);
  for (auto _ : st) {
    swiglu(g.data(), u.data(), h.data(), n);
    benchmark::DoNotOptimize(h.data());
  }
  st.SetItemsProcessed(int64_t(st.iterations()) * int64_t(n));
}
BENCHMARK(BM_Swiglu);

}  // namespace

BENCHMARK_MAIN();
