// libFuzzer target: the safetensors header reader (length, JSON, dtypes, shapes, offsets).
#include <cstdint>
#include <vector>

#include "io/safetensors.h"
#include "util/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    dip::SafetensorsFile f(std::make_unique<dip::MappedFile>(
        "fuzz.safetensors", std::vector<uint8_t>(data, data + size)));
    volatile uint64_t sum = 0;
    for (const auto& t : f.tensors()) {
      if (t.n_bytes) sum += t.data[0] + t.data[t.n_bytes - 1];  // every range must be readable
    }
  } catch (const dip::Error&) {
  }
  return 0;
}
