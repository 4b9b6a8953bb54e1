#include "cli/terminal.h"

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

}  // namespace dip::cli
