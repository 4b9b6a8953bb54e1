#include "tokenizer/unicode.h"

#include <unicode/uchar.h>

#include <array>
#include <mutex>

namespace dip {

namespace {

enum : uint8_t {
  kNumber = 1,
  kLetter = 2,
  kSeparator = 4,
  kAccent = 8,
  kPunct = 16,
  kSymbol = 32,
  kControl = 64,
  kWhitespace = 128,
};

uint8_t compute_flags(uint32_t cpt) {
  uint8_t f = 0;
  switch (u_charType(UChar32(cpt))) {
    case U_DECIMAL_DIGIT_NUMBER:
    case U_LETTER_NUMBER:
    case U_OTHER_NUMBER:
      f = kNumber;
      break;
    case U_UPPERCASE_LETTER:
    case U_LOWERCASE_LETTER:
    case U_TITLECASE_LETTER:
    case U_MODIFIER_LETTER:
    case U_OTHER_LETTER:
      f = kLetter;
      break;
    case U_SPACE_SEPARATOR:
    case U_LINE_SEPARATOR:
    case U_PARAGRAPH_SEPARATOR:
      f = kSeparator;
      break;
    case U_NON_SPACING_MARK:
    case U_ENCLOSING_MARK:
    case U_COMBINING_SPACING_MARK:
      f = kAccent;
      break;
    case U_DASH_PUNCTUATION:
    case U_START_PUNCTUATION:
    case U_END_PUNCTUATION:
    case U_CONNECTOR_PUNCTUATION:
    case U_OTHER_PUNCTUATION:
    case U_INITIAL_PUNCTUATION:
    case U_FINAL_PUNCTUATION:
      f = kPunct;
      break;
    case U_MATH_SYMBOL:
    case U_CURRENCY_SYMBOL:
    case U_MODIFIER_SYMBOL:
    case U_OTHER_SYMBOL:
      f = kSymbol;
      break;
    case U_CONTROL_CHAR:
    case U_FORMAT_CHAR:
    case U_PRIVATE_USE_CHAR:
    case U_SURROGATE:
      f = kControl;
      break;
    default:
      break;  // unassigned
  }
  if (u_isUWhiteSpace(UChar32(cpt))) f |= kWhitespace;
  return f;
}

constexpr uint32_t kMaxCpt = 0x110000;

const std::vector<uint8_t>& flag_table() {
  static const std::vector<uint8_t> table = [] {
    std::vector<uint8_t> t(kMaxCpt);
    for (uint32_t c = 0; c < kMaxCpt; ++c) t[c] = compute_flags(c);
    return t;
  }();
  return table;
}

struct ByteMap {
  std::array<std::string, 256> to_utf8;
  std::vector<int> from_cpt;  // indexed by code point < 512
};

const ByteMap& byte_map() {
  static const ByteMap m = [] {
    ByteMap bm;
    bm.from_cpt.assign(512, -1);
    std::array<bool, 256> direct{};
    for (int c = 0x21; c <= 0x7e; ++c) direct[c] = true;
    for (int c = 0xa1; c <= 0xac; ++c) direct[c] = true;
    for (int c = 0xae; c <= 0xff; ++c) direct[c] = true;
    int n = 0;
    for (int b = 0; b < 256; ++b) {
      const uint32_t cpt = direct[b] ? uint32_t(b) : uint32_t(256 + n++);
      bm.to_utf8[b] = cpt_to_utf8(cpt);
      bm.from_cpt[cpt] = b;
    }
    return bm;
  }();
  return m;
}

}  // namespace

CptFlags cpt_flags(uint32_t cpt) {
  CptFlags r;
  if (cpt >= kMaxCpt) return r;
  const uint8_t f = flag_table()[cpt];
  r.number = f & kNumber;
  r.letter = f & kLetter;
  r.separator = f & kSeparator;
  r.accent_mark = f & kAccent;
  r.punctuation = f & kPunct;
  r.symbol = f & kSymbol;
  r.control = f & kControl;
  r.whitespace = f & kWhitespace;
  return r;
}

uint32_t cpt_tolower(uint32_t cpt) { return uint32_t(u_tolower(UChar32(cpt))); }

size_t utf8_len(char c) {
  static const size_t lookup[] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
  return lookup[uint8_t(c) >> 4];
}

std::vector<uint32_t> utf8_to_cpts(std::string_view s) {
  std::vector<uint32_t> out;
  out.reserve(s.size());
  size_t i = 0;
  auto cont = [&](size_t k) { return i + k < s.size() && (uint8_t(s[i + k]) & 0xc0) == 0x80; };
  while (i < s.size()) {
    const uint8_t c = uint8_t(s[i]);
    if (!(c & 0x80)) {
      out.push_back(c);
      i += 1;
    } else if (!(c & 0x40)) {
      out.push_back(0xfffd);
      i += 1;
    } else if (!(c & 0x20)) {
      if (!cont(1)) {
        out.push_back(0xfffd);
        i += 1;
        continue;
      }
      out.push_back(uint32_t(c & 0x1f) << 6 | (uint8_t(s[i + 1]) & 0x3f));
      i += 2;
    } else if (!(c & 0x10)) {
      if (!cont(1) || !cont(2)) {
        out.push_back(0xfffd);
        i += 1;
        continue;
      }
      out.push_back(uint32_t(c & 0x0f) << 12 | uint32_t(uint8_t(s[i + 1]) & 0x3f) << 6 |
                    (uint8_t(s[i + 2]) & 0x3f));
      i += 3;
    } else if (!(c & 0x08)) {
      if (!cont(1) || !cont(2) || !cont(3)) {
        out.push_back(0xfffd);
        i += 1;
        continue;
      }
      out.push_back(uint32_t(c & 0x07) << 18 | uint32_t(uint8_t(s[i + 1]) & 0x3f) << 12 |
                    uint32_t(uint8_t(s[i + 2]) & 0x3f) << 6 | (uint8_t(s[i + 3]) & 0x3f));
      i += 4;
    } else {
      out.push_back(0xfffd);
      i += 1;
    }
  }
  return out;
}

std::string cpt_to_utf8(uint32_t c) {
  std::string r;
  if (c <= 0x7f) {
    r.push_back(char(c));
  } else if (c <= 0x7ff) {
    r.push_back(char(0xc0 | (c >> 6)));
    r.push_back(char(0x80 | (c & 0x3f)));
  } else if (c <= 0xffff) {
    r.push_back(char(0xe0 | (c >> 12)));
    r.push_back(char(0x80 | ((c >> 6) & 0x3f)));
    r.push_back(char(0x80 | (c & 0x3f)));
  } else {
    r.push_back(char(0xf0 | ((c >> 18) & 0x07)));
    r.push_back(char(0x80 | ((c >> 12) & 0x3f)));
    r.push_back(char(0x80 | ((c >> 6) & 0x3f)));
    r.push_back(char(0x80 | (c & 0x3f)));
  }
  return r;
}

bool is_valid_utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const uint8_t c = uint8_t(s[i]);
    size_t n;
    uint32_t cpt;
    if (c < 0x80) {
      ++i;
      continue;
    }
    if ((c & 0xe0) == 0xc0) {
      n = 1;
      cpt = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      n = 2;
      cpt = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      n = 3;
      cpt = c & 0x07;
    } else
      return false;
    for (size_t k = 1; k <= n; ++k) {
      if (i + k >= s.size() || (uint8_t(s[i + k]) & 0xc0) != 0x80) return false;
      cpt = cpt << 6 | (uint8_t(s[i + k]) & 0x3f);
    }
    static const uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
    if (cpt < kMin[n] || cpt > 0x10ffff || (cpt >= 0xd800 && cpt <= 0xdfff)) return false;
    i += n + 1;
  }
  return true;
}

const std::string& byte_to_unicode(uint8_t b) { return byte_map().to_utf8[b]; }

int unicode_to_byte(uint32_t cpt) { return cpt < 512 ? byte_map().from_cpt[cpt] : -1; }

}  // namespace dip
