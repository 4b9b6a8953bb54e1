// libFuzzer target: tokenizer.json (+ a fixed tokenizer_config.json) to a vocabulary, then
// tokenizing and decoding a text with it.
#include <cstdint>
#include <string>

#include "tokenizer/hf_tokenizer.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const std::string json(reinterpret_cast<const char*>(data), size);
    dip::Vocab v =
        dip::parse_hf_tokenizer(json, "{\"add_bos_token\": false}", "fuzz/tokenizer.json", 0);
    const auto ids = dip::tokenize(v, "Hello world, it's 2024!  \n\t caf\xC3\xA9", false, true);
    dip::detokenize(v, ids, true);
  } catch (const dip::Error&) {
  }
  return 0;
}
