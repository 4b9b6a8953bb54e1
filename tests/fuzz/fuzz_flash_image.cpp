// libFuzzer target: the flash image reader (header, index, checksums, column slots, sizes,
// offsets, alignment).
// The input gets valid CRCs before it is read, so that mutations reach the checks behind them; the
// image is read from a memory file through its /proc path, as the engine opens images.
#include <sys/mman.h>
#include <unistd.h>
#include <zlib.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "flash/flash_image.h"
#include "util/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<uint8_t> b(data, data + size);
  if (b.size() >= sizeof(dip::FlashHeader)) {
    dip::FlashHeader h;
    std::memcpy(&h, b.data(), sizeof(h));
    const uint64_t index_bytes = uint64_t(h.n_layer) * sizeof(dip::FlashLayerIndex);
    if (h.n_layer <= 4096 && sizeof(h) + index_bytes <= b.size()) {
      h.index_crc = uint32_t(crc32(0, b.data() + sizeof(h), uInt(index_bytes)));
      const uint64_t sums_bytes = uint64_t(h.n_layer) * (uint64_t(h.n_embd) + h.n_ff) * 4;
      if (h.sums_offset <= b.size() && sums_bytes <= b.size() - h.sums_offset) {
        h.sums_crc = uint32_t(crc32(0, b.data() + h.sums_offset, uInt(sums_bytes)));
        if (sums_bytes <= b.size() - h.sums_offset - sums_bytes) {  // the slots follow the sums
          h.slots_crc = uint32_t(crc32(0, b.data() + h.sums_offset + sums_bytes, uInt(sums_bytes)));
        }
      }
    }
    h.header_crc = 0;
    h.header_crc = uint32_t(crc32(0, reinterpret_cast<const Bytef*>(&h), sizeof(h)));
    std::memcpy(b.data(), &h, sizeof(h));
  }
  const int fd = memfd_create("fuzz.dipflash", 0);
  if (fd < 0) return 0;
  if (write(fd, b.data(), b.size()) == ssize_t(b.size())) {
    try {
      const dip::FlashImage img("/proc/self/fd/" + std::to_string(fd));
      const dip::FlashHeader& h = img.header();
      // The last column of every region ends inside the file (the reader checked the regions).
      for (uint32_t l = 0; l < h.n_layer; ++l) {
        if (img.up_offset(l, h.n_embd - 1) + h.up_col_stride > h.file_bytes ||
            img.down_offset(l, h.n_ff - 1) + h.down_col_stride > h.file_bytes) {
          __builtin_trap();
        }
      }
      img.verify_data(nullptr);  // every region inside the file: reads must not fail short
    } catch (const dip::Error&) {
    }
  }
  close(fd);
  return 0;
}
