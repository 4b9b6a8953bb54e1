#include "io/safetensors.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>

#include "ops/tensor_types.h"
#include "util/error.h"
#include "util/output_file.h"

namespace dip {

namespace {
constexpr uint64_t kMaxHeader = 100ull << 20;  // the format's own limit is 100 MB
}

SafetensorsFile::SafetensorsFile(const std::string& path)
    : file_(std::make_unique<MappedFile>(path)) {
  parse();
}
SafetensorsFile::SafetensorsFile(std::unique_ptr<MappedFile> file) : file_(std::move(file)) {
  parse();
}

void SafetensorsFile::parse() {
  const std::string& path = file_->path();
  const size_t size = file_->size();
  if (size < 8) fail("{}: not a safetensors file: only {} bytes", path, size);
  uint64_t hlen;
  std::memcpy(&hlen, file_->data(), 8);
  if (hlen > size - 8)
    fail("{}: safetensors header length {} runs past the end of the file ({} bytes)", path, hlen,
         size);
  if (hlen > kMaxHeader) fail("{}: safetensors header length {} exceeds 100 MB", path, hlen);
  const char* h = reinterpret_cast<const char*>(file_->data() + 8);
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(h, h + hlen);
  } catch (const nlohmann::json::exception& e) {
    fail("{}: malformed safetensors header JSON: {}", path, e.what());
  }
  if (!j.is_object()) fail("{}: safetensors header is not a JSON object", path);
  const uint64_t data_start = 8 + hlen;
  const uint64_t data_size = size - data_start;
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (it.key() == "__metadata__") continue;
    const auto& v = it.value();
    SafetensorsTensor t;
    t.name = it.key();
    if (!v.is_object() || !v.contains("dtype") || !v["dtype"].is_string() || !v.contains("shape") ||
        !v["shape"].is_array() || !v.contains("data_offsets") || !v["data_offsets"].is_array() ||
        v["data_offsets"].size() != 2) {
      fail("{}: tensor '{}' has a malformed header entry", path, t.name);
    }
    t.dtype = v["dtype"].get<std::string>();
    size_t esize;
    if (t.dtype == "F32") {
      t.ggml_type = uint32_t(TensorType::F32);
      esize = 4;
    } else if (t.dtype == "F16") {
      t.ggml_type = uint32_t(TensorType::F16);
      esize = 2;
    } else if (t.dtype == "BF16") {
      t.ggml_type = uint32_t(TensorType::BF16);
      esize = 2;
    } else
      fail("{}: tensor '{}' has dtype {} (supported: F32, F16, BF16)", path, t.name, t.dtype);
    uint64_t n = 1;
    if (v["shape"].size() > 4)
      fail("{}: tensor '{}' has {} dimensions (at most 4)", path, t.name, v["shape"].size());
    for (const auto& d : v["shape"]) {
      if (!d.is_number_unsigned())
        fail("{}: tensor '{}' has a non-integer dimension", path, t.name);
      t.shape.push_back(d.get<uint64_t>());
      n = checked_mul(n, t.shape.back(), path + ": tensor '" + t.name + "'");
    }
    const auto& o = v["data_offsets"];
    if (!o[0].is_number_unsigned() || !o[1].is_number_unsigned())
      fail("{}: tensor '{}' has bad data_offsets", path, t.name);
    const uint64_t b = o[0].get<uint64_t>(), e = o[1].get<uint64_t>();
    if (b > e || e > data_size) {
      fail(
          "{}: tensor '{}' data [{}, {}) lies outside the data section ({} bytes); file truncated?",
          path, t.name, b, e, data_size);
    }
    if (e - b != checked_mul(n, esize, path)) {
      fail("{}: tensor '{}' has {} bytes but shape and dtype need {}", path, t.name, e - b,
           n * esize);
    }
    t.data = file_->data() + data_start + b;
    t.n_bytes = e - b;
    tensors_.push_back(std::move(t));
  }
  std::vector<ByteRange> ranges;
  for (const auto& t : tensors_) {
    const uint64_t b = uint64_t(t.data - file_->data());
    ranges.push_back({b, b + t.n_bytes, &t.name});
  }
  check_disjoint(std::move(ranges), path);
}

void write_safetensors(const std::string& path, const std::vector<SafetensorsOut>& tensors) {
  nlohmann::json h = nlohmann::json::object();
  uint64_t off = 0;
  for (const auto& t : tensors) {
    h[t.name] = {
        {"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {off, off + t.bytes.size()}}};
    off += t.bytes.size();
  }
  h["__metadata__"] = {{"format", "pt"}};
  std::string hs = h.dump();
  while ((8 + hs.size()) % 8) hs.push_back(' ');
  OutputFile f(path);
  const uint64_t hlen = hs.size();
  f.write(&hlen, 8);
  f.write(hs.data(), hs.size());
  for (const auto& t : tensors) f.write(t.bytes.data(), t.bytes.size());
  f.commit();
}

}  // namespace dip
