// libFuzzer target: the flash probe file reader (JSON, fields, ranges, the gap's alignment).
#include <cstdint>
#include <string>

#include "flash/flash_probe.h"
#include "util/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const dip::FlashProbe p =
        dip::parse_probe(std::string(reinterpret_cast<const char*>(data), size), "fuzz.probe.json");
    // What a run takes from it must be usable: a gap on the alignment, a finite positive rate.
    if (p.gap_bytes % p.align != 0 || !(p.bandwidth > 0)) __builtin_trap();
  } catch (const dip::Error&) {
  }
  return 0;
}
