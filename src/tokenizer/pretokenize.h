// Pre-tokenizers of byte-level BPE vocabularies: split text into words the way llama.cpp does
// for each `tokenizer.ggml.pre`, then map each word's bytes to GPT-2's printable symbols.
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace dip {

enum class PreType { kDefault, kGpt2, kLlama3, kQwen2, kDeepseekLlm };

// Maps a `tokenizer.ggml.pre` value to a pre-tokenizer; fails on names it does not know.
PreType pre_type_from_name(const std::string& name, const std::string& file);

// Splits text into byte-encoded words.
std::vector<std::string> bpe_pre_split(std::string_view text, PreType type);

}  // namespace dip
