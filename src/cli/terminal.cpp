#include "cli/terminal.h"

#include <cerrno>
#include <cstdio>

namespace dip::cli {

std::string terminal_text(const std::string& piece) {
  std::string out;
  out.reserve(piece.size());
  for (const char ch : piece) {
    const auto c = static_cast<unsigned char>(ch);
    if ((c >= 0x20 && c != 0x7f) || c == '\n' || c == '\t') out.push_back(ch);
  }
  return out;
}

bool write_generated(const std::string& piece, bool terminal) {
  const std::string& shown = terminal ? terminal_text(piece) : piece;
  std::fwrite(shown.data(), 1, shown.size(), stdout);
  return !(std::fflush(stdout) != 0 && errno == EPIPE);
}

}  // namespace dip::cli
