// A tokenizer vocabulary as llama.cpp reads it from GGUF metadata (tokenizer.ggml.*).
#pragma once
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "tokenizer/pretokenize.h"

namespace dip {

class GgufFile;

enum TokenAttr : uint32_t {
  kAttrUndefined = 0,
  kAttrUnknown = 1 << 0,
  kAttrUnused = 1 << 1,
  kAttrNormal = 1 << 2,
  kAttrControl = 1 << 3,
  kAttrUserDefined = 1 << 4,
  kAttrByte = 1 << 5,
  kAttrLstrip = 1 << 7,
  kAttrRstrip = 1 << 8,
};

enum class VocabType { kSpm, kBpe };

struct TokenData {
  std::string text;
  float score = 0.0f;
  uint32_t attr = kAttrNormal;
};

struct Vocab {
  VocabType type = VocabType::kSpm;
  PreType pre = PreType::kDefault;
  std::string model_name;  // tokenizer.ggml.model
  std::string pre_name;    // tokenizer.ggml.pre
  std::string
      chat_template;  // tokenizer.chat_template (GGUF) or chat_template (tokenizer_config.json)
  std::vector<TokenData> tokens;
  std::unordered_map<std::string, int32_t> token_to_id;
  std::unordered_map<std::string, int32_t> bpe_ranks;  // key: left + '\0' + right
  std::vector<int32_t> special_tokens;  // control / user-defined / unknown, longest first

  int32_t bos = -1, eos = -1, eot = -1, eom = -1, unk = -1, pad = -1, sep = -1;
  bool add_bos = false, add_eos = false, add_space_prefix = false, ignore_merges = false;
  std::vector<int32_t> eog;  // tokens that end generation

  int32_t n_tokens() const { return int32_t(tokens.size()); }
  int32_t find(const std::string& text) const {
    auto it = token_to_id.find(text);
    return it == token_to_id.end() ? -1 : it->second;
  }
  int bpe_rank(const std::string& left, const std::string& right) const;
  bool is_eog(int32_t id) const;
};

// Reads the vocabulary from GGUF metadata; fails with file + problem on anything inconsistent.
Vocab load_vocab(const GgufFile& gguf);

// Derived tables every loader needs once tokens, ids and flags are set: text -> id, end-of-
// generation tokens, special tokens (longest first), Phi-3's whitespace stripping.
void finalize_vocab(Vocab& v, const std::string& model_name);

// The `tokenizer.ggml.pre` name llama.cpp knows for a pre-tokenizer.
const char* pre_type_gguf_name(PreType t);

}  // namespace dip
