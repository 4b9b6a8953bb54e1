#include "convert/synth_model.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <thread>
#include <vector>

#include "convert/convert.h"
#include "io/gguf.h"
#include "io/gguf_writer.h"
#include "ops/quant.h"
#include "tokenizer/pretokenize.h"
#include "tokenizer/unicode.h"
#include "util/error.h"
#include "util/threadpool.h"

namespace dip {

TensorType parse_tensor_type(const std::string& s) {
  if (s == "f32" || s == "F32") return TensorType::F32;
  if (s == "f16" || s == "F16") return TensorType::F16;
  if (s == "bf16" || s == "BF16") return TensorType::BF16;
  if (s == "q8_0" || s == "Q8_0") return TensorType::Q8_0;
  if (s == "q4_0" || s == "Q4_0") return TensorType::Q4_0;
  if (s == "q2_k" || s == "Q2_K") return TensorType::Q2_K;
  if (s == "q3_k" || s == "Q3_K") return TensorType::Q3_K;
  if (s == "q4_k" || s == "Q4_K") return TensorType::Q4_K;
  if (s == "q5_k" || s == "Q5_K") return TensorType::Q5_K;
  if (s == "q6_k" || s == "Q6_K") return TensorType::Q6_K;
  fail("unknown tensor type '{}' (f32, f16, bf16, q8_0, q4_0, q2_k, q3_k, q4_k, q5_k, q6_k)", s);
}

Arch parse_arch(const std::string& s) {
  if (s == "llama") return Arch::kLlama;
  if (s == "qwen2") return Arch::kQwen2;
  if (s == "qwen3") return Arch::kQwen3;
  if (s == "phi3") return Arch::kPhi3;
  fail("unknown architecture '{}' (llama, qwen2, qwen3, phi3)", s);
}

namespace {

// Deterministic normal numbers on every platform (splitmix64 + Box-Muller).
class Rng {
 public:
  explicit Rng(uint64_t seed) : s_(seed) {}
  uint64_t next() {
    uint64_t z = (s_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  double uniform() { return (double(next() >> 11) + 0.5) * (1.0 / 9007199254740992.0); }
  float normal() {
    const double u1 = uniform(), u2 = uniform();
    return float(std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2));
  }
  // Near-normal from one draw: four 16-bit uniforms summed, centred, scaled to unit variance
  // (each has variance 65536^2 / 12).
  float sum4_normal() {
    const uint64_t z = next();
    const double sum = double(z & 0xffff) + double((z >> 16) & 0xffff) +
                       double((z >> 32) & 0xffff) + double(z >> 48);
    return float((sum - 4 * 32767.5) * (1.0 / 37837.23));
  }
  float draw(bool fast) { return fast ? sum4_normal() : normal(); }
  // Jumps over n draws (normal(): two next() each, sum4_normal(): one; the state is a counter),
  // so a tensor's rows can be drawn in parallel and still give the sequential stream's numbers.
  void skip(uint64_t n, bool fast) { s_ += (fast ? 1 : 2) * n * 0x9e3779b97f4a7c15ull; }

 private:
  uint64_t s_;
};

// Public-domain text (Lincoln's Gettysburg Address and the opening of the US Declaration of
// Independence) that the built-in vocabulary's merges are learned from.
const char* kCorpus =
    "Four score and seven years ago our fathers brought forth on this continent, a new nation, "
    "conceived in Liberty, and dedicated to the proposition that all men are created equal. Now "
    "we are engaged in a great civil war, testing whether that nation, or any nation so conceived "
    "and so dedicated, can long endure. We are met on a great battle-field of that war. We have "
    "come to dedicate a portion of that field, as a final resting place for those who here gave "
    "their lives that that nation might live. It is altogether fitting and proper that we should "
    "do this. But, in a larger sense, we can not dedicate -- we can not consecrate -- we can not "
    "hallow -- this ground. The brave men, living and dead, who struggled here, have consecrated "
    "it, far above our poor power to add or detract. The world will little note, nor long "
    "remember what we say here, but it can never forget what they did here. It is for us the "
    "living, rather, to be dedicated here to the unfinished work which they who fought here have "
    "thus far so nobly advanced. It is rather for us to be here dedicated to the great task "
    "remaining before us -- that from these honored dead we take increased devotion to that cause "
    "for which they gave the last full measure of devotion -- that we here highly resolve that "
    "these dead shall not have died in vain -- that this nation, under God, shall have a new "
    "birth of freedom -- and that government of the people, by the people, for the people, shall "
    "not perish from the earth.\n"
    "When in the Course of human events, it becomes necessary for one people to dissolve the "
    "political bands which have connected them with another, and to assume among the powers of "
    "the earth, the separate and equal station to which the Laws of Nature and of Nature's God "
    "entitle them, a decent respect to the opinions of mankind requires that they should declare "
    "the causes which impel them to the separation. We hold these truths to be self-evident, that "
    "all men are created equal, that they are endowed by their Creator with certain unalienable "
    "Rights, that among these are Life, Liberty and the pursuit of Happiness. The President said "
    "that the people of the United States of America have 1776 reasons to remember 2024.\n";

struct BuiltinVocab {
  std::vector<std::string> tokens;
  std::vector<int32_t> types;
  std::vector<std::string> merges;
};

// Greedy BPE training over the pre-tokenized corpus.
BuiltinVocab train_builtin_vocab(const std::string& pre, uint32_t n_merges) {
  BuiltinVocab v;
  for (int b = 0; b < 256; ++b) {
    v.tokens.push_back(byte_to_unicode(uint8_t(b)));
    v.types.push_back(1);
  }
  std::map<std::string, int> word_freq;
  for (const auto& w : bpe_pre_split(kCorpus, pre_type_from_name(pre, "built-in vocabulary")))
    word_freq[w]++;
  std::vector<std::pair<std::vector<std::string>, int>> words;
  for (const auto& [w, f] : word_freq) {
    std::vector<std::string> syms;
    for (size_t i = 0; i < w.size();) {
      const size_t n = utf8_len(w[i]);
      syms.push_back(w.substr(i, n));
      i += n;
    }
    words.emplace_back(std::move(syms), f);
  }
  for (uint32_t m = 0; m < n_merges; ++m) {
    std::map<std::pair<std::string, std::string>, int> pairs;
    for (const auto& [syms, f] : words) {
      for (size_t i = 0; i + 1 < syms.size(); ++i) pairs[{syms[i], syms[i + 1]}] += f;
    }
    if (pairs.empty()) break;
    auto best = std::max_element(pairs.begin(), pairs.end(),
                                 [](const auto& a, const auto& b) { return a.second < b.second; });
    if (best->second < 2) break;
    const auto [l, r] = best->first;
    v.merges.push_back(l + " " + r);
    v.tokens.push_back(l + r);
    v.types.push_back(1);
    for (auto& [syms, f] : words) {
      std::vector<std::string> out;
      for (size_t i = 0; i < syms.size(); ++i) {
        if (i + 1 < syms.size() && syms[i] == l && syms[i + 1] == r) {
          out.push_back(l + r);
          ++i;
        } else {
          out.push_back(syms[i]);
        }
      }
      syms = std::move(out);
    }
  }
  v.tokens.push_back("<|endoftext|>");
  v.types.push_back(3);
  return v;
}

}  // namespace

void write_synth_model(const SynthSpec& sp, const std::string& path,
                       const std::function<void(size_t, size_t, const std::string&)>& progress) {
  const size_t block = block_elems(sp.type);
  const bool quant = block > 1;
  if (sp.n_head == 0 || sp.n_head_kv == 0 || sp.n_head % sp.n_head_kv || sp.n_embd % sp.n_head) {
    fail(
        "synthetic model: heads ({}) must divide the embedding ({}) and be a multiple of kv heads "
        "({})",
        sp.n_head, sp.n_embd, sp.n_head_kv);
  }
  if (quant && (sp.n_embd % block || sp.n_ff % block))
    fail("synthetic model: {} needs dimensions that are multiples of {}",
         ggml_type_name(uint32_t(sp.type)), block);
  GgufWriter w;
  const std::string arch = arch_display_name(sp.arch);
  HParams hp;
  hp.arch = sp.arch;
  hp.arch_name = arch;
  hp.n_ctx_train = sp.n_ctx;
  hp.n_embd = sp.n_embd;
  hp.n_layer = sp.n_layer;
  hp.n_ff = sp.n_ff;
  hp.n_head = sp.n_head;
  hp.n_head_kv = sp.n_head_kv;
  hp.head_dim = hp.head_dim_v = hp.n_rot = sp.n_embd / sp.n_head;
  hp.rms_eps = 1e-5f;
  hp.rope_base = sp.rope_base > 0 ? sp.rope_base : sp.arch == Arch::kLlama ? 10000.0f : 1000000.0f;
  write_hparams(w, hp);
  w.set_string("general.name", "dip synthetic test model");
  w.set_u32("general.alignment", 32);
  const uint32_t hd = hp.head_dim;

  uint32_t n_vocab = 0;
  if (!sp.vocab_from.empty()) {
    GgufFile src(sp.vocab_from);
    for (const auto& key : src.key_order()) {
      if (key.rfind("tokenizer.", 0) == 0) w.set_value(key, *src.find(key));
    }
    const GgufValue* toks = src.get_array("tokenizer.ggml.tokens", GgufType::STRING);
    if (!toks) fail("{}: has no tokenizer.ggml.tokens to copy", sp.vocab_from);
    n_vocab = uint32_t(toks->count);
  } else {
    const BuiltinVocab v = train_builtin_vocab(sp.pre, sp.n_merges);
    w.set_string("tokenizer.ggml.model", "gpt2");
    w.set_string("tokenizer.ggml.pre", sp.pre);
    w.set_string_array("tokenizer.ggml.tokens", v.tokens);
    w.set_i32_array("tokenizer.ggml.token_type", v.types);
    w.set_string_array("tokenizer.ggml.merges", v.merges);
    const uint32_t special = uint32_t(v.tokens.size() - 1);
    w.set_u32("tokenizer.ggml.bos_token_id", special);
    w.set_u32("tokenizer.ggml.eos_token_id", special);
    w.set_bool("tokenizer.ggml.add_bos_token", true);
    n_vocab = uint32_t(v.tokens.size());
  }
  if (quant && n_vocab == 0) fail("synthetic model: empty vocabulary");

  // Every tensor is drawn when the file is written (GgufWriter's deferred tensors: one tensor
  // in memory at a time, so models larger than DRAM can be written), its rows in parallel, each
  // from its own position of one sequential random stream: the file does not depend on the
  // thread count.
  Rng rng(sp.seed);
  const bool fast = sp.fast_weights;
  ThreadPool pool(std::min(available_cores(), 64));
  auto matrix = [&](const std::string& name, uint32_t cols, uint32_t rows, float std,
                    TensorType t) {
    const size_t rb = row_bytes(t, cols);
    const Rng start = rng;
    rng.skip(uint64_t(cols) * rows, fast);
    w.add_tensor_deferred(name, t, {cols, rows}, rows * rb,
                          [&pool, start, cols, rows, std, t, rb, fast](uint8_t* dst) {
                            pool.parallel_for(rows, 1, [&](size_t r0, size_t r1) {
                              Rng r = start;
                              r.skip(uint64_t(r0) * cols, fast);
                              std::vector<float> row(cols);
                              for (size_t i = r0; i < r1; ++i) {
                                for (auto& x : row) x = r.draw(fast) * std;
                                quantize_row(t, row.data(), dst + i * rb, cols);
                              }
                            });
                          });
  };
  auto vec = [&](const std::string& name, uint32_t n, float mean, float std) {
    const Rng start = rng;
    rng.skip(n, fast);
    w.add_tensor_deferred(name, TensorType::F32, {n}, size_t(n) * 4,
                          [start, n, mean, std, fast](uint8_t* dst) {
                            Rng r = start;
                            for (uint32_t i = 0; i < n; ++i) {
                              const float x = mean + r.draw(fast) * std;
                              std::memcpy(dst + 4 * size_t(i), &x, 4);
                            }
                          });
  };
  const uint32_t E = sp.n_embd, Ek = sp.n_head_kv * hd, F = sp.n_ff;
  const float in_std = 1.0f / std::sqrt(float(E));
  matrix("token_embd.weight", E, n_vocab, sp.tied ? sp.logit_scale * in_std : 1.0f, sp.type);
  vec("output_norm.weight", E, 1.0f, 0.1f);
  if (!sp.tied) matrix("output.weight", E, n_vocab, sp.logit_scale * in_std, sp.type);
  if (sp.rope_freqs) {
    std::vector<float> freqs(hd / 2);
    for (uint32_t i = 0; i < hd / 2; ++i) freqs[i] = 1.0f + 7.0f * float(i) / float(hd / 2);
    w.add_tensor("rope_freqs.weight", TensorType::F32, {hd / 2}, freqs.data(), freqs.size() * 4);
  }
  for (uint32_t i = 0; i < sp.n_layer; ++i) {
    const std::string p = fmt::format("blk.{}.", i);
    vec(p + "attn_norm.weight", E, 1.0f, 0.1f);
    if (sp.arch == Arch::kPhi3) {
      matrix(p + "attn_qkv.weight", E, E + 2 * Ek, in_std * 2.0f, sp.type);
    } else {
      matrix(p + "attn_q.weight", E, E, in_std * 2.0f, sp.type);
      matrix(p + "attn_k.weight", E, Ek, in_std * 2.0f, sp.type);
      matrix(p + "attn_v.weight", E, Ek, in_std, sp.type);
    }
    if (sp.arch == Arch::kQwen2) {
      vec(p + "attn_q.bias", E, 0.0f, 0.1f);
      vec(p + "attn_k.bias", Ek, 0.0f, 0.1f);
      vec(p + "attn_v.bias", Ek, 0.0f, 0.1f);
    }
    if (sp.arch == Arch::kQwen3) {
      vec(p + "attn_q_norm.weight", hd, 1.0f, 0.1f);
      vec(p + "attn_k_norm.weight", hd, 1.0f, 0.1f);
    }
    matrix(p + "attn_output.weight", E, E, in_std * 0.5f, sp.type);
    vec(p + "ffn_norm.weight", E, 1.0f, 0.1f);
    if (sp.arch == Arch::kPhi3) {
      matrix(p + "ffn_up.weight", E, 2 * F, in_std, sp.type);
    } else {
      matrix(p + "ffn_gate.weight", E, F, in_std, sp.type);
      matrix(p + "ffn_up.weight", E, F, in_std, sp.type);
    }
    matrix(p + "ffn_down.weight", F, E, 1.0f / std::sqrt(float(F)), sp.type);
  }
  w.write(path, progress);
}

}  // namespace dip
