// A zero-initialized anonymous memory buffer that asks the kernel for transparent huge pages.
// Column-sparse reads touch a new 4 KiB page for almost every kept column; with 2 MiB pages
// those TLB misses disappear. (With THP off, it is an ordinary buffer.)
#pragma once
#include <cstddef>
#include <cstdint>

namespace dip {

class HugeBuffer {
 public:
  HugeBuffer() = default;
  // huge = false: ordinary pages, so that a buffer filled from the front (a KV cache) takes
  // memory only as it fills.
  explicit HugeBuffer(size_t bytes, bool huge = true);
  ~HugeBuffer();
  HugeBuffer(HugeBuffer&& o) noexcept;
  HugeBuffer& operator=(HugeBuffer&& o) noexcept;
  HugeBuffer(const HugeBuffer&) = delete;
  HugeBuffer& operator=(const HugeBuffer&) = delete;

  uint8_t* data() { return data_; }
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
  size_t mapped_ = 0;
};

}  // namespace dip
