#include "io/gguf.h"

#include <cstring>

#include "util/error.h"

namespace dip {

const char* gguf_type_name(GgufType t) {
  switch (t) {
    case GgufType::U8:
      return "u8";
    case GgufType::I8:
      return "i8";
    case GgufType::U16:
      return "u16";
    case GgufType::I16:
      return "i16";
    case GgufType::U32:
      return "u32";
    case GgufType::I32:
      return "i32";
    case GgufType::F32:
      return "f32";
    case GgufType::BOOL:
      return "bool";
    case GgufType::STRING:
      return "string";
    case GgufType::ARRAY:
      return "array";
    case GgufType::U64:
      return "u64";
    case GgufType::I64:
      return "i64";
    case GgufType::F64:
      return "f64";
  }
  return "unknown";
}

size_t gguf_scalar_size(GgufType t) {
  switch (t) {
    case GgufType::U8:
    case GgufType::I8:
    case GgufType::BOOL:
      return 1;
    case GgufType::U16:
    case GgufType::I16:
      return 2;
    case GgufType::U32:
    case GgufType::I32:
    case GgufType::F32:
      return 4;
    case GgufType::U64:
    case GgufType::I64:
    case GgufType::F64:
      return 8;
    default:
      return 0;
  }
}

namespace {

constexpr uint64_t kMaxDims = 4;  // GGML_MAX_DIMS
constexpr int kMaxArrayNesting = 8;

// A bounds-checked little-endian cursor over the mapped file.
class Cursor {
 public:
  Cursor(const std::string& path, const uint8_t* data, size_t size)
      : path_(path), data_(data), size_(size) {}

  size_t pos() const { return pos_; }
  size_t remaining() const { return size_ - pos_; }

  void need(uint64_t n, const char* what) const {
    if (n > remaining()) {
      fail("{}: truncated file: {} needs {} bytes at offset {}, only {} left", path_, what, n, pos_,
           remaining());
    }
  }
  template <typename T>
  T read(const char* what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, data_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  std::string_view read_string(const char* what) {
    const uint64_t len = read<uint64_t>(what);
    need(len, what);
    std::string_view s(reinterpret_cast<const char*>(data_ + pos_), len);
    pos_ += len;
    return s;
  }
  const uint8_t* take(uint64_t n, const char* what) {
    need(n, what);
    const uint8_t* p = data_ + pos_;
    pos_ += n;
    return p;
  }

 private:
  const std::string& path_;
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

bool valid_value_type(uint32_t t) { return t <= uint32_t(GgufType::F64); }

void read_value(Cursor& c, const std::string& path, const std::string& key, GgufType type,
                GgufValue& v, int depth) {
  v.type = type;
  switch (type) {
    case GgufType::U8:
      v.u = c.read<uint8_t>("value");
      v.i = int64_t(v.u);
      break;
    case GgufType::I8:
      v.i = c.read<int8_t>("value");
      v.u = uint64_t(v.i);
      break;
    case GgufType::U16:
      v.u = c.read<uint16_t>("value");
      v.i = int64_t(v.u);
      break;
    case GgufType::I16:
      v.i = c.read<int16_t>("value");
      v.u = uint64_t(v.i);
      break;
    case GgufType::U32:
      v.u = c.read<uint32_t>("value");
      v.i = int64_t(v.u);
      break;
    case GgufType::I32:
      v.i = c.read<int32_t>("value");
      v.u = uint64_t(v.i);
      break;
    case GgufType::U64:
      v.u = c.read<uint64_t>("value");
      v.i = int64_t(v.u);
      break;
    case GgufType::I64:
      v.i = c.read<int64_t>("value");
      v.u = uint64_t(v.i);
      break;
    case GgufType::F32:
      v.f = c.read<float>("value");
      break;
    case GgufType::F64:
      v.f = c.read<double>("value");
      break;
    case GgufType::BOOL: {
      const uint8_t b = c.read<uint8_t>("value");
      if (b > 1) fail("{}: metadata key '{}': bool value {} is neither 0 nor 1", path, key, b);
      v.u = b;
      v.i = b;
      break;
    }
    case GgufType::STRING:
      v.str = c.read_string("string value");
      break;
    case GgufType::ARRAY: {
      if (depth >= kMaxArrayNesting)
        fail("{}: metadata key '{}': arrays nested too deeply", path, key);
      const uint32_t et = c.read<uint32_t>("array type");
      if (!valid_value_type(et)) {
        fail("{}: metadata key '{}': unknown array element type {}", path, key, et);
      }
      v.elem = GgufType(et);
      v.count = c.read<uint64_t>("array length");
      const size_t es = gguf_scalar_size(v.elem);
      if (es > 0) {
        const uint64_t bytes = checked_mul(v.count, es, path + ": metadata key '" + key + "'");
        v.raw = c.take(bytes, "array data");
        if (v.elem == GgufType::BOOL) {
          for (uint64_t k = 0; k < v.count; ++k) {
            if (v.raw[k] > 1)
              fail("{}: metadata key '{}': bool element is neither 0 nor 1", path, key);
          }
        }
      } else if (v.elem == GgufType::STRING) {
        // Each string needs at least its 8-byte length: bound the count before reserving.
        if (v.count > c.remaining() / 8) {
          fail("{}: metadata key '{}': array of {} strings cannot fit in the file", path, key,
               v.count);
        }
        v.strings.reserve(v.count);
        for (uint64_t k = 0; k < v.count; ++k) v.strings.push_back(c.read_string("array string"));
      } else {
        if (v.count > c.remaining() / 12) {
          fail("{}: metadata key '{}': array of {} arrays cannot fit in the file", path, key,
               v.count);
        }
        v.items.resize(v.count);
        for (uint64_t k = 0; k < v.count; ++k)
          read_value(c, path, key, GgufType::ARRAY, v.items[k], depth + 1);
      }
      break;
    }
  }
}

}  // namespace

GgufFile::GgufFile(const std::string& path) : file_(std::make_unique<MappedFile>(path)) { parse(); }

GgufFile::GgufFile(std::unique_ptr<MappedFile> file) : file_(std::move(file)) { parse(); }

void GgufFile::parse() {
  const std::string& path = file_->path();
  Cursor c(path, file_->data(), file_->size());
  if (file_->size() < 4) fail("{}: not a GGUF file: only {} bytes", path, file_->size());
  const uint32_t magic = c.read<uint32_t>("magic");
  if (magic != 0x46554747u) {  // "GGUF"
    fail("{}: not a GGUF file (bad magic 0x{:08x})", path, magic);
  }
  version_ = c.read<uint32_t>("version");
  if (version_ == 1) fail("{}: GGUF version 1 is not supported (only 2 and 3)", path);
  if (version_ < 2 || version_ > 3)
    fail("{}: unsupported GGUF version {} (only 2 and 3)", path, version_);
  const uint64_t n_tensors = c.read<uint64_t>("tensor count");
  const uint64_t n_kv = c.read<uint64_t>("metadata count");
  // Each key-value pair takes at least 12 bytes and each tensor info at least 28.
  if (n_kv > c.remaining() / 12) fail("{}: metadata count {} cannot fit in the file", path, n_kv);
  for (uint64_t k = 0; k < n_kv; ++k) {
    std::string key(c.read_string("metadata key"));
    const uint32_t t = c.read<uint32_t>("metadata type");
    if (!valid_value_type(t)) fail("{}: metadata key '{}' has unknown value type {}", path, key, t);
    GgufValue v;
    read_value(c, path, key, GgufType(t), v, 0);
    if (kv_.count(key)) fail("{}: duplicate metadata key '{}'", path, key);
    key_order_.push_back(key);
    kv_.emplace(std::move(key), std::move(v));
  }
  if (auto a = kv_.find("general.alignment"); a != kv_.end()) {
    if (a->second.type != GgufType::U32) fail("{}: general.alignment must be u32", path);
    alignment_ = a->second.u;
    if (alignment_ == 0 || (alignment_ & (alignment_ - 1)) != 0) {
      fail("{}: general.alignment {} is not a power of two", path, alignment_);
    }
  }
  if (n_tensors > c.remaining() / 28)
    fail("{}: tensor count {} cannot fit in the file", path, n_tensors);
  tensors_.resize(n_tensors);
  for (uint64_t k = 0; k < n_tensors; ++k) {
    GgufTensorInfo& ti = tensors_[k];
    ti.name = std::string(c.read_string("tensor name"));
    const uint32_t nd = c.read<uint32_t>("tensor dimension count");
    if (nd == 0 || nd > kMaxDims)
      fail("{}: tensor '{}' has {} dimensions (1 to 4 allowed)", path, ti.name, nd);
    ti.dims.resize(nd);
    uint64_t ne = 1;
    for (uint32_t d = 0; d < nd; ++d) {
      ti.dims[d] = c.read<uint64_t>("tensor dimension");
      if (ti.dims[d] == 0) fail("{}: tensor '{}' has a zero dimension", path, ti.name);
      ne = checked_mul(ne, ti.dims[d], path + ": tensor '" + ti.name + "' element count");
    }
    if (ne > (uint64_t(1) << 48))
      fail("{}: tensor '{}' has an absurd element count {}", path, ti.name, ne);
    ti.n_elements = ne;
    ti.type_id = c.read<uint32_t>("tensor type");
    ti.offset = c.read<uint64_t>("tensor offset");
    if (tensor_index_.count(ti.name)) fail("{}: duplicate tensor '{}'", path, ti.name);
    tensor_index_[ti.name] = k;
  }
  data_offset_ = (c.pos() + alignment_ - 1) / alignment_ * alignment_;
  for (auto& ti : tensors_) {
    if (ti.offset % alignment_ != 0) {
      fail("{}: tensor '{}' data offset {} is not aligned to {}", path, ti.name, ti.offset,
           alignment_);
    }
    if (!is_supported_type(ti.type_id)) continue;  // reported by whoever needs the tensor
    const TensorType t = ti.type();
    if (ti.dims[0] % block_elems(t) != 0) {
      fail(
          "{}: tensor '{}' of type {} has a row of {} elements, not a multiple of the block size "
          "{}",
          path, ti.name, ggml_type_name(ti.type_id), ti.dims[0], block_elems(t));
    }
    ti.n_bytes = checked_mul(ti.n_elements / block_elems(t), block_bytes(t),
                             path + ": tensor '" + ti.name + "'");
    const uint64_t begin = checked_add(data_offset_, ti.offset, path);
    const uint64_t end = checked_add(begin, ti.n_bytes, path);
    if (end > file_->size()) {
      fail(
          "{}: tensor '{}' data [{}, {}) lies past the end of the file ({} bytes); file truncated?",
          path, ti.name, begin, end, file_->size());
    }
    ti.data = file_->data() + begin;
  }
  std::vector<ByteRange> ranges;
  for (const auto& ti : tensors_) {
    if (ti.data)
      ranges.push_back({uint64_t(ti.data - file_->data()),
                        uint64_t(ti.data - file_->data()) + ti.n_bytes, &ti.name});
  }
  check_disjoint(std::move(ranges), path);
}

const GgufValue* GgufFile::find(const std::string& key) const {
  auto it = kv_.find(key);
  return it == kv_.end() ? nullptr : &it->second;
}

const GgufTensorInfo* GgufFile::find_tensor(const std::string& name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

std::optional<std::string> GgufFile::get_string(const std::string& key) const {
  const GgufValue* v = find(key);
  if (!v) return std::nullopt;
  if (v->type != GgufType::STRING)
    fail("{}: metadata key '{}' is {}, expected string", path(), key, gguf_type_name(v->type));
  return std::string(v->str);
}

std::optional<uint64_t> GgufFile::get_uint(const std::string& key) const {
  const GgufValue* v = find(key);
  if (!v) return std::nullopt;
  switch (v->type) {
    case GgufType::U8:
    case GgufType::U16:
    case GgufType::U32:
    case GgufType::U64:
      return v->u;
    case GgufType::I8:
    case GgufType::I16:
    case GgufType::I32:
    case GgufType::I64:
      if (v->i < 0) fail("{}: metadata key '{}' is negative ({})", path(), key, v->i);
      return uint64_t(v->i);
    default:
      fail("{}: metadata key '{}' is {}, expected an integer", path(), key,
           gguf_type_name(v->type));
  }
}

std::optional<double> GgufFile::get_float(const std::string& key) const {
  const GgufValue* v = find(key);
  if (!v) return std::nullopt;
  if (v->type == GgufType::F32 || v->type == GgufType::F64) return v->f;
  if (gguf_scalar_size(v->type) > 0 && v->type != GgufType::BOOL) return double(v->i);
  fail("{}: metadata key '{}' is {}, expected a number", path(), key, gguf_type_name(v->type));
}

std::optional<bool> GgufFile::get_bool(const std::string& key) const {
  const GgufValue* v = find(key);
  if (!v) return std::nullopt;
  if (v->type != GgufType::BOOL)
    fail("{}: metadata key '{}' is {}, expected bool", path(), key, gguf_type_name(v->type));
  return v->u != 0;
}

const GgufValue* GgufFile::get_array(const std::string& key, GgufType elem) const {
  const GgufValue* v = find(key);
  if (!v) return nullptr;
  if (v->type != GgufType::ARRAY)
    fail("{}: metadata key '{}' is {}, expected an array", path(), key, gguf_type_name(v->type));
  if (v->elem != elem) {
    fail("{}: metadata key '{}' is an array of {}, expected {}", path(), key,
         gguf_type_name(v->elem), gguf_type_name(elem));
  }
  return v;
}

double gguf_array_f64(const GgufValue& a, size_t i) {
  const uint8_t* p = a.raw + i * gguf_scalar_size(a.elem);
  switch (a.elem) {
    case GgufType::F32: {
      float f;
      std::memcpy(&f, p, 4);
      return f;
    }
    case GgufType::F64: {
      double f;
      std::memcpy(&f, p, 8);
      return f;
    }
    default:
      return double(gguf_array_i64(a, i));
  }
}

int64_t gguf_array_i64(const GgufValue& a, size_t i) {
  const uint8_t* p = a.raw + i * gguf_scalar_size(a.elem);
  switch (a.elem) {
    case GgufType::U8:
    case GgufType::BOOL:
      return *p;
    case GgufType::I8:
      return int8_t(*p);
    case GgufType::U16: {
      uint16_t v;
      std::memcpy(&v, p, 2);
      return v;
    }
    case GgufType::I16: {
      int16_t v;
      std::memcpy(&v, p, 2);
      return v;
    }
    case GgufType::U32: {
      uint32_t v;
      std::memcpy(&v, p, 4);
      return v;
    }
    case GgufType::I32: {
      int32_t v;
      std::memcpy(&v, p, 4);
      return v;
    }
    case GgufType::U64: {
      uint64_t v;
      std::memcpy(&v, p, 8);
      return int64_t(v);
    }
    case GgufType::I64: {
      int64_t v;
      std::memcpy(&v, p, 8);
      return v;
    }
    case GgufType::F32: {
      float v;
      std::memcpy(&v, p, 4);
      return int64_t(v);
    }
    case GgufType::F64: {
      double v;
      std::memcpy(&v, p, 8);
      return int64_t(v);
    }
    default:
      return 0;
  }
}

}  // namespace dip
