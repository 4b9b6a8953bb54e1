// Text <-> token ids for SentencePiece-BPE ("llama") and byte-level BPE ("gpt2") vocabularies,
// with llama.cpp's handling of special tokens, BOS/EOS and space prefixes.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/vocab.h"

namespace dip {

// add_special: add BOS/EOS as the vocabulary asks. parse_special: recognise control tokens
// written in the text (user-defined tokens are always recognised).
std::vector<int32_t> tokenize(const Vocab& vocab, std::string_view text, bool add_special,
                              bool parse_special);

// The bytes a token stands for; control/unknown tokens give "" unless `special`.
std::string token_to_piece(const Vocab& vocab, int32_t id, bool special);

// Concatenated pieces; drops the space that SentencePiece adds in front of the first word.
std::string detokenize(const Vocab& vocab, const std::vector<int32_t>& ids, bool special);

}  // namespace dip
