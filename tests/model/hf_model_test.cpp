// Hugging Face folders: GGUF -> HF (sharded) -> GGUF round trips, same logits in every form,
// same token ids from tokenizer.json as from the GGUF vocabulary, and clear errors.
#include "model/hf_model.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "convert/convert.h"
#include "convert/quant_mix.h"
#include "convert/synth_model.h"
#include "io/safetensors.h"
#include "model/forward.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"

namespace dip {
namespace {

namespace fs = std::filesystem;

std::string tmp(const std::string& name) {
  return ::testing::TempDir() + "/dip_hf_" + std::to_string(::getpid()) + "_" + name;
}

std::vector<float> logits_of(const Model& m, const std::vector<int32_t>& toks) {
  Session s(m, 64, 2);
  std::vector<float> l;
  s.eval(toks, true, l);
  return l;
}

void expect_close(const std::vector<float>& a, const std::vector<float>& b, float tol) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) ASSERT_NEAR(a[i], b[i], tol * (1 + std::fabs(a[i]))) << i;
}

const char* kTexts[] = {"The President said that the people",
                        "  spaces\n\nand 12345 digits, it's fine!",
                        "Ünïcödé café 東京 🦙"};

TEST(HfModel, RoundTripsThroughEveryArchitecture) {
  for (Arch a : {Arch::kLlama, Arch::kQwen2, Arch::kQwen3, Arch::kPhi3}) {
    SynthSpec s;
    s.arch = a;
    s.n_embd = 64;
    s.n_head = 4;
    s.n_head_kv = 2;
    s.n_ff = 96;
    s.n_merges = 80;
    s.pre = a == Arch::kLlama ? "llama-bpe" : a == Arch::kPhi3 ? "gpt-2" : "qwen2";
    const std::string g1 = tmp("a.gguf"), dir = tmp("hf"), g2 = tmp("b.gguf");
    write_synth_model(s, g1);
    fs::remove_all(dir);
    auto m1 = Model::load(g1);
    export_hf(*m1, dir, TensorType::F32, 64 << 10);  // small shards: exercises the index
    EXPECT_TRUE(fs::exists(dir + "/model.safetensors.index.json"));
    auto mh = Model::load(dir);
    EXPECT_EQ(mh->hparams().n_vocab, m1->hparams().n_vocab);
    for (const char* t : kTexts) {
      EXPECT_EQ(tokenize(mh->vocab(), t, true, false), tokenize(m1->vocab(), t, true, false)) << t;
    }
    const auto toks = tokenize(m1->vocab(), kTexts[0], true, false);
    const auto l1 = logits_of(*m1, toks);
    expect_close(logits_of(*mh, toks), l1, 1e-3f);
    convert_to_gguf(*mh, g2, parse_quant_mix("f32"), nullptr);
    auto m2 = Model::load(g2);
    expect_close(logits_of(*m2, toks), l1, 1e-5f);
    // Weights survive GGUF -> HF -> GGUF bit for bit (F32).
    for (const auto& t : m1->tensors()) {
      const GgufTensorInfo* u = m2->gguf()->find_tensor(t.name);
      ASSERT_TRUE(u) << t.name;
      ASSERT_EQ(u->n_bytes, t.n_bytes) << t.name;
      EXPECT_EQ(std::memcmp(u->data, t.data, t.n_bytes), 0) << t.name;
    }
  }
}

TEST(Convert, QuantizedTypesStayCloseToF32) {
  SynthSpec s;
  s.n_embd = 64;
  s.n_head = 2;
  s.n_head_kv = 2;
  s.n_ff = 128;
  s.n_merges = 50;
  s.logit_scale = 1.0f;
  const std::string g = tmp("f32.gguf");
  write_synth_model(s, g);
  auto m = Model::load(g);
  const auto toks = tokenize(m->vocab(), kTexts[0], true, false);
  const auto ref = logits_of(*m, toks);
  for (const char* ty : {"f16", "bf16", "q8_0", "q4_0"}) {
    const std::string out = tmp(std::string(ty) + ".gguf");
    convert_to_gguf(*m, out, parse_quant_mix(ty), nullptr);
    auto q = Model::load(out);
    EXPECT_EQ(q->tok_embd.type, parse_tensor_type(ty));
    EXPECT_EQ(q->layers[0].attn_norm.size(), 64u);
    const auto l = logits_of(*q, toks);
    double num = 0, den = 0;
    for (size_t i = 0; i < l.size(); ++i) {
      num += (l[i] - ref[i]) * (l[i] - ref[i]);
      den += ref[i] * ref[i];
    }
    EXPECT_LT(std::sqrt(num / den), std::string(ty) == "q4_0" ? 0.3 : 0.05) << ty;
  }
}

// A valid folder to corrupt in the error tests.
std::string make_folder(const std::string& name) {
  SynthSpec s;
  s.n_embd = 64;
  s.n_head = 2;
  s.n_head_kv = 2;
  s.n_ff = 64;
  s.n_layer = 1;
  s.n_merges = 20;
  const std::string g = tmp(name + ".gguf"), dir = tmp(name);
  write_synth_model(s, g);
  fs::remove_all(dir);
  export_hf(*Model::load(g), dir, TensorType::F16, 1 << 20);
  return dir;
}

void expect_error(const std::string& path, const std::string& needle) {
  try {
    Model::load(path);
    FAIL() << "no error for: " << needle;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

void replace_in_file(const std::string& f, const std::string& from, const std::string& to) {
  std::ifstream in(f);
  std::string s((std::istreambuf_iterator<char>(in)), {});
  const size_t p = s.find(from);
  ASSERT_NE(p, std::string::npos) << from;
  s.replace(p, from.size(), to);
  std::ofstream(f) << s;
}

TEST(HfModel, BadFolders) {
  {
    const std::string d = make_folder("badjson");
    std::ofstream(d + "/config.json") << "{\"architectures\": [\"LlamaForCausalLM\",";
    expect_error(d, "malformed JSON");
  }
  {
    const std::string d = make_folder("arch");
    replace_in_file(d + "/config.json", "LlamaForCausalLM", "MambaForCausalLM");
    expect_error(d, "unsupported architecture 'MambaForCausalLM'");
  }
  {
    const std::string d = make_folder("notok");
    fs::remove(d + "/tokenizer.json");
    expect_error(d, "missing tokenizer.json");
  }
  {
    const std::string d = make_folder("shape");
    replace_in_file(d + "/config.json", "\"intermediate_size\": 64", "\"intermediate_size\": 96");
    expect_error(d, "has shape");
  }
  {
    const std::string d = make_folder("shard");
    export_hf(*Model::load(tmp("shard.gguf")), d, TensorType::F16, 16 << 10);
    fs::remove(d + "/model-00002-of-" + [&] {
      std::string n;
      for (auto& e : fs::directory_iterator(d)) {
        const std::string f = e.path().filename();
        if (f.rfind("model-00001-of-", 0) == 0) n = f.substr(15, 5);
      }
      return n;
    }() + ".safetensors");
    expect_error(d, "missing shard");
  }
  {
    const std::string d = make_folder("hdr");
    // Header length past the end of the file.
    std::fstream f(d + "/model.safetensors", std::ios::in | std::ios::out | std::ios::binary);
    const uint64_t huge = 1ull << 40;
    f.write(reinterpret_cast<const char*>(&huge), 8);
    f.close();
    expect_error(d, "runs past the end");
  }
  {
    const std::string d = make_folder("dtype");
    // Same-length edit of one dtype: "F16" -> "I16" (unsupported).
    std::fstream f(d + "/model.safetensors", std::ios::in | std::ios::out | std::ios::binary);
    std::string head(4096, '\0');
    f.read(head.data(), 4096);
    const size_t p = head.find("\"F16\"");
    ASSERT_NE(p, std::string::npos);
    f.seekp(std::streamoff(p + 1));
    f.write("I", 1);
    f.close();
    expect_error(d, "dtype I16");
  }
  {
    const std::string d = make_folder("trunc");
    const auto size = fs::file_size(d + "/model.safetensors");
    fs::resize_file(d + "/model.safetensors", size - 100);
    expect_error(d, "outside the data section");
  }
  expect_error(tmp("no-such-folder-or-file"), "cannot open");
}

// Two tensors whose data_offsets overlap: a corrupt file, never two views of the same bytes.
TEST(HfModel, OverlappingTensorDataIsAnError) {
  const std::string d = make_folder("overlap");
  const std::string f = d + "/model.safetensors";
  std::fstream io(f, std::ios::in | std::ios::out | std::ios::binary);
  uint64_t hlen = 0;
  io.read(reinterpret_cast<char*>(&hlen), 8);
  std::string head(hlen, '\0');
  io.read(head.data(), std::streamsize(hlen));
  nlohmann::json h = nlohmann::json::parse(head);
  auto& a = h["model.layers.0.input_layernorm.weight"];
  auto& b = h["model.layers.0.post_attention_layernorm.weight"];
  ASSERT_EQ(a["shape"], b["shape"]);
  b["data_offsets"] = a["data_offsets"];
  std::string edited = h.dump();
  ASSERT_LE(edited.size(), head.size());
  edited.resize(head.size(), ' ');
  io.seekp(8);
  io.write(edited.data(), std::streamsize(edited.size()));
  io.close();
  expect_error(d, "overlap");
}

TEST(HfTokenizer, EmptyVocabularyAndUnknownSpecialTokensAreErrors) {
  const std::string d = make_folder("emptyvocab");
  std::ofstream(d + "/tokenizer.json")
      << R"({"model": {"type": "BPE", "vocab": {}, "merges": []}, "pre_tokenizer": null})";
  expect_error(d, "model.vocab is empty");
  const std::string e = make_folder("nobos");
  std::ofstream(e + "/tokenizer_config.json") << R"({"bos_token": "<|no such token|>"})";
  expect_error(e, "bos_token '<|no such token|>' is not in the vocabulary");
}

TEST(HfTokenizer, MalformedJsonIsAnError) {
  const std::string d = make_folder("tokjson");
  std::ofstream(d + "/tokenizer.json") << "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}";
  expect_error(d, "malformed JSON");
  std::ofstream(d + "/tokenizer.json") << "{\"model\": {\"type\": \"Unigram\", \"vocab\": []}}";
  expect_error(d, "Unigram");
}

}  // namespace
}  // namespace dip
