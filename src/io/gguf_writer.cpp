#include "io/gguf_writer.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#include "util/error.h"
#include "util/output_file.h"

namespace dip {

namespace {

template <typename T>
void put(std::vector<uint8_t>& b, T v) {
  const size_t at = b.size();
  b.resize(at + sizeof(T));
  std::memcpy(b.data() + at, &v, sizeof(T));
}

void put_string(std::vector<uint8_t>& b, std::string_view s) {
  put<uint64_t>(b, s.size());
  b.insert(b.end(), s.begin(), s.end());
}

void put_value_body(std::vector<uint8_t>& b, const GgufValue& v) {
  switch (v.type) {
    case GgufType::U8:
      put<uint8_t>(b, uint8_t(v.u));
      break;
    case GgufType::I8:
      put<int8_t>(b, int8_t(v.i));
      break;
    case GgufType::U16:
      put<uint16_t>(b, uint16_t(v.u));
      break;
    case GgufType::I16:
      put<int16_t>(b, int16_t(v.i));
      break;
    case GgufType::U32:
      put<uint32_t>(b, uint32_t(v.u));
      break;
    case GgufType::I32:
      put<int32_t>(b, int32_t(v.i));
      break;
    case GgufType::U64:
      put<uint64_t>(b, v.u);
      break;
    case GgufType::I64:
      put<int64_t>(b, v.i);
      break;
    case GgufType::F32:
      put<float>(b, float(v.f));
      break;
    case GgufType::F64:
      put<double>(b, v.f);
      break;
    case GgufType::BOOL:
      put<uint8_t>(b, v.u ? 1 : 0);
      break;
    case GgufType::STRING:
      put_string(b, v.str);
      break;
    case GgufType::ARRAY:
      put<uint32_t>(b, uint32_t(v.elem));
      put<uint64_t>(b, v.count);
      if (v.elem == GgufType::STRING) {
        for (auto s : v.strings) put_string(b, s);
      } else if (v.elem == GgufType::ARRAY) {
        for (const auto& item : v.items) put_value_body(b, item);
      } else {
        b.insert(b.end(), v.raw, v.raw + v.count * gguf_scalar_size(v.elem));
      }
      break;
  }
}

}  // namespace

std::vector<uint8_t>& GgufWriter::begin_kv(const std::string& key, GgufType type) {
  for (auto& [k, bytes] : kv_) {
    if (k == key) {
      bytes.clear();
      put<uint32_t>(bytes, uint32_t(type));
      return bytes;
    }
  }
  kv_.emplace_back(key, std::vector<uint8_t>{});
  put<uint32_t>(kv_.back().second, uint32_t(type));
  return kv_.back().second;
}

void GgufWriter::set_u32(const std::string& k, uint32_t v) {
  put(begin_kv(k, GgufType::U32), v);
  if (k == "general.alignment") alignment_ = v;
}
void GgufWriter::set_i32(const std::string& k, int32_t v) { put(begin_kv(k, GgufType::I32), v); }
void GgufWriter::set_u64(const std::string& k, uint64_t v) { put(begin_kv(k, GgufType::U64), v); }
void GgufWriter::set_f32(const std::string& k, float v) { put(begin_kv(k, GgufType::F32), v); }
void GgufWriter::set_bool(const std::string& k, bool v) {
  put<uint8_t>(begin_kv(k, GgufType::BOOL), v ? 1 : 0);
}
void GgufWriter::set_string(const std::string& k, const std::string& v) {
  put_string(begin_kv(k, GgufType::STRING), v);
}
void GgufWriter::set_string_array(const std::string& k, const std::vector<std::string>& v) {
  auto& b = begin_kv(k, GgufType::ARRAY);
  put<uint32_t>(b, uint32_t(GgufType::STRING));
  put<uint64_t>(b, v.size());
  for (const auto& s : v) put_string(b, s);
}
void GgufWriter::set_f32_array(const std::string& k, const std::vector<float>& v) {
  auto& b = begin_kv(k, GgufType::ARRAY);
  put<uint32_t>(b, uint32_t(GgufType::F32));
  put<uint64_t>(b, v.size());
  for (float f : v) put(b, f);
}
void GgufWriter::set_i32_array(const std::string& k, const std::vector<int32_t>& v) {
  auto& b = begin_kv(k, GgufType::ARRAY);
  put<uint32_t>(b, uint32_t(GgufType::I32));
  put<uint64_t>(b, v.size());
  for (int32_t x : v) put(b, x);
}
void GgufWriter::set_value(const std::string& k, const GgufValue& v) {
  put_value_body(begin_kv(k, v.type), v);
  if (k == "general.alignment" && v.type == GgufType::U32) alignment_ = v.u;
}

void GgufWriter::add_tensor(const std::string& name, TensorType type,
                            const std::vector<uint64_t>& dims, const void* data, size_t n) {
  Tensor t{name, type, dims, {}, n, {}};
  if (n) t.bytes.assign(static_cast<const uint8_t*>(data), static_cast<const uint8_t*>(data) + n);
  tensors_.push_back(std::move(t));
}

void GgufWriter::add_tensor_deferred(const std::string& name, TensorType type,
                                     const std::vector<uint64_t>& dims, size_t n_bytes,
                                     std::function<void(uint8_t* dst)> fill) {
  tensors_.push_back(Tensor{name, type, dims, {}, n_bytes, std::move(fill)});
}

void GgufWriter::write(
    const std::string& path,
    const std::function<void(size_t, size_t, const std::string&)>& progress) const {
  std::vector<uint8_t> head;
  put<uint32_t>(head, 0x46554747u);
  put<uint32_t>(head, 3);
  put<uint64_t>(head, tensors_.size());
  put<uint64_t>(head, kv_.size());
  for (const auto& [k, bytes] : kv_) {
    put_string(head, k);
    head.insert(head.end(), bytes.begin(), bytes.end());
  }
  auto align = [&](uint64_t x) { return (x + alignment_ - 1) / alignment_ * alignment_; };
  uint64_t offset = 0;
  for (const auto& t : tensors_) {
    put_string(head, t.name);
    put<uint32_t>(head, uint32_t(t.dims.size()));
    for (uint64_t d : t.dims) put<uint64_t>(head, d);
    put<uint32_t>(head, uint32_t(t.type));
    put<uint64_t>(head, offset);
    offset = align(offset + t.n_bytes);
  }
  head.resize(align(head.size()), 0);

  // Written under a temporary name and renamed when complete: an error (a deferred tensor's fill
  // may fail) or a kill midway leaves whatever file was at `path` untouched.
  OutputFile out(path);
  out.write(head.data(), head.size());
  const std::vector<uint8_t> zeros(alignment_, 0);
  std::vector<uint8_t> scratch;  // a deferred tensor's bytes, one tensor at a time
  for (const auto& t : tensors_) {
    const uint8_t* bytes = t.bytes.data();
    if (t.fill) {
      scratch.resize(t.n_bytes);
      t.fill(scratch.data());
      bytes = scratch.data();
    }
    out.write(bytes, t.n_bytes);
    out.write(zeros.data(), align(t.n_bytes) - t.n_bytes);
    if (progress) progress(size_t(&t - tensors_.data()) + 1, tensors_.size(), t.name);
  }
  out.commit();
}

}  // namespace dip
