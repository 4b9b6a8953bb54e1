#include "io/gguf.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <random>

#include "io/gguf_writer.h"
#include "model/model.h"
#include "test_models.h"
#include "util/error.h"

namespace dip {
namespace {

std::string tmp_path(const std::string& name) {
  return ::testing::TempDir() + "/dip_gguf_" + std::to_string(::getpid()) + "_" + name;
}

std::vector<uint8_t> read_all(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), {}};
}
void write_all(const std::string& p, const std::vector<uint8_t>& b) {
  std::ofstream f(p, std::ios::binary);
  f.write(reinterpret_cast<const char*>(b.data()), std::streamsize(b.size()));
}

std::string sample_file() {
  GgufWriter w;
  w.set_u32("a.u32", 7);
  w.set_i32("a.i32", -5);
  w.set_u64("a.u64", 1ull << 40);
  w.set_f32("a.f32", 1.5f);
  w.set_bool("a.bool", true);
  w.set_string("general.architecture", "llama");
  w.set_string_array("a.strs", {"x", "", "yz"});
  w.set_f32_array("a.f32s", {1, 2, 3});
  w.set_i32_array("a.i32s", {-1, 0, 1});
  std::vector<float> t(64 * 3);
  for (size_t i = 0; i < t.size(); ++i) t[i] = float(i);
  w.add_tensor("t0", TensorType::F32, {64, 3}, t.data(), t.size() * 4);
  w.add_tensor("t1", TensorType::F32, {5}, t.data(), 20);
  const std::string p = tmp_path("sample.gguf");
  w.write(p);
  return p;
}

void expect_error(const std::string& path, const std::string& needle) {
  try {
    GgufFile g(path);
    FAIL() << "no error for " << needle;
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find(path), std::string::npos) << m;
    EXPECT_NE(m.find(needle), std::string::npos) << m;
    EXPECT_EQ(m.find('\n'), std::string::npos) << "multi-line: " << m;
  }
}

TEST(Gguf, WriteReadRoundTrip) {
  const std::string p = sample_file();
  GgufFile g(p);
  EXPECT_EQ(g.version(), 3u);
  EXPECT_EQ(*g.get_uint("a.u32"), 7u);
  EXPECT_EQ(g.find("a.i32")->i, -5);
  EXPECT_EQ(*g.get_uint("a.u64"), 1ull << 40);
  EXPECT_EQ(*g.get_float("a.f32"), 1.5);
  EXPECT_TRUE(*g.get_bool("a.bool"));
  EXPECT_EQ(*g.get_string("general.architecture"), "llama");
  const GgufValue* s = g.get_array("a.strs", GgufType::STRING);
  ASSERT_EQ(s->count, 3u);
  EXPECT_EQ(s->strings[2], "yz");
  EXPECT_EQ(gguf_array_f64(*g.get_array("a.f32s", GgufType::F32), 2), 3.0);
  EXPECT_EQ(gguf_array_i64(*g.get_array("a.i32s", GgufType::I32), 0), -1);
  ASSERT_EQ(g.tensors().size(), 2u);
  const GgufTensorInfo* t0 = g.find_tensor("t0");
  ASSERT_TRUE(t0);
  EXPECT_EQ(t0->n_bytes, 64u * 3 * 4);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(t0->data) % 32, 0u);
  float v;
  std::memcpy(&v, t0->data + 4 * 100, 4);
  EXPECT_EQ(v, 100.0f);
  // Copy every value through set_value and read it back unchanged.
  GgufWriter w2;
  for (const auto& k : g.key_order()) w2.set_value(k, *g.find(k));
  const std::string p2 = tmp_path("copy.gguf");
  w2.write(p2);
  GgufFile g2(p2);
  EXPECT_EQ(g2.get_array("a.strs", GgufType::STRING)->strings[0], "x");
  EXPECT_EQ(*g2.get_uint("a.u64"), 1ull << 40);
}

// Deferred tensors (filled at write time, one at a time) give the same file as copied ones,
// the fill order is the order of addition, and a failing fill leaves an error, not a crash.
TEST(Gguf, DeferredTensorsWriteTheSameFile) {
  std::vector<float> t(64 * 3);
  std::mt19937 rng(11);
  std::normal_distribution<float> nd;
  for (auto& x : t) x = nd(rng);
  GgufWriter a, b;
  a.set_u32("general.alignment", 64);
  b.set_u32("general.alignment", 64);
  a.add_tensor("t0", TensorType::F32, {64, 3}, t.data(), t.size() * 4);
  a.add_tensor("t1", TensorType::F32, {5}, t.data() + 7, 20);
  std::vector<std::string> order;
  b.add_tensor_deferred("t0", TensorType::F32, {64, 3}, t.size() * 4, [&](uint8_t* dst) {
    order.push_back("t0");
    std::memcpy(dst, t.data(), t.size() * 4);
  });
  b.add_tensor_deferred("t1", TensorType::F32, {5}, 20, [&](uint8_t* dst) {
    order.push_back("t1");
    std::memcpy(dst, t.data() + 7, 20);
  });
  std::vector<std::string> reported;
  const std::string pa = tmp_path("copied.gguf"), pb = tmp_path("deferred.gguf");
  a.write(pa);
  b.write(pb, [&](size_t done, size_t total, const std::string& name) {
    EXPECT_EQ(total, 2u);
    EXPECT_EQ(done, reported.size() + 1);
    reported.push_back(name);
  });
  EXPECT_EQ(read_all(pa), read_all(pb));
  EXPECT_EQ(order, (std::vector<std::string>{"t0", "t1"}));
  EXPECT_EQ(reported, order);
  GgufWriter c;
  c.add_tensor_deferred("bad", TensorType::F32, {4}, 16,
                        [](uint8_t*) { fail("cannot produce tensor 'bad'"); });
  EXPECT_THROW(c.write(tmp_path("failing.gguf")), Error);
}

TEST(Gguf, TypeMismatchIsAnError) {
  GgufFile g(sample_file());
  EXPECT_THROW(g.get_string("a.u32"), Error);
  EXPECT_THROW(g.get_uint("general.architecture"), Error);
  EXPECT_THROW(g.get_array("a.strs", GgufType::F32), Error);
}

TEST(Gguf, MissingFile) { expect_error(tmp_path("does-not-exist.gguf"), "cannot open"); }

TEST(Gguf, EveryTruncationIsAnError) {
  const auto bytes = read_all(sample_file());
  const std::string p = tmp_path("trunc.gguf");
  // Cut inside the header, inside metadata, inside tensor infos and inside tensor data.
  for (size_t cut = 0; cut < bytes.size(); cut += (cut < 600 ? 1 : 97)) {
    write_all(p, std::vector<uint8_t>(bytes.begin(), bytes.begin() + long(cut)));
    EXPECT_THROW(GgufFile g(p), Error) << "cut at " << cut;
  }
}

TEST(Gguf, BadMagicAndVersions) {
  auto bytes = read_all(sample_file());
  const std::string p = tmp_path("bad.gguf");
  auto b = bytes;
  b[0] = 'X';
  write_all(p, b);
  expect_error(p, "bad magic");
  for (uint32_t ver : {1u, 4u, 1000u}) {
    b = bytes;
    std::memcpy(&b[4], &ver, 4);
    write_all(p, b);
    expect_error(p, "version");
  }
}

TEST(Gguf, AbsurdCountsAndSizes) {
  const auto bytes = read_all(sample_file());
  const std::string p = tmp_path("absurd.gguf");
  auto b = bytes;
  const uint64_t huge = 1ull << 62;
  std::memcpy(&b[8], &huge, 8);  // tensor count
  write_all(p, b);
  expect_error(p, "cannot fit");
  b = bytes;
  std::memcpy(&b[16], &huge, 8);  // metadata count
  write_all(p, b);
  expect_error(p, "cannot fit");
  // A string length past the end: the first key's length.
  b = bytes;
  std::memcpy(&b[24], &huge, 8);
  write_all(p, b);
  expect_error(p, "truncated");
}

// Hand-built file with one tensor whose fields we can corrupt.
std::vector<uint8_t> one_tensor_file(uint32_t type, std::vector<uint64_t> dims, uint64_t offset,
                                     size_t data_bytes) {
  std::vector<uint8_t> b;
  auto put = [&](const void* p, size_t n) {
    b.insert(b.end(), (const uint8_t*)p, (const uint8_t*)p + n);
  };
  const uint32_t magic = 0x46554747, ver = 3;
  const uint64_t nt = 1, nkv = 0;
  put(&magic, 4);
  put(&ver, 4);
  put(&nt, 8);
  put(&nkv, 8);
  const std::string name = "w";
  const uint64_t len = name.size();
  put(&len, 8);
  put(name.data(), name.size());
  const uint32_t nd = uint32_t(dims.size());
  put(&nd, 4);
  for (uint64_t d : dims) put(&d, 8);
  put(&type, 4);
  put(&offset, 8);
  b.resize((b.size() + 31) / 32 * 32, 0);
  b.resize(b.size() + data_bytes, 0x11);
  return b;
}

TEST(Gguf, TensorProblems) {
  const std::string p = tmp_path("tensor.gguf");
  write_all(p, one_tensor_file(0, {64, 4}, 0, 64 * 4 * 4 - 1));
  expect_error(p, "past the end");
  write_all(p, one_tensor_file(0, {1ull << 40, 1ull << 40}, 0, 64));
  expect_error(p, "w");
  write_all(p, one_tensor_file(0, {64, 4}, 3, 2048));
  expect_error(p, "not aligned");
  write_all(p, one_tensor_file(0, {64, 4, 1, 1, 1}, 0, 2048));
  expect_error(p, "dimensions");
  write_all(p, one_tensor_file(8, {33, 2}, 0, 2048));
  expect_error(p, "block size");
  // An unknown type is accepted by the reader and reported by whoever uses the tensor.
  write_all(p, one_tensor_file(12, {256, 2}, 0, 2048));
  GgufFile g(p);
  EXPECT_EQ(ggml_type_name(g.tensors()[0].type_id), "Q4_K");
}

// Offset of the u64 that follows `key` (a tensor's name or a metadata key) and `skip` bytes.
size_t field_after(const std::vector<uint8_t>& b, const std::string& key, size_t skip) {
  const auto it = std::search(b.begin(), b.end(), key.begin(), key.end());
  EXPECT_NE(it, b.end()) << key;
  return size_t(it - b.begin()) + key.size() + skip;
}

TEST(Gguf, OverlappingTensorDataIsAnError) {
  auto b = read_all(sample_file());
  // t1: name, then n_dims (u32), one dim (u64), type (u32), offset (u64): point it into t0.
  const size_t off = field_after(b, "t1", 4 + 8 + 4);
  const uint64_t zero = 0;
  std::memcpy(&b[off], &zero, 8);
  const std::string p = tmp_path("overlap.gguf");
  write_all(p, b);
  expect_error(p, "the data of tensors 't1' and 't0' overlap");
}

TEST(Gguf, SpecialTokenIdsOutsideTheVocabularyAreErrors) {
  synth_model(TensorType::F32, Arch::kLlama, 64, 96, 1, "bos.gguf");  // loads as written
  const std::string p = temp_path("bos.gguf");
  for (const char* key : {"tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id"}) {
    auto b = read_all(p);
    const size_t off = field_after(b, key, 4);  // value type (u32), then the u32 id
    const uint32_t bad = 1u << 30;
    std::memcpy(&b[off], &bad, 4);
    const std::string q = tmp_path("badspecial.gguf");
    write_all(q, b);
    try {
      Model::load(q);
      ADD_FAILURE() << "no error for " << key;
    } catch (const Error& e) {
      EXPECT_NE(
          std::string(e.what()).find(std::string(key) + " is 1073741824, outside the vocabulary"),
          std::string::npos)
          << e.what();
    }
  }
}

TEST(Gguf, RandomCorruptionNeverCrashes) {
  const auto bytes = read_all(sample_file());
  const std::string p = tmp_path("fuzz.gguf");
  std::mt19937 rng(std::random_device{}());
  for (int it = 0; it < 3000; ++it) {
    auto b = bytes;
    const int flips = 1 + int(rng() % 4);
    for (int f = 0; f < flips; ++f) b[rng() % b.size()] = uint8_t(rng());
    write_all(p, b);
    try {
      GgufFile g(p);
    } catch (const Error&) {
    }
  }
}

}  // namespace
}  // namespace dip
