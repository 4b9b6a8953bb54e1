// Model loading: every architecture loads and runs; bad files give one clear error.
#include "model/model.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <array>
#include <cmath>
#include <cstddef>
#include <cstring>

#include "convert/synth_model.h"
#include "io/gguf_writer.h"
#include "model/forward.h"
#include "ops/matvec.h"
#include "ops/repack_x8.h"
#include "util/error.h"

namespace dip {
namespace {

std::string tmp_path(const std::string& name) {
  return ::testing::TempDir() + "/dip_model_" + std::to_string(::getpid()) + "_" + name;
}

std::string make(Arch a, TensorType t, const std::string& name, bool tied = false) {
  SynthSpec s;
  s.arch = a;
  s.type = t;
  const bool k = is_k_quant(t);  // K-quant rows are whole super-blocks of 256
  s.n_embd = k ? 256 : 64;
  s.n_head = 4;
  s.n_head_kv = 2;
  s.n_ff = k ? 512 : 96;
  s.tied = tied;
  s.n_merges = 50;
  const std::string p = tmp_path(name);
  write_synth_model(s, p);
  return p;
}

TEST(Model, EveryArchitectureAndTypeRuns) {
  for (Arch a : {Arch::kLlama, Arch::kQwen2, Arch::kQwen3, Arch::kPhi3}) {
    for (TensorType t :
         {TensorType::F32, TensorType::F16, TensorType::BF16, TensorType::Q8_0, TensorType::Q4_0}) {
      auto m = Model::load(make(a, t, "run.gguf", a == Arch::kQwen3));
      Session s(*m, 64, 2);
      std::vector<float> logits;
      const int32_t toks[] = {1, 2, 3, 4, 5};
      s.eval(toks, true, logits);
      ASSERT_EQ(logits.size(), 5u * m->hparams().n_vocab);
      for (float v : logits) ASSERT_TRUE(std::isfinite(v));
      // Incremental evaluation gives the same last logits as the batch.
      Session s2(*m, 64, 1);
      std::vector<float> l2;
      for (int32_t tk : toks) s2.eval(std::span<const int32_t>(&tk, 1), false, l2);
      // A BF16 model's activations are rounded to BF16 (8 bits of mantissa) before each
      // product. Where the batch and the one-token kernels sum in different orders (the tiled
      // and the one-row float kernels of Highway's NEON target), an activation now and then
      // rounds the other way, a step of 0.4%, and the logits move by about that much.
      const float tol = t == TensorType::BF16 ? 1e-2f : 1e-3f;
      const size_t V = m->hparams().n_vocab;
      for (size_t i = 0; i < V; ++i)
        ASSERT_NEAR(l2[i], logits[4 * V + i], tol * (1 + std::fabs(l2[i])))
            << m->hparams().arch_name << " " << ggml_type_name(uint32_t(t)) << " logit " << i;
    }
  }
}

// --fast-weights: near-normal weights (sum of four uniforms) with the default's scale, other
// numbers than Box-Muller's, and the model runs.
TEST(Model, FastWeightsAreNearNormal) {
  SynthSpec s;
  s.type = TensorType::F32;
  s.n_embd = 256;
  s.n_ff = 512;
  s.n_merges = 50;
  s.fast_weights = true;
  const std::string fast = tmp_path("fast.gguf");
  write_synth_model(s, fast);
  s.fast_weights = false;
  const std::string slow = tmp_path("slow.gguf");
  write_synth_model(s, slow);
  auto mf = Model::load(fast), ms = Model::load(slow);
  auto moments = [](const Weight& w) {
    const float* p = reinterpret_cast<const float*>(w.data);
    const size_t n = w.bytes() / 4;
    double sum = 0, sq = 0, mx = 0;
    for (size_t i = 0; i < n; ++i)
      sum += p[i], sq += double(p[i]) * p[i], mx = std::max(mx, double(std::fabs(p[i])));
    return std::array<double, 3>{sum / double(n), std::sqrt(sq / double(n)), mx};
  };
  const auto f = moments(mf->layers[0].ffn_up), b = moments(ms->layers[0].ffn_up);
  const double want = 1.0 / std::sqrt(256.0);  // the default's std for ffn_up
  EXPECT_NEAR(f[0], 0.0, 0.02 * want);
  EXPECT_NEAR(f[1], want, 0.02 * want);
  EXPECT_NEAR(b[1], want, 0.02 * want);
  EXPECT_LT(f[2], 3.47 * want);  // sum of four uniforms: |x| <= sqrt(12)
  EXPECT_NE(std::memcmp(mf->layers[0].ffn_up.data, ms->layers[0].ffn_up.data, 64), 0);
  Session sess(*mf, 16, 2);
  std::vector<float> logits;
  const int32_t toks[] = {1, 2, 3};
  sess.eval(toks, false, logits);
  for (float v : logits) ASSERT_TRUE(std::isfinite(v));
}

void expect_load_error(const std::string& path, const std::string& needle) {
  try {
    Model::load(path);
    FAIL() << "no error, expected: " << needle;
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find(needle), std::string::npos) << m;
    EXPECT_NE(m.find(path), std::string::npos) << m;
  }
}

// Rewrites a synthetic model with one change applied to its metadata or tensors.
std::string mutate(const std::string& src, const std::string& name,
                   const std::function<bool(GgufWriter&, const std::string&, const GgufValue&)>& kv,
                   const std::function<bool(GgufWriter&, const GgufTensorInfo&)>& tensor) {
  GgufFile g(src);
  GgufWriter w;
  for (const auto& k : g.key_order()) {
    if (!kv || !kv(w, k, *g.find(k))) w.set_value(k, *g.find(k));
  }
  for (const auto& t : g.tensors()) {
    if (!tensor || !tensor(w, t)) w.add_tensor(t.name, t.type(), t.dims, t.data, t.n_bytes);
  }
  const std::string p = tmp_path(name);
  w.write(p);
  return p;
}

// Q4_0 matrices of a multiple of 8 rows are copied eight rows at a time on first use where the
// AVX2 kernel for that layout runs: once (the same copy after), equal to repacking the file's
// bytes (which are read again from the file after their pages were let go), and the product
// through the copy agrees with the product on the GGUF layout. Other types keep their bytes.
// Q4_0 and Q4_K matrices are copied once into the eight-row layout where the AVX2 kernels run,
// and the copy's products agree with the GGUF layout's (Q4_K: bit for bit, the same order).
TEST(Model, Q4MatricesAreRepackedOnceWhereTheAvx2KernelRuns) {
  auto f16 = Model::load(make(Arch::kLlama, TensorType::F16, "repack-f16.gguf"));
  EXPECT_EQ(f16->repacked(f16->layers[0].wq), nullptr);
  for (TensorType t : {TensorType::Q4_0, TensorType::Q4_K}) {
    SCOPED_TRACE(ggml_type_name(uint32_t(t)));
    auto m = Model::load(make(Arch::kLlama, t, "repack-q4.gguf"));
    const Weight& w = m->layers[0].wq;
    ASSERT_EQ(w.type, t);
    if (!x8_preferred(t)) {
      EXPECT_EQ(m->repacked(w), nullptr);
      continue;
    }
    const uint8_t* packed = m->repacked(w);
    ASSERT_NE(packed, nullptr);
    EXPECT_EQ(m->repacked(w), packed);
    std::vector<uint8_t> expect(w.bytes());
    repack_x8(t, w.data, w.rows, w.cols, expect.data());
    EXPECT_EQ(0, std::memcmp(packed, expect.data(), expect.size()));
    std::vector<float> x(w.cols * 3);
    for (size_t i = 0; i < x.size(); ++i) x[i] = std::sin(0.7f * float(i)) * 2.0f;
    EncodedActs a;
    encode_acts(w.type, x.data(), w.cols, 3, w.cols, a);
    std::vector<float> y_gguf(3 * w.rows), y_packed(3 * w.rows);
    matmul(w.type, w.data, w.cols, w.rows, a, y_gguf.data(), w.rows, nullptr);
    matmul_x8(t, packed, w.cols, w.rows, a, y_packed.data(), w.rows, nullptr);
    for (size_t i = 0; i < y_gguf.size(); ++i) {
      if (t == TensorType::Q4_K) {
        ASSERT_EQ(y_packed[i], y_gguf[i]) << i;
      } else {
        ASSERT_NEAR(y_packed[i], y_gguf[i], 1e-4 * (1 + std::fabs(y_gguf[i]))) << i;
      }
    }
  }
}

TEST(Model, BadModels) {
  const std::string ok = make(Arch::kLlama, TensorType::F32, "ok.gguf");
  expect_load_error(mutate(
                        ok, "arch.gguf",
                        [](GgufWriter& w, const std::string& k, const GgufValue&) {
                          if (k != "general.architecture") return false;
                          w.set_string(k, "mamba");
                          return true;
                        },
                        nullptr),
                    "unsupported architecture 'mamba'");
  expect_load_error(mutate(
                        ok, "heads.gguf",
                        [](GgufWriter& w, const std::string& k, const GgufValue&) {
                          if (k != "llama.attention.head_count_kv") return false;
                          w.set_u32(k, 3);
                          return true;
                        },
                        nullptr),
                    "not a multiple");
  expect_load_error(mutate(
                        ok, "nokey.gguf",
                        [](GgufWriter&, const std::string& k, const GgufValue&) {
                          return k == "llama.embedding_length";
                        },
                        nullptr),
                    "llama.embedding_length");
  expect_load_error(mutate(ok, "missing.gguf", nullptr,
                           [](GgufWriter&, const GgufTensorInfo& t) {
                             return t.name == "blk.1.ffn_down.weight";
                           }),
                    "blk.1.ffn_down.weight' is missing");
  expect_load_error(
      mutate(ok, "shape.gguf", nullptr,
             [](GgufWriter& w, const GgufTensorInfo& t) {
               if (t.name != "blk.0.attn_q.weight") return false;
               w.add_tensor(t.name, t.type(), {t.dims[1], t.dims[0] / 2}, t.data, t.n_bytes / 2);
               return true;
             }),
      "has shape");
  expect_load_error(mutate(ok, "type.gguf", nullptr,
                           [](GgufWriter& w, const GgufTensorInfo& t) {
                             if (t.name != "blk.0.attn_k.weight") return false;
                             std::vector<uint8_t> junk(t.dims[1] * (t.dims[0] / 256) * 144,
                                                       0);  // Q4_K-sized
                             w.add_tensor(t.name, TensorType(12), t.dims, junk.data(), junk.size());
                             return true;
                           }),
                    "type Q4_K");
  expect_load_error(mutate(ok, "extra.gguf", nullptr,
                           [](GgufWriter& w, const GgufTensorInfo& t) {
                             if (t.name != "output_norm.weight") return false;
                             w.add_tensor(t.name, t.type(), t.dims, t.data, t.n_bytes);
                             w.add_tensor("blk.0.mystery.weight", t.type(), t.dims, t.data,
                                          t.n_bytes);
                             return true;
                           }),
                    "unexpected tensor");
  expect_load_error(mutate(
                        ok, "vocab.gguf",
                        [](GgufWriter&, const std::string& k, const GgufValue&) {
                          return k == "tokenizer.ggml.tokens";
                        },
                        nullptr),
                    "tokenizer.ggml.tokens");
}

TEST(Model, KQuantModelsRun) {
  for (TensorType t :
       {TensorType::Q2_K, TensorType::Q3_K, TensorType::Q4_K, TensorType::Q5_K, TensorType::Q6_K}) {
    auto m = Model::load(make(Arch::kQwen2, t, "k.gguf"));
    Session s(*m, 64, 2);
    std::vector<float> logits;
    const int32_t toks[] = {1, 2, 3, 4, 5};
    s.eval(toks, true, logits);
    for (float v : logits) ASSERT_TRUE(std::isfinite(v));
    Session s2(*m, 64, 1);
    std::vector<float> l2;
    for (int32_t tk : toks) s2.eval(std::span<const int32_t>(&tk, 1), false, l2);
    const size_t V = m->hparams().n_vocab;
    for (size_t i = 0; i < V; ++i)
      ASSERT_EQ(l2[i], logits[4 * V + i]) << ggml_type_name(uint32_t(t));
  }
}

// A NaN or Inf F16 scale in a K-quant super-block: refused at load, naming tensor and block.
TEST(Model, KQuantNonFiniteScalesAreRefused) {
  struct Case {
    TensorType type;
    const char* tensor;
    size_t block, offset;
    uint16_t bits;
    const char* what;
  };
  const Case cases[] = {
      {TensorType::Q4_K, "blk.0.ffn_down.weight", 3, offsetof(BlockQ4K, d), 0x7e00, "NaN d"},
      {TensorType::Q5_K, "blk.1.ffn_up.weight", 0, offsetof(BlockQ5K, dmin), 0xfc00, "-Inf dmin"},
      {TensorType::Q6_K, "blk.0.attn_q.weight", 5, offsetof(BlockQ6K, d), 0x7c00, "Inf d"},
      {TensorType::Q2_K, "blk.1.attn_k.weight", 2, offsetof(BlockQ2K, dmin), 0x7e01, "NaN dmin"},
      {TensorType::Q2_K, "blk.0.ffn_gate.weight", 1, offsetof(BlockQ2K, d), 0xfc00, "-Inf d"},
      {TensorType::Q3_K, "blk.1.attn_output.weight", 4, offsetof(BlockQ3K, d), 0x7c00, "Inf d"},
  };
  for (const Case& c : cases) {
    const std::string ok = make(Arch::kLlama, c.type, "kok.gguf");
    const std::string bad =
        mutate(ok, "kbad.gguf", nullptr, [&](GgufWriter& w, const GgufTensorInfo& t) {
          if (t.name != c.tensor) return false;
          std::vector<uint8_t> bytes(t.data, t.data + t.n_bytes);
          std::memcpy(&bytes[c.block * block_bytes(c.type) + c.offset], &c.bits, 2);
          w.add_tensor(t.name, t.type(), t.dims, bytes.data(), bytes.size());
          return true;
        });
    expect_load_error(bad, fmt::format("'{}' ({}): super-block {} has a NaN or infinite scale",
                                       c.tensor, ggml_type_name(uint32_t(c.type)), c.block));
  }
}

TEST(Session, ContextOverflowAndBadTokens) {
  auto m = Model::load(make(Arch::kLlama, TensorType::F32, "ctx.gguf"));
  Session s(*m, 4, 1);
  std::vector<float> l;
  const int32_t toks[] = {1, 2, 3, 4, 5};
  EXPECT_THROW(s.eval(toks, false, l), Error);
  const int32_t bad[] = {int32_t(m->hparams().n_vocab)};
  EXPECT_THROW(s.eval(bad, false, l), Error);
}

}  // namespace
}  // namespace dip
