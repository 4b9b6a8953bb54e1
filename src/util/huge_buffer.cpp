#include "util/huge_buffer.h"

#include <sys/mman.h>

#include <utility>

#include "util/error.h"

namespace dip {

namespace {
constexpr size_t kHuge = size_t(2) << 20;
}

HugeBuffer::HugeBuffer(size_t bytes, bool huge) : size_(bytes) {
  if (bytes == 0) return;
  mapped_ = (bytes + kHuge - 1) / kHuge * kHuge;
  void* p = mmap(nullptr, mapped_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) fail("out of memory: cannot map {} bytes", mapped_);
#ifdef MADV_HUGEPAGE
  madvise(p, mapped_,
          huge ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);  // advisory: ignored where THP is off
#endif
  data_ = static_cast<uint8_t*>(p);
}

HugeBuffer::~HugeBuffer() {
  if (data_) munmap(data_, mapped_);
}

HugeBuffer::HugeBuffer(HugeBuffer&& o) noexcept
    : data_(std::exchange(o.data_, nullptr)),
      size_(std::exchange(o.size_, 0)),
      mapped_(std::exchange(o.mapped_, 0)) {}

HugeBuffer& HugeBuffer::operator=(HugeBuffer&& o) noexcept {
  if (this != &o) {
    if (data_) munmap(data_, mapped_);
    data_ = std::exchange(o.data_, nullptr);
    size_ = std::exchange(o.size_, 0);
    mapped_ = std::exchange(o.mapped_, 0);
  }
  return *this;
}

}  // namespace dip
