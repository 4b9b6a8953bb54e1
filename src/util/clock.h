// Wall-clock seconds of a phase.
#pragma once
#include <chrono>

namespace dip {

using Clock = std::chrono::steady_clock;
inline double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

}  // namespace dip
