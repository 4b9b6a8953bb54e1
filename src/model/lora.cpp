#include "model/lora.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "model/hf_model.h"
#include "model/model.h"
#include "model/rope_rows.h"
#include "ops/matvec.h"
#include "ops/quant.h"
#include "util/error.h"

namespace dip {

namespace fs = std::filesystem;

bool is_peft_adapter_dir(const std::string& path) {
  std::error_code ec;
  return fs::is_directory(path, ec) && fs::exists(path + "/adapter_config.json", ec);
}

float parse_lora_scale(const std::string& file, const std::string& text) {
  size_t used = 0;
  float v = 0;
  try {
    v = std::stof(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != text.size() || !std::isfinite(v))
    fail("{}: adapter scale '{}' is not a number", file, text);
  return v;
}

std::unique_ptr<LoraAdapter> LoraAdapter::load(const LoraSpec& spec, const Model& base) {
  auto a = std::unique_ptr<LoraAdapter>(new LoraAdapter());
  a->path_ = spec.path;
  a->user_scale_ = spec.scale;
  std::error_code ec;
  if (!fs::exists(spec.path, ec)) fail("{}: no such adapter file or folder", spec.path);
  if (fs::is_directory(spec.path, ec)) {
    if (!is_peft_adapter_dir(spec.path))
      fail("{}: not a PEFT adapter folder (no adapter_config.json)", spec.path);
    a->load_peft(base);
  } else {
    a->load_gguf(base);
  }
  if (a->tensors_.empty()) fail("{}: the adapter has no tensors", spec.path);
  return a;
}

uint64_t LoraAdapter::bytes() const {
  uint64_t b = 0;
  for (const auto& t : tensors_) b += t.bytes() + 4 * (t.a_f32.size() + t.b_f32.size());
  return b;
}

namespace {

// Splits "<base>.lora_a" into base and which half; false for any other name.
bool split_lora_name(const std::string& name, std::string& base, bool& is_a) {
  for (const char* s : {".lora_a", ".lora_b"}) {
    if (name.size() > 7 && name.ends_with(s)) {
      base = name.substr(0, name.size() - 7);
      is_a = s[6] == 'a';
      return true;
    }
  }
  return false;
}

std::string dims_text(const GgufTensorInfo& t) {
  std::string s = "[";
  for (size_t i = 0; i < t.dims.size(); ++i) s += (i ? ", " : "") + std::to_string(t.dims[i]);
  return s + "]";
}

bool is_qk(const std::string& base) {
  return base.ends_with(".attn_q.weight") || base.ends_with(".attn_k.weight");
}

}  // namespace

void LoraAdapter::reorder_rows(GgufTensorInfo& b, uint32_t head_dim, bool to_gguf) {
  if (b.dims.size() != 2) return;  // add() reports the shape
  const size_t cols = b.dims[0], rows = b.dims[1];
  if (rows % head_dim != 0) return;  // add() reports the mismatch with the base
  std::vector<float> f(cols * rows);
  for (size_t r = 0; r < rows; ++r)
    dequantize_row(b.type(), b.data + r * row_bytes(b.type(), cols), &f[r * cols], cols);
  if (to_gguf)
    interleave_rope_rows(f, cols, rows, head_dim);
  else
    deinterleave_rope_rows(f, cols, rows, head_dim);
  owned_.push_back(std::move(f));
  b.type_id = uint32_t(TensorType::F32);
  b.data = reinterpret_cast<const uint8_t*>(owned_.back().data());
  b.n_bytes = cols * rows * 4;
}

void LoraAdapter::load_gguf(const Model& base) {
  gguf_ = std::make_unique<GgufFile>(path_);
  const GgufFile& f = *gguf_;
  const std::string type = f.get_string("general.type").value_or("");
  if (type != "adapter") {
    fail("{}: general.type is '{}', not 'adapter' (a model file, not a LoRA adapter?)", path_,
         type.empty() ? "(missing)" : type);
  }
  const std::string atype = f.get_string("adapter.type").value_or("");
  if (atype != "lora") fail("{}: adapter.type is '{}', only 'lora' is supported", path_, atype);
  const std::string arch = f.get_string("general.architecture").value_or("");
  if (arch != base.hparams().arch_name) {
    fail("{}: the adapter is for architecture '{}', the model {} is '{}'", path_, arch, base.path(),
         base.hparams().arch_name);
  }
  alpha_ = float(f.get_float("adapter.lora.alpha").value_or(0.0));
  if (!std::isfinite(alpha_)) fail("{}: adapter.lora.alpha is not a finite number", path_);
  const bool hf_rope = base.hf() && base.hf()->llama_qk_rotate_half;
  std::map<std::string, std::pair<const GgufTensorInfo*, const GgufTensorInfo*>> pairs;
  for (const auto& t : f.tensors()) {
    std::string b;
    bool is_a = false;
    if (!split_lora_name(t.name, b, is_a))
      fail("{}: unknown adapter tensor '{}' (expected <tensor>.lora_a / .lora_b)", path_, t.name);
    (is_a ? pairs[b].first : pairs[b].second) = &t;
  }
  for (const auto& [b, p] : pairs) {
    if (!p.first || !p.second) {
      fail("{}: tensor '{}.{}' has no partner '{}.{}'", path_, b, p.first ? "lora_a" : "lora_b", b,
           p.first ? "lora_b" : "lora_a");
    }
    GgufTensorInfo bt = *p.second;
    // A Hugging Face base keeps q/k rows in rotate-half order.
    if (hf_rope && is_qk(b)) reorder_rows(bt, base.hparams().head_dim, false);
    add(base, b, *p.first, bt);
  }
}

void LoraAdapter::load_peft(const Model& base) {
  const std::string cfg_path = path_ + "/adapter_config.json";
  nlohmann::json cfg;
  {
    std::ifstream in(cfg_path);
    if (!in) fail("{}: cannot read", cfg_path);
    try {
      cfg = nlohmann::json::parse(in);
    } catch (const std::exception& e) {
      fail("{}: not valid JSON ({})", cfg_path, e.what());
    }
  }
  if (!cfg.is_object()) fail("{}: not a JSON object", cfg_path);
  if (cfg.value("peft_type", std::string("LORA")) != "LORA")
    fail("{}: peft_type '{}' is not LORA", cfg_path, cfg.value("peft_type", std::string()));
  if (!cfg.contains("r") || !cfg["r"].is_number_integer() || cfg["r"].get<int64_t>() <= 0)
    fail("{}: 'r' (the rank) must be a positive integer", cfg_path);
  if (!cfg.contains("lora_alpha") || !cfg["lora_alpha"].is_number())
    fail("{}: 'lora_alpha' must be a number", cfg_path);
  const auto rank = cfg["r"].get<int64_t>();
  alpha_ = cfg["lora_alpha"].get<float>();
  if (cfg.value("use_rslora", false)) alpha_ *= std::sqrt(float(rank));  // alpha / sqrt(r)
  if (cfg.value("fan_in_fan_out", false))
    fail("{}: fan_in_fan_out adapters are not supported", cfg_path);
  for (const char* k : {"rank_pattern", "alpha_pattern"}) {
    if (cfg.contains(k) && !cfg[k].is_null() && !cfg[k].empty())
      fail("{}: per-module '{}' is not supported", cfg_path, k);
  }
  if (cfg.contains("modules_to_save") && !cfg["modules_to_save"].is_null() &&
      !cfg["modules_to_save"].empty()) {
    fail("{}: 'modules_to_save' (fully trained modules) is not supported", cfg_path);
  }
  const std::string st = path_ + "/adapter_model.safetensors";
  if (!fs::exists(st)) fail("{}: no adapter_model.safetensors", path_);
  safetensors_ = std::make_unique<SafetensorsFile>(st);
  const bool to_gguf_rope = base.gguf() && base.hparams().arch == Arch::kLlama;
  std::map<std::string, std::pair<GgufTensorInfo, GgufTensorInfo>> pairs;
  for (const auto& t : safetensors_->tensors()) {
    std::string n = t.name;
    if (n.starts_with("base_model.model.")) n = n.substr(17);
    bool is_a = false;
    std::string module;
    for (const char* s : {".lora_A.weight", ".lora_B.weight"}) {
      if (n.size() > 14 && n.ends_with(s)) {
        module = n.substr(0, n.size() - 14);
        is_a = s[6] == 'A';
      }
    }
    const std::string gname = module.empty() ? "" : gguf_tensor_name(module + ".weight");
    if (gname.empty()) fail("{}: unknown adapter tensor '{}'", st, t.name);
    if (t.ggml_type == 0 && t.dtype != "F32")
      fail("{}: tensor '{}' has unsupported dtype {}", st, t.name, t.dtype);
    GgufTensorInfo g;
    g.name = t.name;
    g.type_id = t.ggml_type;
    g.dims.assign(t.shape.rbegin(), t.shape.rend());
    g.n_elements = 1;
    for (uint64_t d : g.dims) g.n_elements *= d;
    g.n_bytes = t.n_bytes;
    g.data = t.data;
    (is_a ? pairs[gname].first : pairs[gname].second) = g;
  }
  for (auto& [b, p] : pairs) {
    if (!p.first.data || !p.second.data)
      fail("{}: the adapter of '{}' lacks its lora_{} tensor", st, b, p.first.data ? "B" : "A");
    if (p.second.dims.size() == 2 && p.second.dims[0] != uint64_t(rank)) {
      fail("{}: tensor '{}' has rank {} but adapter_config.json says r = {}", st, p.second.name,
           p.second.dims[0], rank);
    }
    // The GGUF base's q/k rows are interleaved (rope_rows.h); B's output rows must follow.
    if (to_gguf_rope && is_qk(b)) reorder_rows(p.second, base.hparams().head_dim, true);
    add(base, b, p.first, p.second);
  }
}

void LoraAdapter::add(const Model& base, const std::string& name, const GgufTensorInfo& a,
                      const GgufTensorInfo& b) {
  const Weight* w = base.find_weight(name);
  if (!w) {
    fail(
        "{}: adapter tensor '{}' names no projection of the model {} (an adapter for another "
        "model?)",
        path_, name, base.path());
  }
  for (const GgufTensorInfo* t : {&a, &b}) {
    if (t->dims.size() != 2)
      fail("{}: tensor '{}' must be 2-D, it is {}", path_, t->name, dims_text(*t));
    if (!is_supported_type(t->type_id))
      fail("{}: tensor '{}' has unsupported type {}", path_, t->name, ggml_type_name(t->type_id));
    if (t->dims[0] % block_elems(t->type()) != 0)
      fail("{}: tensor '{}' rows of {} do not fill {} blocks", path_, t->name, t->dims[0],
           ggml_type_name(t->type_id));
  }
  if (a.dims[0] != w->cols || b.dims[1] != w->rows) {
    fail(
        "{}: tensor '{}' adapts a [{}, {}] weight but its lora_a is {} and lora_b {} (an adapter "
        "for another model, or A and B swapped?)",
        path_, name, w->cols, w->rows, dims_text(a), dims_text(b));
  }
  if (a.dims[1] != b.dims[0] || a.dims[1] == 0) {
    fail("{}: tensor '{}': rank mismatch, lora_a has rank {} and lora_b {}", path_, name, a.dims[1],
         b.dims[0]);
  }
  LoraTensor t;
  t.base = name;
  t.rank = uint32_t(a.dims[1]);
  auto view = [&](const GgufTensorInfo& g, const char* half) {
    Weight v;
    v.name = name + half;
    v.type = g.type();
    v.data = g.data;
    v.cols = g.dims[0];
    v.rows = g.dims[1];
    return v;
  };
  t.a = view(a, ".lora_a");
  t.b = view(b, ".lora_b");
  for (auto [v, f] : {std::pair{&t.a, &t.a_f32}, std::pair{&t.b, &t.b_f32}}) {
    f->resize(v->rows * v->cols);
    for (size_t r = 0; r < v->rows; ++r)
      dequantize_row(v->type, v->row(r), &(*f)[r * v->cols], v->cols);
    for (float x : *f)
      if (!std::isfinite(x)) fail("{}: tensor '{}' holds a NaN or infinite value", path_, v->name);
  }
  t.scale = alpha_ != 0 ? user_scale_ * alpha_ / float(t.rank) : user_scale_;
  tensors_.push_back(std::move(t));
}

void lora_add(const LoraTensor& t, const int32_t* idx, const float* xs, size_t n, float* y,
              std::vector<float>& tmp) {
  if (idx) {
    // The kept inputs scattered into a zero row, then whole rows of A: a SIMD dot over every
    // input costs less than a scalar gather over the kept ones, and the zeros add nothing.
    const size_t R = t.rank, in = t.a.cols;
    tmp.assign(R + in, 0.0f);
    float* x = tmp.data() + R;
    for (size_t i = 0; i < n; ++i) x[size_t(idx[i])] = xs[i];
    for (size_t r = 0; r < R; ++r) tmp[r] = dot_simd(TensorType::F32, &t.a_f32[r * in], x, in);
  } else {
    lora_project_a(t, xs, tmp);
  }
  for (size_t j = 0; j < t.b.rows; ++j) y[j] += lora_row(t, tmp, j);
}

void lora_project_a(const LoraTensor& t, const float* x, std::vector<float>& tmp) {
  const size_t R = t.rank, in = t.a.cols;
  tmp.resize(R);
  for (size_t r = 0; r < R; ++r) tmp[r] = dot_simd(TensorType::F32, &t.a_f32[r * in], x, in);
}

float lora_row(const LoraTensor& t, const std::vector<float>& tmp, size_t j) {
  return t.scale * dot_simd(TensorType::F32, &t.b_f32[j * t.rank], tmp.data(), t.rank);
}

}  // namespace dip
