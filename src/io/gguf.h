// GGUF v2/v3 reader. The file is memory-mapped; metadata strings and arrays point into the
// mapping and tensor data is used in place. Every size the file declares is checked against
// the bytes that are really there before it is used.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "io/mapped_file.h"
#include "ops/tensor_types.h"

namespace dip {

enum class GgufType : uint32_t {
  U8 = 0,
  I8 = 1,
  U16 = 2,
  I16 = 3,
  U32 = 4,
  I32 = 5,
  F32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  U64 = 10,
  I64 = 11,
  F64 = 12,
};
const char* gguf_type_name(GgufType t);
size_t gguf_scalar_size(GgufType t);  // 0 for STRING / ARRAY

struct GgufValue {
  GgufType type = GgufType::U8;
  // Scalars (the matching member is set; integers also fill the other integer member).
  uint64_t u = 0;
  int64_t i = 0;
  double f = 0;
  std::string_view str;
  // Arrays.
  GgufType elem = GgufType::U8;
  uint64_t count = 0;
  const uint8_t* raw = nullptr;           // numeric array elements (little endian, packed)
  std::vector<std::string_view> strings;  // string array elements
  std::vector<GgufValue> items;           // nested array elements
};

struct GgufTensorInfo {
  std::string name;
  uint32_t type_id = 0;
  std::vector<uint64_t> dims;  // ggml order: dims[0] is the contiguous (row) dimension
  uint64_t offset = 0;         // relative to the data section
  uint64_t n_elements = 0;
  uint64_t n_bytes = 0;
  const uint8_t* data = nullptr;
  TensorType type() const { return TensorType(type_id); }
};

class GgufFile {
 public:
  // Opens and validates the file; throws dip::Error naming the file and the problem.
  explicit GgufFile(const std::string& path);
  // Parses a file already in memory (fuzzing, tests).
  explicit GgufFile(std::unique_ptr<MappedFile> file);

  const std::string& path() const { return file_->path(); }
  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  const std::map<std::string, GgufValue>& metadata() const { return kv_; }
  const std::vector<std::string>& key_order() const { return key_order_; }
  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
  size_t file_size() const { return file_->size(); }
  uint64_t data_offset() const { return data_offset_; }

  const GgufValue* find(const std::string& key) const;
  const GgufTensorInfo* find_tensor(const std::string& name) const;

  // Typed getters: fail with file + key when the key is missing (required) or mistyped.
  std::optional<std::string> get_string(const std::string& key) const;
  std::optional<uint64_t> get_uint(const std::string& key) const;
  std::optional<double> get_float(const std::string& key) const;
  std::optional<bool> get_bool(const std::string& key) const;
  const GgufValue* get_array(const std::string& key, GgufType elem) const;

 private:
  void parse();
  std::unique_ptr<MappedFile> file_;
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::map<std::string, GgufValue> kv_;
  std::vector<std::string> key_order_;
  std::vector<GgufTensorInfo> tensors_;
  std::map<std::string, size_t> tensor_index_;
};

// Reads a numeric array element as double / int64 regardless of its stored type.
double gguf_array_f64(const GgufValue& arr, size_t i);
int64_t gguf_array_i64(const GgufValue& arr, size_t i);

}  // namespace dip
