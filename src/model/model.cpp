#include "model/model.h"

#include <fmt/format.h>

#include <cstddef>
#include <cstring>
#include <map>
#include <set>

#include "ops/quant.h"
#include "util/error.h"

namespace dip {

namespace {

class Loader {
 public:
  Loader(const std::string& path, const std::vector<GgufTensorInfo>& tensors, const HParams& hp)
      : path_(path), tensors_(tensors), hp_(hp) {
    for (size_t i = 0; i < tensors.size(); ++i) index_[tensors[i].name] = i;
  }

  const GgufTensorInfo* find(const std::string& name) {
    auto it = index_.find(name);
    const GgufTensorInfo* t = it == index_.end() ? nullptr : &tensors_[it->second];
    if (t) {
      used_.insert(name);
      if (!is_supported_type(t->type_id)) {
        fail(
            "{}: tensor '{}' has type {} which is not supported (F32, F16, BF16, Q8_0, Q4_0, Q2_K, "
            "Q3_K, Q4_K, Q5_K, Q6_K are)",
            path_, name, ggml_type_name(t->type_id));
      }
    }
    return t;
  }

  Weight matrix(const std::string& name, size_t cols, size_t rows, bool required = true) {
    const GgufTensorInfo* t = find(name);
    if (!t) {
      if (required) fail("{}: required tensor '{}' is missing", path_, name);
      return {};
    }
    if (t->dims.size() != 2 || t->dims[0] != cols || t->dims[1] != rows) {
      fail("{}: tensor '{}' has shape {} but the hyper-parameters need [{}, {}]", path_, name,
           shape(*t), cols, rows);
    }
    if (is_k_quant(t->type())) check_k_scales(*t);
    Weight w;
    w.name = name;
    w.type = t->type();
    w.data = t->data;
    w.rows = rows;
    w.cols = cols;
    return w;
  }

  // K-quant super-blocks carry F16 scales (d, and dmin for Q2_K/Q4_K/Q5_K): a NaN or Inf one would
  // turn every product it enters into NaN, so the file is refused naming the tensor and block.
  // One read of the scales (reading the tensor's pages once, as the first token would).
  void check_k_scales(const GgufTensorInfo& t) const {
    const TensorType type = t.type();
    const size_t bb = block_bytes(type), nb = t.n_bytes / bb;
    // Offsets of the F16 scales inside a block (Q3_K and Q6_K have no dmin).
    size_t d_off = offsetof(BlockQ4K, d), dmin_off = offsetof(BlockQ4K, dmin);
    bool has_dmin = true;
    switch (type) {
      case TensorType::Q2_K:
        d_off = offsetof(BlockQ2K, d), dmin_off = offsetof(BlockQ2K, dmin);
        break;
      case TensorType::Q3_K:
        d_off = offsetof(BlockQ3K, d), has_dmin = false;
        break;
      case TensorType::Q5_K:
        d_off = offsetof(BlockQ5K, d), dmin_off = offsetof(BlockQ5K, dmin);
        break;
      case TensorType::Q6_K:
        d_off = offsetof(BlockQ6K, d), has_dmin = false;
        break;
      default:
        break;
    }
    for (size_t i = 0; i < nb; ++i) {
      const uint8_t* b = t.data + i * bb;
      uint16_t d, dmin = 0;
      std::memcpy(&d, b + d_off, 2);
      if (has_dmin) std::memcpy(&dmin, b + dmin_off, 2);
      if ((d & 0x7c00) == 0x7c00 || (dmin & 0x7c00) == 0x7c00) {
        fail("{}: tensor '{}' ({}): super-block {} has a NaN or infinite scale", path_, t.name,
             ggml_type_name(uint32_t(type)), i);
      }
    }
  }

  std::vector<float> vec(const std::string& name, size_t n, bool required = true) {
    const GgufTensorInfo* t = find(name);
    if (!t) {
      if (required) fail("{}: required tensor '{}' is missing", path_, name);
      return {};
    }
    if (t->dims.size() != 1 || t->dims[0] != n) {
      fail("{}: tensor '{}' has shape {} but the hyper-parameters need [{}]", path_, name,
           shape(*t), n);
    }
    std::vector<float> out(n);
    dequantize_row(t->type(), t->data, out.data(), n);
    return out;
  }

  void check_all_used() const {
    for (const auto& t : tensors_) {
      if (!used_.count(t.name)) {
        fail("{}: unexpected tensor '{}' for architecture {} (model not supported or corrupt)",
             path_, t.name, hp_.arch_name);
      }
    }
  }

 private:
  static std::string shape(const GgufTensorInfo& t) {
    std::string s = "[";
    for (size_t i = 0; i < t.dims.size(); ++i) s += fmt::format("{}{}", i ? ", " : "", t.dims[i]);
    return s + "]";
  }
  const std::string& path_;
  const std::vector<GgufTensorInfo>& tensors_;
  const HParams& hp_;
  std::map<std::string, size_t> index_;
  std::set<std::string> used_;
};

}  // namespace

std::unique_ptr<Model> Model::load(const std::string& path, bool vocab_only) {
  auto m = std::unique_ptr<Model>(new Model());
  m->path_ = path;
  m->vocab_only_ = vocab_only;
  if (is_hf_model_dir(path)) {
    m->hf_ = load_hf_model(path, vocab_only);
    m->vocab_ = m->hf_->vocab;
    m->hp_ = m->hf_->hp;
    m->tensors_ = &m->hf_->tensors;
    m->rope_freqs = m->hf_->rope_freqs;
  } else {
    m->gguf_ = std::make_unique<GgufFile>(path);
    m->vocab_ = load_vocab(*m->gguf_);
    m->tensors_ = &m->gguf_->tensors();
    if (vocab_only) return m;
    if (m->gguf_->tensors().empty())
      fail("{}: the file holds no tensors (vocabulary-only file?)", path);
    m->hp_ = load_hparams(*m->gguf_);
  }
  if (!vocab_only) m->load_weights();
  // GGUF weights are views of the read-only file mapping, whose pages may be let go once copied.
  m->repacked_ = std::make_unique<RepackedWeights>(m->gguf_ != nullptr);
  return m;
}

void Model::load_weights() {
  const std::string& path = path_;
  HParams& hp = hp_;
  Loader ld(path, *tensors_, hp);
  const GgufTensorInfo* emb = ld.find("token_embd.weight");
  if (!emb) fail("{}: required tensor 'token_embd.weight' is missing", path);
  if (emb->dims.size() != 2) fail("{}: token_embd.weight must be 2-D", path);
  if (gguf_) {
    hp.n_vocab = uint32_t(emb->dims[1]);
    if (auto nv = gguf_->get_uint(hp.arch_name + ".vocab_size"); nv && *nv != hp.n_vocab) {
      fail("{}: {}.vocab_size {} does not match token_embd.weight ({} rows)", path, hp.arch_name,
           *nv, hp.n_vocab);
    }
  }
  if (uint32_t(vocab_.n_tokens()) != hp.n_vocab) {
    fail("{}: the vocabulary has {} tokens but the model has {}", path, vocab_.n_tokens(),
         hp.n_vocab);
  }
  const size_t E = hp.n_embd;
  tok_embd = ld.matrix("token_embd.weight", E, hp.n_vocab);
  output_norm = ld.vec("output_norm.weight", E);
  output = ld.matrix("output.weight", E, hp.n_vocab, false);
  if (!output.data) output = tok_embd;  // tied embeddings
  if (auto f = ld.vec("rope_freqs.weight", hp.n_rot / 2, false); !f.empty())
    rope_freqs = std::move(f);
  for (const char* t : {"rope_factors_long.weight", "rope_factors_short.weight"}) {
    if (ld.find(t)) fail("{}: LongRoPE scaling ('{}') is not supported", path, t);
  }
  layers.resize(hp.n_layer);
  for (uint32_t i = 0; i < hp.n_layer; ++i) {
    Layer& L = layers[i];
    const std::string p = fmt::format("blk.{}.", i);
    L.attn_norm = ld.vec(p + "attn_norm.weight", E);
    L.ffn_norm = ld.vec(p + "ffn_norm.weight", E);
    if (hp.arch == Arch::kPhi3) {
      L.wqkv = ld.matrix(p + "attn_qkv.weight", E, hp.n_embd_q() + 2 * hp.n_embd_k(), false);
    }
    if (!L.wqkv.data) {
      L.wq = ld.matrix(p + "attn_q.weight", E, hp.n_embd_q());
      L.wk = ld.matrix(p + "attn_k.weight", E, hp.n_embd_k());
      L.wv = ld.matrix(p + "attn_v.weight", E, hp.n_embd_v());
    }
    L.wo = ld.matrix(p + "attn_output.weight", hp.n_embd_q(), E);
    if (hp.arch == Arch::kQwen2 || hp.arch == Arch::kLlama) {
      const bool req = hp.arch == Arch::kQwen2;
      L.bq = ld.vec(p + "attn_q.bias", hp.n_embd_q(), req);
      L.bk = ld.vec(p + "attn_k.bias", hp.n_embd_k(), req);
      L.bv = ld.vec(p + "attn_v.bias", hp.n_embd_v(), req);
    }
    if (hp.arch == Arch::kQwen3) {
      L.q_norm = ld.vec(p + "attn_q_norm.weight", hp.head_dim);
      L.k_norm = ld.vec(p + "attn_k_norm.weight", hp.head_dim);
    }
    if (hp.arch == Arch::kPhi3) {
      L.ffn_up = ld.matrix(p + "ffn_up.weight", E, 2 * hp.n_ff);
    } else {
      L.ffn_gate = ld.matrix(p + "ffn_gate.weight", E, hp.n_ff);
      L.ffn_up = ld.matrix(p + "ffn_up.weight", E, hp.n_ff);
    }
    L.ffn_down = ld.matrix(p + "ffn_down.weight", hp.n_ff, E);
  }
  ld.check_all_used();
}

uint64_t Model::mlp_bytes() const {
  uint64_t b = 0;
  for (const auto& L : layers) b += L.ffn_gate.bytes() + L.ffn_up.bytes() + L.ffn_down.bytes();
  return b;
}

uint64_t Model::total_weight_bytes() const {
  uint64_t b = 0;
  for (const auto& t : tensors()) b += t.n_bytes;
  return b;
}

uint64_t Model::bytes_per_token() const {
  uint64_t b = output.bytes() + row_bytes(tok_embd.type, tok_embd.cols);
  for (const auto& L : layers) {
    b += L.wq.bytes() + L.wk.bytes() + L.wv.bytes() + L.wqkv.bytes() + L.wo.bytes();
  }
  return b + mlp_bytes();
}

Weight* Model::find_weight(const std::string& name) {
  if (output.name == name && output.data != tok_embd.data) return &output;
  for (Layer& L : layers) {
    for (Weight* w : {&L.wq, &L.wk, &L.wv, &L.wqkv, &L.wo, &L.ffn_gate, &L.ffn_up, &L.ffn_down})
      if (w->data && w->name == name) return w;
  }
  return nullptr;
}

const Weight* Model::find_weight(const std::string& name) const {
  return const_cast<Model*>(this)->find_weight(name);
}

void Model::add_lora(const LoraSpec& spec) {
  if (vocab_only_) fail("{}: adapters need the model's weights", spec.path);
  auto a = LoraAdapter::load(spec, *this);
  for (const LoraTensor& t : a->tensors()) find_weight(t.base)->lora.push_back(&t);
  adapters_.push_back(std::move(a));
}

uint64_t Model::adapter_bytes() const {
  uint64_t b = 0;
  for (const auto& a : adapters_) b += a->bytes();
  return b;
}

const uint8_t* Model::repacked(const Weight& w) const {
  // (A tied output matrix is repacked too, as llama.cpp does with its copy of the embeddings;
  // the rows the embedding lookup reads come back from the file as they are touched.)
  return repacked_ ? repacked_->x8(w) : nullptr;
}

}  // namespace dip
