#include "util/error.h"

namespace dip {

uint64_t checked_mul(uint64_t a, uint64_t b, const std::string& what) {
  uint64_t r;
  if (__builtin_mul_overflow(a, b, &r)) fail("{}: size overflows 64 bits", what);
  return r;
}

uint64_t checked_add(uint64_t a, uint64_t b, const std::string& what) {
  uint64_t r;
  if (__builtin_add_overflow(a, b, &r)) fail("{}: size overflows 64 bits", what);
  return r;
}

}  // namespace dip
