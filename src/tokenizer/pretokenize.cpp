#include "tokenizer/pretokenize.h"

#include <map>
#include <regex>

#include "tokenizer/unicode.h"
#include "util/error.h"

namespace dip {

PreType pre_type_from_name(const std::string& name, const std::string& file) {
  if (name.empty() || name == "default") return PreType::kDefault;
  if (name == "gpt-2" || name == "phi-2" || name == "mpt" || name == "olmo" || name == "jais") {
    return PreType::kGpt2;
  }
  if (name == "llama3" || name == "llama-v3" || name == "llama-bpe" || name == "falcon3" ||
      name == "pixtral" || name == "smaug-bpe" || name == "dbrx") {
    return PreType::kLlama3;
  }
  if (name == "qwen2" || name == "deepseek-r1-qwen" || name == "stablelm2" || name == "megrez") {
    return PreType::kQwen2;
  }
  if (name == "deepseek-llm") return PreType::kDeepseekLlm;
  fail(
      "{}: unsupported pre-tokenizer '{}' (supported: default, gpt-2, llama-bpe/llama3, qwen2, "
      "deepseek-llm)",
      file, name);
}

namespace {

using Offsets = std::vector<size_t>;  // lengths (in code points) of consecutive pieces

// Word splitting of GPT-2's pattern
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)
// written out by hand (as llama.cpp does): unassigned code points match no class.
Offsets split_gpt2(const std::vector<uint32_t>& cpts, const Offsets& offsets) {
  Offsets out;
  size_t start = 0;
  for (size_t len : offsets) {
    const size_t ini = start, end = start + len;
    start = end;
    constexpr uint32_t kNone = 0xffffffff;
    auto cpt = [&](size_t p) { return p >= ini && p < end ? cpts[p] : kNone; };
    auto flags = [&](size_t p) { return p >= ini && p < end ? cpt_flags(cpts[p]) : CptFlags{}; };
    size_t prev = ini;
    auto emit = [&](size_t e) {
      const size_t n = e - prev;
      if (n) out.push_back(n);
      prev = e;
      return n;
    };
    for (size_t pos = ini; pos < end;) {
      const uint32_t c = cpt(pos);
      const CptFlags f = flags(pos);
      if (c == '\'' && pos + 1 < end) {
        const uint32_t n1 = cpt(pos + 1);
        if (n1 == 's' || n1 == 't' || n1 == 'm' || n1 == 'd') {
          pos += emit(pos + 2);
          continue;
        }
        if (pos + 2 < end) {
          const uint32_t n2 = cpt(pos + 2);
          if ((n1 == 'r' && n2 == 'e') || (n1 == 'v' && n2 == 'e') || (n1 == 'l' && n2 == 'l')) {
            pos += emit(pos + 3);
            continue;
          }
        }
      }
      CptFlags f2 = c == ' ' ? flags(pos + 1) : f;
      if (f2.letter) {
        pos += c == ' ';
        while (f2.letter) f2 = flags(++pos);
        emit(pos);
        continue;
      }
      if (f2.number) {
        pos += c == ' ';
        while (f2.number) f2 = flags(++pos);
        emit(pos);
        continue;
      }
      auto other = [](const CptFlags& x) {
        return !(x.whitespace || x.letter || x.number) && x.assigned();
      };
      if (other(f2)) {
        pos += c == ' ';
        while (other(f2)) f2 = flags(++pos);
        emit(pos);
        continue;
      }
      size_t ws = 0;
      while (flags(pos + ws).whitespace) ws++;
      if (ws > 1 && cpt(pos + ws) != kNone) {
        pos += ws - 1;
        emit(pos);
        continue;
      }
      if (ws > 0) {
        pos += ws;
        emit(pos);
        continue;
      }
      emit(++pos);
    }
  }
  return out;
}

// Llama 3's pattern (and Qwen2's, which takes single digits):
//   (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|
//   \s*[\r\n]+|\s+(?!\S)|\s+
Offsets split_llama3(const std::vector<uint32_t>& cpts, const Offsets& offsets, size_t max_digits) {
  Offsets out;
  size_t start = 0;
  for (size_t len : offsets) {
    const size_t ini = start, end = start + len;
    start = end;
    constexpr uint32_t kNone = 0xffffffff;
    auto cpt = [&](size_t p) { return p >= ini && p < end ? cpts[p] : kNone; };
    auto flags = [&](size_t p) { return p >= ini && p < end ? cpt_flags(cpts[p]) : CptFlags{}; };
    size_t prev = ini;
    auto emit = [&](size_t e) {
      const size_t n = e - prev;
      if (n) out.push_back(n);
      prev = e;
      return n;
    };
    for (size_t pos = ini; pos < end;) {
      const uint32_t c = cpt(pos);
      const CptFlags f = flags(pos);
      if (c == '\'' && pos + 1 < end) {
        const uint32_t n1 = cpt_tolower(cpt(pos + 1));
        if (n1 == 's' || n1 == 't' || n1 == 'm' || n1 == 'd') {
          pos += emit(pos + 2);
          continue;
        }
        if (pos + 2 < end) {
          const uint32_t n2 = cpt_tolower(cpt(pos + 2));
          if ((n1 == 'r' && n2 == 'e') || (n1 == 'v' && n2 == 'e') || (n1 == 'l' && n2 == 'l')) {
            pos += emit(pos + 3);
            continue;
          }
        }
      }
      if (!(c == '\r' || c == '\n' || f.number)) {
        if (f.letter || flags(pos + 1).letter) {
          pos++;
          while (flags(pos).letter) pos++;
          emit(pos);
          continue;
        }
      }
      if (f.number) {
        size_t first = pos;
        while (flags(pos).number) {
          if (++pos - first >= max_digits) {
            emit(pos);
            first = pos;
          }
        }
        emit(pos);
        continue;
      }
      CptFlags f2 = c == ' ' ? flags(pos + 1) : f;
      if (!(f2.whitespace || f2.letter || f2.number) && f.assigned()) {
        pos += c == ' ';
        while (!(f2.whitespace || f2.letter || f2.number) && f2.assigned()) f2 = flags(++pos);
        uint32_t c2 = cpt(pos);
        while (c2 == '\r' || c2 == '\n') c2 = cpt(++pos);
        emit(pos);
        continue;
      }
      size_t ws = 0, last_rn = 0;
      while (flags(pos + ws).whitespace) {
        const uint32_t c2 = cpt(pos + ws);
        if (c2 == '\r' || c2 == '\n') last_rn = pos + ws + 1;
        ws++;
      }
      if (last_rn > 0) {
        pos = last_rn;
        emit(pos);
        continue;
      }
      if (ws > 1 && cpt(pos + ws) != kNone) {
        pos += ws - 1;
        emit(pos);
        continue;
      }
      if (ws > 0) {
        pos += ws;
        emit(pos);
        continue;
      }
      emit(++pos);
    }
  }
  return out;
}

// Splits every piece with a std::regex; unmatched stretches become pieces of their own.
template <typename CharT>
Offsets split_stl(const std::basic_string<CharT>& text, const std::basic_string<CharT>& pattern,
                  const Offsets& offsets) {
  const std::basic_regex<CharT> re(pattern,
                                   std::regex_constants::optimize | std::regex_constants::nosubs);
  Offsets out;
  size_t start = 0;
  for (size_t len : offsets) {
    std::regex_iterator<const CharT*> it(text.data() + start, text.data() + start + len, re), endit;
    int64_t done = 0;
    for (; it != endit; ++it) {
      const auto& m = *it;
      if (m.position() > done) out.push_back(size_t(m.position() - done));
      out.push_back(size_t(m.length()));
      done = m.position() + m.length();
    }
    if (done < int64_t(len)) out.push_back(len - size_t(done));
    start += len;
  }
  return out;
}

// Category classes are not understood by std::regex: like llama.cpp, replace every non-ASCII
// code point by one byte standing for its category and each \p{X} by that byte plus the
// ASCII members of the class.
constexpr char kCollNumber = char(0xd1), kCollLetter = char(0xd2), kCollPunct = char(0xd3),
               kCollAccent = char(0xd4), kCollSymbol = char(0xd5), kCollOther = char(0xd0);

Offsets split_regex(const std::vector<uint32_t>& cpts, const std::string& pattern,
                    const Offsets& offsets) {
  static const std::map<std::string, std::string> kClasses = {
      {"\\p{N}", std::string(1, kCollNumber) + "\\x30-\\x39"},
      {"\\p{L}", std::string(1, kCollLetter) + "\\x41-\\x5A\\x61-\\x7A"},
      {"\\p{P}",
       std::string(1, kCollPunct) +
           "\\x21-\\x23\\x25-\\x2A\\x2C-\\x2F\\x3A-\\x3B\\x3F-\\x40\\x5B-\\x5D\\x5F\\x7B\\x7D"},
      {"\\p{M}", std::string(1, kCollAccent)},
      {"\\p{S}", std::string(1, kCollSymbol) + "\\x24\\x2B\\x3C-\\x3E\\x5E\\x60\\x7C"},
  };
  bool uses_classes = false;
  for (const auto& [k, v] : kClasses) uses_classes |= pattern.find(k) != std::string::npos;
  if (uses_classes) {
    std::string text(cpts.size(), 0);
    for (size_t i = 0; i < cpts.size(); ++i) {
      if (cpts[i] < 128) {
        text[i] = char(cpts[i]);
        continue;
      }
      const CptFlags f = cpt_flags(cpts[i]);
      text[i] = f.whitespace    ? char(0x0b)
                : f.number      ? kCollNumber
                : f.letter      ? kCollLetter
                : f.punctuation ? kCollPunct
                : f.accent_mark ? kCollAccent
                : f.symbol      ? kCollSymbol
                                : kCollOther;
    }
    std::string re;
    bool inside = false;
    for (size_t i = 0; i < pattern.size(); ++i) {
      if (pattern[i] == '[' && (i == 0 || pattern[i - 1] != '\\')) {
        re += '[';
        inside = true;
        continue;
      }
      if (inside && pattern[i] == ']' && pattern[i - 1] != '\\') {
        re += ']';
        inside = false;
        continue;
      }
      bool replaced = false;
      for (const auto& [k, v] : kClasses) {
        if (pattern.compare(i, k.size(), k) == 0) {
          re += inside ? v : "[" + v + "]";
          i += k.size() - 1;
          replaced = true;
          break;
        }
      }
      if (!replaced) re += pattern[i];
    }
    return split_stl<char>(text, re, offsets);
  }
  std::wstring wtext(cpts.begin(), cpts.end());
  for (auto& c : wtext) {
    if (uint32_t(c) > 0x7f && cpt_flags(uint32_t(c)).whitespace) c = 0x0b;  // \s is ASCII-only
  }
  const auto pc = utf8_to_cpts(pattern);
  return split_stl<wchar_t>(wtext, std::wstring(pc.begin(), pc.end()), offsets);
}

const std::vector<std::string>& deepseek_llm_patterns() {
  static const std::vector<std::string> p = {
      "[\r\n]",
      "\\s?[A-Za-z\u00B5\u00C0-\u00D6\u00D8-\u00F6\u00F8-\u01BA\u01BC-\u01BF\u01C4-\u0293\u0295-"
      "\u02AF\u0370-\u0373\u0376\u0377\u037B-\u037D\u037F\u0386\u0388-\u038A\u038C\u038E-"
      "\u03A1\u03A3-\u03F5\u03F7-\u0481\u048A-\u052F\u0531-\u0556\u10A0-\u10C5\u13A0-\u13F5\u13F8-"
      "\u13FD\u1C90-\u1CBA\u1CBD-\u1CBF\u1D00-\u1D2B\u1D6B-\u1D77\u1D79-\u1D9A\u1E00-\u1F15\u1F18-"
      "\u1F1D\u1F20-\u1F45\u1F48-\u1F4D\u1F50-\u1F57\u1F59\u1F5B\u1F5D\u1F5F-\u1F7D\u1F80-"
      "\u1FB4\u1FB6-\u1FBC\u1FBE\u1FC2-\u1FC4\u1FC6-\u1FCC\u1FD0-\u1FD3\u1FD6-\u1FDB\u1FE0-"
      "\u1FEC\u1FF2-\u1FF4\u1FF6-\u1FFC\u2102\u2107\u210A-\u2113\u2115\u2119-"
      "\u211D\u2124\u2126\u2128\u212A-\u212D\u212F-\u2134\u2139\u213C-\u213F\u2145-"
      "\u2149\u214E\u2183\u2184\u2C00-\u2C7B\u2C7E-\u2CE4\u2CEB-\u2CEE\u2CF2\u2CF3\uA640-"
      "\uA66D\uA680-\uA69B\uA722-\uA76F\uA771-\uA787\uA78B-\uA78E\uAB70-\uABBF\uFB00-\uFB06\uFB13-"
      "\uFB17\uFF21-\uFF3A\uFF41-\uFF5A\U00010400-\U0001044F\U000104B0-\U000104D3\U000104D8-"
      "\U000104FB\U00010C80-\U00010CB2\U00010CC0-\U00010CF2\U000118A0-\U000118DF\U0001E900-"
      "\U0001E943]+",
      "\\s?[!-/:-~\uFF01-\uFF0F\uFF1A-\uFF5E\u2018-\u201F\u3000-\u3002]+",
      "\\s+$",
      "[\u4E00-\u9FA5\u0800-\u4E00\uAC00-\uD7FF]+",
      "\\p{N}+",
  };
  return p;
}

const std::vector<std::string>& default_patterns() {
  static const std::vector<std::string> p = {
      "[\\p{P}\\$\\+<=>\\^~\\|]+",
      "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)",
      "\\p{N}+",
      "[0-9][0-9][0-9]",
  };
  return p;
}

}  // namespace

std::vector<std::string> bpe_pre_split(std::string_view text, PreType type) {
  const std::vector<uint32_t> cpts = utf8_to_cpts(text);
  Offsets offsets = {cpts.size()};
  switch (type) {
    case PreType::kGpt2:
      offsets = split_gpt2(cpts, offsets);
      break;
    case PreType::kLlama3:
      offsets = split_llama3(cpts, offsets, 3);
      break;
    case PreType::kQwen2:
      offsets = split_llama3(cpts, offsets, 1);
      break;
    case PreType::kDeepseekLlm:
      for (const auto& p : deepseek_llm_patterns()) offsets = split_regex(cpts, p, offsets);
      break;
    case PreType::kDefault:
      // The second default pattern is GPT-2's, which llama.cpp runs through its own splitter.
      for (const auto& p : default_patterns()) {
        offsets = &p == &default_patterns()[1] ? split_gpt2(cpts, offsets)
                                               : split_regex(cpts, p, offsets);
      }
      break;
  }
  std::vector<std::string> words;
  words.reserve(offsets.size());
  size_t start = 0;
  for (size_t len : offsets) {
    std::string w;
    for (size_t i = start; i < start + len; ++i) {
      for (char ch : cpt_to_utf8(cpts[i])) w += byte_to_unicode(uint8_t(ch));
    }
    words.push_back(std::move(w));
    start += len;
  }
  return words;
}

}  // namespace dip
