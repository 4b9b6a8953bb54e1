// GGUF v3 writer: metadata in insertion order, tensors aligned to general.alignment (32).
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "io/gguf.h"

namespace dip {

class GgufWriter {
 public:
  void set_u32(const std::string& key, uint32_t v);
  void set_i32(const std::string& key, int32_t v);
  void set_u64(const std::string& key, uint64_t v);
  void set_f32(const std::string& key, float v);
  void set_bool(const std::string& key, bool v);
  void set_string(const std::string& key, const std::string& v);
  void set_string_array(const std::string& key, const std::vector<std::string>& v);
  void set_f32_array(const std::string& key, const std::vector<float>& v);
  void set_i32_array(const std::string& key, const std::vector<int32_t>& v);
  // Copies any value read by GgufFile (scalars, strings, arrays, nested arrays).
  void set_value(const std::string& key, const GgufValue& v);

  // Adds a tensor; dims in ggml order (dims[0] contiguous). The bytes are copied.
  void add_tensor(const std::string& name, TensorType type, const std::vector<uint64_t>& dims,
                  const void* data, size_t n_bytes);

  // Adds a tensor of n_bytes whose bytes fill(dst) writes when the file is written, tensors in
  // the order they were added: only one tensor is in memory at a time, so files larger than
  // DRAM can be written.
  void add_tensor_deferred(const std::string& name, TensorType type,
                           const std::vector<uint64_t>& dims, size_t n_bytes,
                           std::function<void(uint8_t* dst)> fill);

  // Writes the file; fails with the path on I/O errors. progress(done, total, name) after each
  // tensor, where given.
  void write(const std::string& path,
             const std::function<void(size_t, size_t, const std::string&)>& progress = {}) const;

 private:
  struct Tensor {
    std::string name;
    TensorType type;
    std::vector<uint64_t> dims;
    std::vector<uint8_t> bytes;
    size_t n_bytes = 0;
    std::function<void(uint8_t*)> fill;  // deferred tensors: produces the n_bytes at write time
  };
  std::vector<uint8_t>& begin_kv(const std::string& key, GgufType type);

  std::vector<std::pair<std::string, std::vector<uint8_t>>> kv_;  // key -> type + value bytes
  std::vector<Tensor> tensors_;
  uint64_t alignment_ = 32;
};

}  // namespace dip
