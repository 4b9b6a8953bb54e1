#include "flash/flash_image.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>
#include <xxhash.h>
#include <zlib.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>

#include "flash/flash_columns.h"
#include "model/model.h"
#include "ops/colsparse.h"
#include "test_models.h"
#include "util/error.h"
#include "util/threadpool.h"

namespace dip {
namespace {

std::vector<uint8_t> read_at(const std::string& path, uint64_t off, size_t n) {
  std::vector<uint8_t> b(n);
  const int fd = ::open(path.c_str(), O_RDONLY);
  EXPECT_EQ(::pread(fd, b.data(), n, off_t(off)), ssize_t(n));
  ::close(fd);
  return b;
}

void patch(const std::string& path, uint64_t off, uint8_t xor_mask) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(std::streamoff(off));
  char c = 0;
  f.get(c);
  f.seekp(std::streamoff(off));
  f.put(char(c ^ xor_mask));
}

// Every column in the image is the column-major column the in-DRAM sparse MLP multiplies,
// at its aligned offset, for float and block types (and phi3's fused gate+up).
TEST(FlashImage, ColumnsAreTheColumnMajorColumnsAtAlignedOffsets) {
  for (auto [t, a] :
       {std::pair{TensorType::F16, Arch::kLlama}, std::pair{TensorType::Q8_0, Arch::kLlama},
        std::pair{TensorType::Q4_0, Arch::kPhi3}}) {
    auto m = synth_model(t, a);
    const std::string p = temp_path("img.dipflash");
    write_flash_image(*m, p, 512, nullptr);
    const FlashImage img(p);
    img.check_matches(*m);
    img.verify_data(nullptr);
    const FlashHeader& h = img.header();
    ASSERT_EQ(h.n_layer, m->hparams().n_layer);
    ASSERT_EQ(h.up_col_stride % 512, 0u);
    ASSERT_EQ(h.down_col_stride % 512, 0u);
    for (uint32_t l = 0; l < h.n_layer; ++l) {
      const Layer& L = m->layers[l];
      const size_t E = m->hparams().n_embd, F = m->hparams().n_ff;
      const ColumnMatrix ug =
          L.fused_gate_up() ? make_column_matrix(t, {L.ffn_up.data}, 2 * F, E, t)
                            : make_column_matrix(t, {L.ffn_gate.data, L.ffn_up.data}, F, E, t);
      const ColumnMatrix dn = make_column_matrix(t, {L.ffn_down.data}, E, F, t);
      for (size_t c = 0; c < E; c += 7) {
        ASSERT_EQ(img.up_offset(l, c) % 512, 0u);
        const auto b = read_at(p, img.up_offset(l, c), ug.col_bytes);
        ASSERT_EQ(std::memcmp(b.data(), ug.col(c), ug.col_bytes), 0)
            << "layer " << l << " up column " << c;
      }
      for (size_t c = 0; c < F; c += 5) {
        const auto b = read_at(p, img.down_offset(l, c), dn.col_bytes);
        ASSERT_EQ(std::memcmp(b.data(), dn.col(c), dn.col_bytes), 0)
            << "layer " << l << " down column " << c;
      }
    }
  }
}

TEST(FlashImage, DamageIsAClearErrorNamingTheFile) {
  auto m = synth_model(TensorType::F16);
  const std::string p = temp_path("bad.dipflash");
  write_flash_image(*m, p, 512, nullptr);
  const FlashImage good(p);
  const uint64_t size = good.header().file_bytes;

  patch(p, 12, 0x40);  // n_layer
  expect_error([&] { FlashImage img(p); }, "corrupt flash image header");
  patch(p, 12, 0x40);
  patch(p, sizeof(FlashHeader) + 3, 0x01);  // index
  expect_error([&] { FlashImage img(p); }, "corrupt flash image index");
  patch(p, sizeof(FlashHeader) + 3, 0x01);
  patch(p, 0, 0x01);
  expect_error([&] { FlashImage img(p); }, "not a dip flash image");
  patch(p, 0, 0x01);

  patch(p, good.layer(1).down_offset + 100, 0x10);  // column data
  const FlashImage img(p);                          // header and index still fine
  expect_error([&] { img.verify_data(nullptr); }, "layer 1 (down");
  patch(p, good.layer(1).down_offset + 100, 0x10);

  ASSERT_EQ(::truncate(p.c_str(), off_t(size - 4096)), 0);
  expect_error([&] { FlashImage i2(p); }, "truncated");
  ASSERT_EQ(::truncate(p.c_str(), 50), 0);
  expect_error([&] { FlashImage i2(p); }, "truncated");
  expect_error([&] { FlashImage i2(temp_path("missing.dipflash")); }, "cannot open");
  expect_error(
      [] { write_flash_image(*synth_model(TensorType::F16), temp_path("x"), 1000, nullptr); },
      "power of two");
}

TEST(FlashImage, AnotherModelIsRejected) {
  auto a = synth_model(TensorType::F16, Arch::kLlama, 64, 96, 2, "a.gguf");
  auto b =
      synth_model(TensorType::F16, Arch::kLlama, 64, 96, 2, "b.gguf");  // same shape, other weights
  auto c = synth_model(TensorType::F16, Arch::kLlama, 64, 128, 2, "c.gguf");
  const std::string p = temp_path("a.dipflash");
  write_flash_image(*a, p, 512, nullptr);
  const FlashImage img(p);
  img.check_matches(*a);
  expect_error([&] { img.check_matches(*b); }, "other MLP weights");
  expect_error([&] { img.check_matches(*c); }, "another model shape");
}

// A copy of the model with bytes changed anywhere inside one MLP tensor (not only at its ends)
// is another model: the image written from the original is refused for it.
TEST(FlashImage, ChangedBytesInsideAnMlpTensorAreSeen) {
  auto m = synth_model(TensorType::F16, Arch::kLlama, 64, 512, 2, "orig.gguf");
  const std::string p = temp_path("orig.dipflash");
  write_flash_image(*m, p, 512, nullptr);
  const FlashImage img(p);
  img.check_matches(*m);
  const std::string copy = temp_path("copy.gguf");
  std::filesystem::copy_file(temp_path("orig.gguf"), copy,
                             std::filesystem::copy_options::overwrite_existing);
  Model::load(copy);  // an unchanged copy (another file) is hashed and accepted
  img.check_matches(*Model::load(copy));
  const Weight& up = m->layers[1].ffn_up;
  const GgufTensorInfo* ti = m->gguf()->find_tensor(up.name);
  ASSERT_NE(ti, nullptr);
  const uint64_t off = m->gguf()->data_offset() + ti->offset + up.bytes() / 2;
  patch(copy, off, 0x01);  // one bit in the middle of blk.1.ffn_up
  expect_error([&] { img.check_matches(*Model::load(copy)); }, "other MLP weights");
}

// Region CRCs and column checksums are bound to their layer: an index whose layers were swapped
// (with its CRC recomputed, so the header and index look fine) fails verification, and a run
// that reads a damaged column fails at the read, without --flash-verify.
TEST(FlashImage, SwappedLayersAndDamagedColumnsFail) {
  auto m = synth_model(TensorType::F16, Arch::kLlama, 64, 512, 2);
  const std::string p = temp_path("swap.dipflash");
  write_flash_image(*m, p, 512, nullptr);
  FlashHeader h;
  std::vector<FlashLayerIndex> index(2);
  {
    std::fstream f(p, std::ios::in | std::ios::out | std::ios::binary);
    f.read(reinterpret_cast<char*>(&h), sizeof(h));
    f.read(reinterpret_cast<char*>(index.data()), 2 * sizeof(FlashLayerIndex));
    std::swap(index[0], index[1]);
    h.index_crc = uint32_t(
        crc32(0, reinterpret_cast<const Bytef*>(index.data()), 2 * sizeof(FlashLayerIndex)));
    h.header_crc = 0;
    h.header_crc = uint32_t(crc32(0, reinterpret_cast<const Bytef*>(&h), sizeof(h)));
    f.seekp(0);
    f.write(reinterpret_cast<const char*>(&h), sizeof(h));
    f.write(reinterpret_cast<const char*>(index.data()), 2 * sizeof(FlashLayerIndex));
  }
  const FlashImage swapped(p);  // header and index consistent
  expect_error([&] { swapped.verify_data(nullptr); }, "layer 0");
  // Reading a column of the swapped layer: its bytes belong to layer 1.
  FlashColumns cols(swapped, FlashStoreOptions{}, 0.0);
  ThreadPool pool(1);
  const int32_t idx[1] = {3}, slots[1] = {-1};
  const uint8_t hit[1] = {0};
  const float xs[1] = {1.0f};
  std::vector<float> y(2 * 512);
  expect_error([&] { cols.multiply(0, true, idx, hit, slots, xs, 1, y.data(), pool); },
               "layer 0 up+gate column 3 as read does not match its checksum");
  FlashStoreOptions unchecked;
  unchecked.verify_columns = false;  // --no-verify
  FlashColumns trusting(swapped, unchecked, 0.0);
  trusting.multiply(0, true, idx, hit, slots, xs, 1, y.data(), pool);
}

// The column checksum is XXH3 (64 bits, seeded by layer, matrix and column, low 32 bits kept)
// on every code path the CPU picks: the same as the library's generic one, on fresh random bytes.
TEST(FlashImage, ColumnChecksumIsXxh3OnEveryPath) {
  std::mt19937_64 gen(std::random_device{}());
  for (size_t bytes : {1u, 63u, 64u, 240u, 241u, 1024u, 6144u, 57344u}) {
    std::vector<uint8_t> b(bytes);
    for (auto& v : b) v = uint8_t(gen());
    const uint32_t layer = uint32_t(gen() % 80), col = uint32_t(gen() % 20000);
    for (bool up : {false, true}) {
      const uint64_t seed = (uint64_t(layer) << 33) | (uint64_t(up ? 1 : 0) << 32) | col;
      EXPECT_EQ(column_checksum(b.data(), bytes, layer, up, col),
                uint32_t(XXH3_64bits_withSeed(b.data(), bytes, seed)))
          << bytes << " bytes";
    }
  }
}

}  // namespace
}  // namespace dip
