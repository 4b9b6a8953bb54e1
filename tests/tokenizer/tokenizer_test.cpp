// llama.cpp's own tokenizer vectors (../shared/tokenizer-tests), run exactly as its test does:
// no BOS, special tokens not parsed.
#include "tokenizer/tokenizer.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "io/mapped_file.h"
#include "model/model.h"
#include "tokenizer/unicode.h"

namespace dip {
namespace {

std::vector<std::string> split_inputs(const std::string& all) {
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::vector<std::string> out;
  size_t pos = 0;
  while (true) {
    const size_t m = all.find(sep, pos);
    if (m == std::string::npos) break;
    out.push_back(all.substr(pos, m - pos));
    pos = m + sep.size();
  }
  return out;
}

class VocabTest : public ::testing::TestWithParam<const char*> {};

TEST_P(VocabTest, MatchesLlamaCppVectors) {
  const std::string base = std::string(DIP_SHARED_DIR) + "/tokenizer-tests/" + GetParam();
  auto model = Model::load(base, true);
  const auto inputs = split_inputs(read_text_file(base + ".inp"));
  std::istringstream out(read_text_file(base + ".out"));
  ASSERT_GT(inputs.size(), 10u);
  size_t n = 0;
  for (const auto& text : inputs) {
    std::string line;
    ASSERT_TRUE(std::getline(out, line)) << "missing expected line " << n;
    std::vector<int32_t> expected;
    std::istringstream ls(line);
    for (int32_t id; ls >> id;) expected.push_back(id);
    EXPECT_EQ(tokenize(model->vocab(), text, false, false), expected)
        << "case " << n << ": '" << text << "'";
    // Decoding gives the text back (byte-level BPE is lossless; SPM drops the prefix space).
    if (model->vocab().type == VocabType::kBpe && is_valid_utf8(text)) {
      EXPECT_EQ(detokenize(model->vocab(), expected, true), text) << "case " << n;
    }
    n++;
  }
}

INSTANTIATE_TEST_SUITE_P(SharedVectors, VocabTest,
                         ::testing::Values("ggml-vocab-llama-spm.gguf", "ggml-vocab-gpt-2.gguf",
                                           "ggml-vocab-deepseek-llm.gguf"));

TEST(Tokenizer, SpecialTokensAndBos) {
  auto m =
      Model::load(std::string(DIP_SHARED_DIR) + "/tokenizer-tests/ggml-vocab-llama-spm.gguf", true);
  const Vocab& v = m->vocab();
  const auto with = tokenize(v, "Hello", true, false);
  ASSERT_FALSE(with.empty());
  EXPECT_EQ(with[0], v.bos);
  // Control tokens in the text are only recognised when asked.
  const auto parsed = tokenize(v, "a</s>b", false, true);
  EXPECT_NE(std::find(parsed.begin(), parsed.end(), v.eos), parsed.end());
  const auto plain = tokenize(v, "a</s>b", false, false);
  EXPECT_EQ(std::find(plain.begin(), plain.end(), v.eos), plain.end());
  EXPECT_EQ(detokenize(v, tokenize(v, "Hello world", true, false), false), "Hello world");
}

TEST(Tokenizer, ByteFallbackForUnknownCharacters) {
  auto m =
      Model::load(std::string(DIP_SHARED_DIR) + "/tokenizer-tests/ggml-vocab-llama-spm.gguf", true);
  const auto ids = tokenize(m->vocab(), "\xF0\x9F\xA6\x99", false, false);  // 🦙 -> bytes
  std::string back;
  for (int32_t id : ids) back += token_to_piece(m->vocab(), id, false);
  EXPECT_EQ(back, " \xF0\x9F\xA6\x99");
}

}  // namespace
}  // namespace dip
