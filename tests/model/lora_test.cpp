// LoRA adapters: applied in the dense and the pruned forward pass they give what the merged
// weights give; PEFT folders and GGUF files load alike; bad adapters fail with one clear line.
#include "model/lora.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "convert/convert.h"
#include "convert/convert_lora.h"
#include "convert/quant_mix.h"
#include "io/gguf_writer.h"
#include "io/safetensors.h"
#include "model/forward.h"
#include "model/rope_rows.h"
#include "ops/quant.h"
#include "sparsity/sparse_mlp.h"
#include "test_models.h"

namespace dip {
namespace {

std::string synth_path(TensorType t, Arch a, const std::string& name, uint32_t n_embd = 64) {
  return synth_model_file(t, a, n_embd, 96, 2, name);
}

std::string random_adapter(const Model& base, const std::string& name,
                           TensorType t = TensorType::F32, float b_std = 0.05f) {
  SynthLoraSpec sp;
  sp.rank = 4;
  sp.alpha = 8;
  sp.b_std = b_std;
  sp.type = t;
  sp.seed = rng()();
  const std::string p = temp_path(name);
  write_synth_lora(base, sp, p);
  return p;
}

std::vector<float> logits_of(const Model& m, SparseMlp* mlp = nullptr) {
  Session s(m, 64, 2);
  if (mlp) s.set_mlp_hook(mlp);
  const std::vector<int32_t> toks = {1, 5, 9, 14, 2, 7, 30, 11, 4, 19, 8, 3};
  std::vector<float> logits;
  s.eval(toks, true, logits);
  return logits;
}

double max_rel_diff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  double m = 0, scale = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    m = std::max(m, double(std::fabs(a[i] - b[i])));
    scale = std::max(scale, double(std::fabs(b[i])));
  }
  return m / std::max(scale, 1e-9);
}

SparsityConfig dip_config(Method method, double density, uint32_t n_layer) {
  SparsityConfig cfg;
  cfg.method = method;
  cfg.mlp_density = density;
  cfg.gamma = 0.5;
  resolve_keep(cfg, n_layer, 0, 0, "");
  return cfg;
}

// The adapter changes the output, and merging it into the weights (dip convert --lora) gives
// the same logits as applying it, for every architecture (phi3: fused qkv and gate+up).
TEST(Lora, AppliedEqualsMerged) {
  for (Arch a : {Arch::kLlama, Arch::kQwen2, Arch::kPhi3}) {
    const std::string base_path = synth_path(TensorType::F32, a, "lora_base.gguf");
    auto base = Model::load(base_path);
    const auto plain = logits_of(*base);
    const std::string ad = random_adapter(*base, "lora_rand.gguf");
    base->add_lora({ad, 1.0f});
    ASSERT_EQ(base->adapters().size(), 1u);
    const auto adapted = logits_of(*base);
    EXPECT_GT(max_rel_diff(adapted, plain), 1e-2) << "the adapter must change the logits";
    const std::string merged = temp_path("lora_merged.gguf");
    convert_to_gguf(*base, merged, parse_quant_mix("f32"), {});
    auto mm = Model::load(merged);
    EXPECT_LT(max_rel_diff(logits_of(*mm), adapted), 1e-3) << "arch " << int(a);
  }
}

// Under DIP and DIP-CA masks the adapter's input is the masked input (kept columns of A only):
// the result equals the merged model under the same masks, in DRAM column layout. GLU (dense
// gate and up) too. The merged weights and the adapter applied at run time round differently, so
// a score at the keep boundary can tie and flip: logits are compared when both runs chose the
// same masks (their traces are the same bytes), and a new adapter is drawn when they did not.
TEST(Lora, PrunedEqualsMergedPruned) {
  const std::string base_path = synth_path(TensorType::F32, Arch::kLlama, "lora_sp.gguf");
  const auto file_bytes = [](const std::string& p) {
    std::ifstream f(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(f), {});
  };
  for (Method method : {Method::kDip, Method::kDipCa, Method::kGlu}) {
    int compared = 0;
    for (int attempt = 0; attempt < 4 && compared == 0; ++attempt) {
      auto base = Model::load(base_path);
      base->add_lora({random_adapter(*base, "lora_sp_ad.gguf"), 1.0f});
      const std::string merged = temp_path("lora_sp_merged.gguf");
      convert_to_gguf(*base, merged, parse_quant_mix("f32"), {});
      auto mm = Model::load(merged);
      SparsityConfig cfg_a = dip_config(method, 0.7, base->hparams().n_layer), cfg_b = cfg_a;
      cfg_a.trace_file = temp_path("lora_sp_a.trace");
      cfg_b.trace_file = temp_path("lora_sp_b.trace");
      SparseMlp a(*base, cfg_a, nullptr), b(*mm, cfg_b, nullptr);
      const auto applied = logits_of(*base, &a), merged_logits = logits_of(*mm, &b);
      a.finish_trace();
      b.finish_trace();
      const std::string trace_a = file_bytes(cfg_a.trace_file);
      ASSERT_FALSE(trace_a.empty());
      if (trace_a != file_bytes(cfg_b.trace_file)) continue;
      EXPECT_LT(max_rel_diff(applied, merged_logits), 1e-3) << "method " << int(method);
      ++compared;
    }
    EXPECT_EQ(compared, 1) << "method " << int(method) << ": masks differed for 4 adapters";
  }
}

// A PEFT folder (Hugging Face names and q/k row order) gives the GGUF adapter's result, and
// convert-lora writes it back as a GGUF adapter that loads to the same tensors.
TEST(Lora, PeftFolderMatchesGguf) {
  auto base = Model::load(synth_path(TensorType::F32, Arch::kLlama, "lora_peft_base.gguf"));
  const std::string gg = random_adapter(*base, "lora_peft.gguf");
  auto ref = LoraAdapter::load({gg, 1.0f}, *base);
  const std::string dir = temp_path("peft_dir");
  std::filesystem::create_directories(dir);
  std::vector<SafetensorsOut> out;
  const std::map<std::string, std::string> hf = {
      {"attn_q", "self_attn.q_proj"}, {"attn_k", "self_attn.k_proj"},
      {"attn_v", "self_attn.v_proj"}, {"attn_output", "self_attn.o_proj"},
      {"ffn_gate", "mlp.gate_proj"},  {"ffn_up", "mlp.up_proj"},
      {"ffn_down", "mlp.down_proj"}};
  for (const LoraTensor& t : ref->tensors()) {
    const size_t dot1 = t.base.find('.'), dot2 = t.base.find('.', dot1 + 1);
    const std::string layer = t.base.substr(dot1 + 1, dot2 - dot1 - 1);
    const std::string kind = t.base.substr(dot2 + 1, t.base.size() - dot2 - 1 - 7);
    const std::string mod = "base_model.model.model.layers." + layer + "." + hf.at(kind);
    std::vector<float> b = t.b_f32;
    if (kind == "attn_q" || kind == "attn_k")
      deinterleave_rope_rows(b, t.rank, t.b.rows, base->hparams().head_dim);
    for (auto [name, f, shape] :
         {std::tuple{mod + ".lora_A.weight", &t.a_f32, std::vector<uint64_t>{t.rank, t.a.cols}},
          std::tuple{mod + ".lora_B.weight", static_cast<const std::vector<float>*>(&b),
                     std::vector<uint64_t>{t.b.rows, t.rank}}}) {
      SafetensorsOut so;
      so.name = name;
      so.dtype = "F32";
      so.shape = shape;
      so.bytes.resize(f->size() * 4);
      std::memcpy(so.bytes.data(), f->data(), so.bytes.size());
      out.push_back(std::move(so));
    }
  }
  write_safetensors(dir + "/adapter_model.safetensors", out);
  std::ofstream(dir + "/adapter_config.json")
      << R"({"peft_type": "LORA", "r": 4, "lora_alpha": 8, "target_modules": ["q_proj"]})";
  ASSERT_TRUE(is_peft_adapter_dir(dir));
  auto peft = LoraAdapter::load({dir, 1.0f}, *base);
  ASSERT_EQ(peft->tensors().size(), ref->tensors().size());
  for (size_t i = 0; i < ref->tensors().size(); ++i) {
    const LoraTensor &p = peft->tensors()[i], &r = ref->tensors()[i];
    EXPECT_EQ(p.base, r.base);
    EXPECT_EQ(p.a_f32, r.a_f32) << p.base;
    EXPECT_EQ(p.b_f32, r.b_f32) << p.base;
    EXPECT_FLOAT_EQ(p.scale, r.scale);
  }
  const std::string back = temp_path("lora_back.gguf");
  write_lora_gguf(*base, *peft, back, TensorType::F32);
  auto again = LoraAdapter::load({back, 2.0f}, *base);
  ASSERT_EQ(again->tensors().size(), ref->tensors().size());
  for (size_t i = 0; i < ref->tensors().size(); ++i) {
    EXPECT_EQ(again->tensors()[i].b_f32, ref->tensors()[i].b_f32);
    EXPECT_FLOAT_EQ(again->tensors()[i].scale, 2.0f * ref->tensors()[i].scale);  // user scale
  }
}

// Rewrites an adapter file with one change made by `edit` to its metadata or tensors.
std::string edited(const std::string& src, const std::string& name,
                   const std::function<void(GgufWriter&, const GgufFile&)>& edit) {
  GgufFile f(src);
  GgufWriter w;
  edit(w, f);
  const std::string p = temp_path(name);
  w.write(p);
  return p;
}

void copy_meta(GgufWriter& w, const GgufFile& f, const std::string& skip = "") {
  for (const auto& k : f.key_order())
    if (k != skip) w.set_value(k, f.metadata().at(k));
}

void copy_tensors(GgufWriter& w, const GgufFile& f, const std::string& skip = "") {
  for (const auto& t : f.tensors())
    if (t.name != skip) w.add_tensor(t.name, t.type(), t.dims, t.data, t.n_bytes);
}

TEST(Lora, BadAdaptersFailNamingFileAndTensor) {
  const std::string base_path = synth_path(TensorType::F32, Arch::kLlama, "lora_bad_base.gguf");
  auto base = Model::load(base_path);
  const std::string good = random_adapter(*base, "lora_good.gguf");
  auto load = [&](const std::string& p) { return [&, p] { LoraAdapter::load({p, 1.0f}, *base); }; };

  // A model file given as an adapter.
  expect_error(load(base_path), "not 'adapter'");
  // An adapter for another model (other n_embd).
  auto other = Model::load(synth_path(TensorType::F32, Arch::kLlama, "lora_other.gguf", 32));
  expect_error(load(random_adapter(*other, "lora_other_ad.gguf")),
               "tensor 'blk.0.attn_k.weight' adapts a [64, 32] weight but its lora_a is [32, 4]");
  // Another architecture.
  expect_error(load(edited(good, "lora_arch.gguf",
                           [](GgufWriter& w, const GgufFile& f) {
                             copy_meta(w, f, "general.architecture");
                             w.set_string("general.architecture", "qwen2");
                             copy_tensors(w, f);
                           })),
               "architecture 'qwen2'");
  // An unknown tensor; a tensor naming no projection; a missing partner.
  expect_error(load(edited(good, "lora_unknown.gguf",
                           [](GgufWriter& w, const GgufFile& f) {
                             copy_meta(w, f);
                             copy_tensors(w, f);
                             const float z[4] = {};
                             w.add_tensor("blk.0.ffn_up.weight.lora_c", TensorType::F32, {4}, z,
                                          16);
                           })),
               "unknown adapter tensor 'blk.0.ffn_up.weight.lora_c'");
  expect_error(load(edited(good, "lora_noproj.gguf",
                           [](GgufWriter& w, const GgufFile& f) {
                             copy_meta(w, f);
                             for (const auto& t : f.tensors()) {
                               std::string n = t.name;
                               if (n.starts_with("blk.0.ffn_up.")) n.replace(0, 12, "blk.7.ffn_up");
                               w.add_tensor(n, t.type(), t.dims, t.data, t.n_bytes);
                             }
                           })),
               "'blk.7.ffn_up.weight' names no projection");
  expect_error(load(edited(good, "lora_partner.gguf",
                           [](GgufWriter& w, const GgufFile& f) {
                             copy_meta(w, f);
                             copy_tensors(w, f, "blk.1.ffn_down.weight.lora_b");
                           })),
               "'blk.1.ffn_down.weight.lora_a' has no partner");
  // Rank mismatch between A and B.
  expect_error(
      load(edited(
          good, "lora_rank.gguf",
          [](GgufWriter& w, const GgufFile& f) {
            copy_meta(w, f);
            for (const auto& t : f.tensors()) {
              if (t.name == "blk.0.ffn_down.weight.lora_b") {
                std::vector<float> z(3 * t.dims[1], 0.0f);
                w.add_tensor(t.name, TensorType::F32, {3, t.dims[1]}, z.data(), z.size() * 4);
              } else {
                w.add_tensor(t.name, t.type(), t.dims, t.data, t.n_bytes);
              }
            }
          })),
      "blk.0.ffn_down.weight': rank mismatch");
  // NaN in B.
  expect_error(load(edited(good, "lora_nan.gguf",
                           [](GgufWriter& w, const GgufFile& f) {
                             copy_meta(w, f);
                             for (const auto& t : f.tensors()) {
                               std::vector<uint8_t> b(t.data, t.data + t.n_bytes);
                               if (t.name == "blk.1.ffn_gate.weight.lora_b") {
                                 const float nan = NAN;
                                 std::memcpy(b.data(), &nan, 4);
                               }
                               w.add_tensor(t.name, t.type(), t.dims, b.data(), b.size());
                             }
                           })),
               "'blk.1.ffn_gate.weight.lora_b' holds a NaN");
  // Truncated file.
  {
    std::ifstream in(good, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), {});
    const std::string p = temp_path("lora_trunc.gguf");
    std::ofstream(p, std::ios::binary) << bytes.substr(0, bytes.size() - 100);
    expect_error(load(p), p);
  }
  // Not there; a folder without adapter_config.json; a scale that is not a number.
  expect_error(load(temp_path("lora_missing.gguf")), "no such adapter");
  expect_error(load(::testing::TempDir()), "not a PEFT adapter folder");
  expect_error([] { parse_lora_scale("a.gguf", "half"); },
               "a.gguf: adapter scale 'half' is not a number");
  expect_error([] { parse_lora_scale("a.gguf", "nan"); }, "not a number");
  EXPECT_FLOAT_EQ(parse_lora_scale("a.gguf", "-0.5"), -0.5f);
}

}  // namespace
}  // namespace dip
