// Unicode helpers for the tokenizers: UTF-8 decoding with llama.cpp's error rules, general
// categories (from ICU), and GPT-2's byte <-> printable-character map.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace dip {

struct CptFlags {
  bool number = false, letter = false, separator = false, accent_mark = false;
  bool punctuation = false, symbol = false, control = false, whitespace = false;
  // True when the code point is assigned (any category); unassigned ones match no class.
  bool assigned() const {
    return number || letter || separator || accent_mark || punctuation || symbol || control;
  }
};

CptFlags cpt_flags(uint32_t cpt);
uint32_t cpt_tolower(uint32_t cpt);

// Byte length of the UTF-8 sequence that starts with lead byte c (1 for stray bytes).
size_t utf8_len(char c);
// Decodes UTF-8; each invalid sequence becomes U+FFFD and skips one byte.
std::vector<uint32_t> utf8_to_cpts(std::string_view s);
std::string cpt_to_utf8(uint32_t cpt);
// True when s is well-formed UTF-8.
bool is_valid_utf8(std::string_view s);

// GPT-2 byte-level BPE: each byte maps to one printable code point, as UTF-8.
const std::string& byte_to_unicode(uint8_t b);
// Inverse of byte_to_unicode for one code point; returns -1 when it is not a byte symbol.
int unicode_to_byte(uint32_t cpt);

}  // namespace dip
