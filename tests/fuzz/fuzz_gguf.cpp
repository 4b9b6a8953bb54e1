// libFuzzer target: the GGUF reader (header, metadata, tensor infos) and the vocabulary and
// hyper-parameter readers on top of it. Any input must parse or fail with dip::Error.
#include <cstdint>
#include <vector>

#include "io/gguf.h"
#include "model/hparams.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    dip::GgufFile g(
        std::make_unique<dip::MappedFile>("fuzz.gguf", std::vector<uint8_t>(data, data + size)));
    try {
      dip::load_hparams(g);
    } catch (const dip::Error&) {
    }
    dip::Vocab v = dip::load_vocab(g);
    dip::tokenize(v, "Hello world, it's 2024! \xF0\x9F\xA6\x99", true, true);
  } catch (const dip::Error&) {
  }
  return 0;
}
