// Hugging Face tokenizer.json (+ tokenizer_config.json) to a Vocab, the way llama.cpp's
// converter reads them; and the reverse for byte-level BPE vocabularies (export, tests).
#pragma once
#include <cstdint>
#include <string>

#include "tokenizer/vocab.h"

namespace dip {

// tokenizer_json / config_json: file contents (config may be empty); `name` is used in errors.
// n_vocab: the model's vocabulary size (config.json); the vocabulary is padded up to it.
Vocab parse_hf_tokenizer(const std::string& tokenizer_json, const std::string& config_json,
                         const std::string& name, uint32_t n_vocab);

// Reads DIR/tokenizer.json and DIR/tokenizer_config.json (optional).
Vocab load_hf_tokenizer(const std::string& dir, uint32_t n_vocab);

// Writes DIR/tokenizer.json and DIR/tokenizer_config.json for a byte-level BPE vocabulary.
void write_hf_tokenizer(const Vocab& v, const std::string& dir);

}  // namespace dip
