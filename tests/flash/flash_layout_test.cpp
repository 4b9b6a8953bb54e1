// The co-activation layout: a permutation that puts columns kept together side by side, an image
// in that layout that gives the same results as one in model order, and slot tables that are
// not permutations refused.
#include "flash/flash_layout.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <algorithm>
#include <fstream>
#include <numeric>
#include <random>

#include "flash/flash_columns.h"
#include "flash/flash_image.h"
#include "model/forward.h"
#include "sparsity/coactivation.h"
#include "sparsity/sparse_mlp.h"
#include "test_models.h"
#include "util/threadpool.h"

namespace dip {
namespace {

bool is_permutation(const std::vector<uint32_t>& v) {
  std::vector<uint32_t> s = v;
  std::sort(s.begin(), s.end());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != i) return false;
  }
  return true;
}

// Columns in planted groups of 8 that are kept together (each token keeps a few random groups),
// their indices shuffled: model order scatters every group, the layout must gather them.
TEST(FlashLayout, GathersColumnsThatAreKeptTogether) {
  std::mt19937_64 gen(std::random_device{}());
  const size_t n = 512, group = 8, tokens = 300;
  std::vector<uint32_t> column(n);
  std::iota(column.begin(), column.end(), 0);
  std::shuffle(column.begin(), column.end(), gen);  // group g = columns column[g*8 .. g*8+7]
  KeptColumns kept;
  kept.resize(n, tokens);
  for (size_t t = 0; t < tokens; ++t) {
    for (size_t g = 0; g < n / group; ++g) {
      if (gen() % 4 != 0) continue;  // a quarter of the groups per token
      for (size_t i = 0; i < group; ++i) kept.set(column[g * group + i], t);
    }
  }
  ThreadPool pool(2);
  const std::vector<uint32_t> slots = coactivation_slots(kept, pool);
  ASSERT_EQ(slots.size(), n);
  EXPECT_TRUE(is_permutation(slots));
  std::vector<uint32_t> identity(n);
  std::iota(identity.begin(), identity.end(), 0);
  const double before = adjacency(kept, identity), after = adjacency(kept, slots);
  EXPECT_LT(before, 0.4);  // about a quarter: neighbours in model order are unrelated
  EXPECT_GT(after, 0.85);  // 7 of a group's 8 columns follow a column of the same group
  // Columns never kept go last.
  KeptColumns sparse;
  sparse.resize(4, 10);
  sparse.set(2, 0);
  sparse.set(3, 0);
  const std::vector<uint32_t> s2 = coactivation_slots(sparse, pool);
  EXPECT_TRUE(is_permutation(s2));
  EXPECT_LT(s2[2], 2u);
  EXPECT_LT(s2[3], 2u);
}

std::vector<std::vector<float>> run_flash(const Model& m, const FlashImage& img,
                                          uint64_t* requests) {
  FlashColumns cols(img, FlashStoreOptions{}, 0.25);
  SparsityConfig c;
  c.method = Method::kDipCa;
  c.mlp_density = 0.5;
  c.gamma = 0.3;
  c.keep.assign(m.hparams().n_layer, dip_optimized_split(0.5));
  SparseMlp mlp(m, c, nullptr, &cols);
  Session s(m, 64, 2);
  s.set_mlp_hook(&mlp);
  std::vector<std::vector<float>> out;
  std::vector<float> logits;
  int32_t tok = 1;
  for (int i = 0; i < 10; ++i) {
    const int32_t one[1] = {tok};
    s.eval(one, false, logits);
    out.push_back(logits);
    tok = int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin());
  }
  *requests = cols.store().stats().requests;
  return out;
}

// A layout changes where columns are stored, never what is computed: a DIP-CA run from the
// image in the co-activation layout gives the logits of the model-order image bit for bit.
TEST(FlashLayout, AnImageInTheLayoutGivesTheSameResults) {
  auto m = synth_model(TensorType::F16, Arch::kLlama, 64, 256, 2, "layout.gguf");
  std::vector<int32_t> toks(200);
  for (size_t i = 0; i < toks.size(); ++i) toks[i] = int32_t(1 + (i * 37) % 200);
  const CoactivationLayout lay = coactivation_layout(*m, toks, 64, 0.5, 2, nullptr);
  ASSERT_EQ(lay.slots.up.size(), 2u);
  ASSERT_EQ(lay.up_after.size(), 2u);
  EXPECT_TRUE(is_permutation(lay.slots.down[1]));
  const std::string plain = temp_path("plain.dipflash"), laid = temp_path("laid.dipflash");
  write_flash_image(*m, plain, 512, nullptr);
  write_flash_image(*m, laid, 512, nullptr, &lay.slots);
  const FlashImage a(plain), b(laid);
  EXPECT_EQ(a.layout(), FlashLayout::kModelOrder);
  EXPECT_EQ(b.layout(), FlashLayout::kCoActivation);
  EXPECT_EQ(b.up_offset(1, 5),
            b.layer(1).up_offset + lay.slots.up[1][5] * b.header().up_col_stride);
  b.verify_data(nullptr);
  uint64_t ra = 0, rb = 0;
  const auto la = run_flash(*m, a, &ra), lb = run_flash(*m, b, &rb);
  ASSERT_EQ(la.size(), lb.size());
  for (size_t t = 0; t < la.size(); ++t) ASSERT_EQ(la[t], lb[t]) << "token " << t;
  EXPECT_GT(ra, 0u);
  EXPECT_GT(rb, 0u);
}

// A slot table that is not a permutation (two columns in one slot) is refused, even with its
// CRC recomputed; so is a layout given to the writer that is not one.
TEST(FlashLayout, SlotsThatAreNotAPermutationAreRefused) {
  auto m = synth_model(TensorType::F32, Arch::kLlama, 64, 128, 2, "badslots.gguf");
  const std::string p = temp_path("badslots.dipflash");
  write_flash_image(*m, p, 512, nullptr);
  FlashHeader h;
  const size_t n = 2 * (64 + 128);  // layers x (bundles + down columns)
  std::vector<uint32_t> slots(n);
  {
    std::fstream f(p, std::ios::in | std::ios::out | std::ios::binary);
    f.read(reinterpret_cast<char*>(&h), sizeof(h));
    const uint64_t at = h.sums_offset + n * sizeof(uint32_t);
    f.seekg(std::streamoff(at));
    f.read(reinterpret_cast<char*>(slots.data()), std::streamsize(n * sizeof(uint32_t)));
    slots[64 + 128 + 3] = slots[64 + 128 + 4];  // layer 1: two bundles in one slot
    h.slots_crc = uint32_t(
        crc32(0, reinterpret_cast<const Bytef*>(slots.data()), uInt(n * sizeof(uint32_t))));
    h.header_crc = 0;
    h.header_crc = uint32_t(crc32(0, reinterpret_cast<const Bytef*>(&h), sizeof(h)));
    f.seekp(std::streamoff(at));
    f.write(reinterpret_cast<const char*>(slots.data()), std::streamsize(n * sizeof(uint32_t)));
    f.seekp(0);
    f.write(reinterpret_cast<const char*>(&h), sizeof(h));
  }
  expect_error([&] { FlashImage img(p); }, "layer 1: the column slots are not a permutation");
  ColumnSlots bad;
  bad.layout = FlashLayout::kCoActivation;
  bad.up.assign(2, std::vector<uint32_t>(64, 0));
  bad.down.assign(2, std::vector<uint32_t>(128, 0));
  expect_error([&] { write_flash_image(*m, temp_path("bad2.dipflash"), 512, nullptr, &bad); },
               "layer 0: the column layout is not a permutation");
}

}  // namespace
}  // namespace dip
