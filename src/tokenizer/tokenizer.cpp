#include "tokenizer/tokenizer.h"

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <queue>

#include "tokenizer/unicode.h"
#include "util/error.h"

namespace dip {

namespace {

struct Symbol {
  int prev, next;
  const char* text;
  size_t n;
};

// One symbol per UTF-8 character, linked as a list (merges unlink the right neighbour).
std::vector<Symbol> utf8_symbols(std::string_view text) {
  std::vector<Symbol> syms;
  for (size_t off = 0; off < text.size();) {
    const size_t len = std::min(utf8_len(text[off]), text.size() - off);
    syms.push_back({int(syms.size()) - 1, off + len == text.size() ? -1 : int(syms.size()) + 1,
                    text.data() + off, len});
    off += len;
  }
  return syms;
}

struct Fragment {
  int32_t token = -1;  // >= 0: a special token; else raw text [offset, offset+length)
  size_t offset = 0, length = 0;
};

// Splits raw text around special tokens (longest first), as llama.cpp's partition does.
std::vector<Fragment> partition_special(const Vocab& v, std::string_view text, bool parse_special) {
  std::vector<Fragment> frags;
  if (text.empty()) return frags;
  frags.push_back({-1, 0, text.size()});
  for (int32_t sid : v.special_tokens) {
    const TokenData& td = v.tokens[sid];
    if (!parse_special && (td.attr & (kAttrControl | kAttrUnknown))) continue;
    const std::string& st = td.text;
    std::vector<Fragment> next;
    for (const Fragment& f : frags) {
      if (f.token >= 0) {
        next.push_back(f);
        continue;
      }
      size_t base = f.offset, len = f.length;
      while (true) {
        const size_t m = text.substr(0, base + len).find(st, base);
        if (m == std::string_view::npos) {
          next.push_back({-1, base, len});
          break;
        }
        if (m > base) {
          size_t left = m - base;
          if (td.attr & kAttrLstrip) {
            while (left > 0 && std::isspace(uint8_t(text[base + left - 1]))) left--;
          }
          if (left > 0) next.push_back({-1, base, left});
        }
        next.push_back({sid, 0, 0});
        size_t roff = m + st.size();
        if (roff < base + len) {
          size_t rlen = base + len - roff;
          if (td.attr & kAttrRstrip) {
            while (rlen > 0 && std::isspace(uint8_t(text[roff]))) {
              roff++;
              rlen--;
            }
          }
          if (rlen == 0) break;
          base = roff;
          len = rlen;
        } else {
          break;
        }
      }
    }
    frags = std::move(next);
  }
  return frags;
}

int32_t spm_byte_token(const Vocab& v, uint8_t b) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "<0x%02X>", b);
  int32_t id = v.find(buf);
  if (id < 0) id = v.find(std::string(1, char(b)));
  if (id < 0) fail("vocabulary has no byte token for 0x{:02X}", b);
  return id;
}

// SentencePiece BPE: merge the best-scoring adjacent pair until none is in the vocabulary;
// pieces with no token fall back to byte tokens.
void spm_tokenize(const Vocab& v, const std::string& text, std::vector<int32_t>& out) {
  std::vector<Symbol> syms = utf8_symbols(text);
  struct Bigram {
    int left, right;
    float score;
    size_t size;
  };
  auto cmp = [](const Bigram& a, const Bigram& b) {
    return a.score < b.score || (a.score == b.score && a.left > b.left);
  };
  std::priority_queue<Bigram, std::vector<Bigram>, decltype(cmp)> queue(cmp);
  std::map<std::string, std::pair<int, int>> rev_merge;
  auto try_add = [&](int l, int r) {
    if (l < 0 || r < 0) return;
    const std::string s(syms[l].text, syms[l].n + syms[r].n);
    const int32_t id = v.find(s);
    if (id < 0) return;
    queue.push({l, r, v.tokens[id].score, s.size()});
    rev_merge[s] = {l, r};
  };
  for (int i = 1; i < int(syms.size()); ++i) try_add(i - 1, i);
  while (!queue.empty()) {
    const Bigram b = queue.top();
    queue.pop();
    Symbol& l = syms[b.left];
    Symbol& r = syms[b.right];
    if (l.n == 0 || r.n == 0 || l.n + r.n != b.size) continue;
    l.n += r.n;
    r.n = 0;
    l.next = r.next;
    if (r.next >= 0) syms[r.next].prev = b.left;
    try_add(l.prev, b.left);
    try_add(b.left, l.next);
  }
  std::function<void(const Symbol&)> resegment = [&](const Symbol& s) {
    const std::string str(s.text, s.n);
    const int32_t id = v.find(str);
    if (id >= 0) {
      out.push_back(id);
      return;
    }
    auto it = rev_merge.find(str);
    if (it == rev_merge.end()) {
      for (size_t j = 0; j < s.n; ++j) out.push_back(spm_byte_token(v, uint8_t(s.text[j])));
      return;
    }
    resegment(syms[it->second.first]);
    resegment(syms[it->second.second]);
  };
  for (int i = syms.empty() ? -1 : 0; i != -1; i = syms[i].next) resegment(syms[i]);
}

// Byte-level BPE: pre-split into words, then apply merges by rank inside each word.
void bpe_tokenize(const Vocab& v, std::string_view text, std::vector<int32_t>& out) {
  for (const std::string& word : bpe_pre_split(text, v.pre)) {
    if (v.ignore_merges) {
      if (int32_t id = v.find(word); id >= 0) {
        out.push_back(id);
        continue;
      }
    }
    std::vector<Symbol> syms = utf8_symbols(word);
    struct Bigram {
      int left, right;
      std::string text;
      int rank;
    };
    auto cmp = [](const Bigram& a, const Bigram& b) {
      return a.rank > b.rank || (a.rank == b.rank && a.left > b.left);
    };
    std::priority_queue<Bigram, std::vector<Bigram>, decltype(cmp)> queue(cmp);
    auto try_add = [&](int l, int r) {
      if (l < 0 || r < 0) return;
      std::string ls(syms[l].text, syms[l].n), rs(syms[r].text, syms[r].n);
      const int rank = v.bpe_rank(ls, rs);
      if (rank < 0) return;
      queue.push({l, r, ls + rs, rank});
    };
    for (int i = 1; i < int(syms.size()); ++i) try_add(i - 1, i);
    while (!queue.empty()) {
      Bigram b = queue.top();
      queue.pop();
      Symbol& l = syms[b.left];
      Symbol& r = syms[b.right];
      if (l.n == 0 || r.n == 0) continue;
      if (std::string(l.text, l.n) + std::string(r.text, r.n) != b.text) continue;
      l.n += r.n;
      r.n = 0;
      l.next = r.next;
      if (r.next >= 0) syms[r.next].prev = b.left;
      try_add(l.prev, b.left);
      try_add(b.left, l.next);
    }
    for (const Symbol& s : syms) {
      if (s.n == 0) continue;
      const std::string str(s.text, s.n);
      const int32_t id = v.find(str);
      if (id >= 0) {
        out.push_back(id);
      } else {
        for (char ch : str) {
          if (int32_t b = v.find(std::string(1, ch)); b >= 0) out.push_back(b);
        }
      }
    }
  }
}

void replace_all(std::string& s, std::string_view from, std::string_view to) {
  std::string r;
  size_t pos = 0;
  for (size_t m; (m = s.find(from, pos)) != std::string::npos; pos = m + from.size()) {
    r.append(s, pos, m - pos).append(to);
  }
  r.append(s, pos);
  s = std::move(r);
}

}  // namespace

std::vector<int32_t> tokenize(const Vocab& v, std::string_view text, bool add_special,
                              bool parse_special) {
  std::vector<int32_t> out;
  const std::vector<Fragment> frags = partition_special(v, text, parse_special);
  if (v.type == VocabType::kSpm) {
    bool prev_special = true;  // a space prefix goes before the first word
    if (add_special && v.add_bos) out.push_back(v.bos);
    for (const Fragment& f : frags) {
      if (f.token >= 0) {
        out.push_back(f.token);
        prev_special = true;
        continue;
      }
      std::string t = v.add_space_prefix && prev_special ? " " : "";
      t.append(text.substr(f.offset, f.length));
      replace_all(t, " ", "\xe2\x96\x81");
      spm_tokenize(v, t, out);
      prev_special = false;
    }
    if (add_special && v.add_eos) out.push_back(v.eos);
  } else {
    if (add_special && v.add_bos) out.push_back(v.bos);
    for (const Fragment& f : frags) {
      if (f.token >= 0) {
        out.push_back(f.token);
      } else {
        bpe_tokenize(v, text.substr(f.offset, f.length), out);
      }
    }
    if (add_special && v.add_eos) out.push_back(v.eos);
  }
  return out;
}

std::string token_to_piece(const Vocab& v, int32_t id, bool special) {
  if (id < 0 || id >= v.n_tokens()) return "";
  const TokenData& t = v.tokens[id];
  if (!special && (t.attr & (kAttrUnknown | kAttrControl))) return "";
  if (t.attr & (kAttrUnknown | kAttrControl | kAttrUserDefined)) return t.text;
  if (v.type == VocabType::kSpm) {
    if (t.attr & kAttrNormal) {
      std::string s = t.text;
      replace_all(s, "\xe2\x96\x81", " ");
      return s;
    }
    if (t.attr & kAttrByte) {
      // "<0xAB>"
      if (t.text.size() == 6)
        return std::string(1, char(std::strtol(t.text.substr(3, 2).c_str(), nullptr, 16)));
    }
    return "";
  }
  if (t.attr & kAttrNormal) {
    std::string s;
    for (uint32_t c : utf8_to_cpts(t.text)) {
      const int b = unicode_to_byte(c);
      if (b >= 0)
        s.push_back(char(b));
      else
        s += cpt_to_utf8(c);
    }
    return s;
  }
  return "";
}

std::string detokenize(const Vocab& v, const std::vector<int32_t>& ids, bool special) {
  std::string s;
  bool first_text = true;
  for (int32_t id : ids) {
    std::string p = token_to_piece(v, id, special);
    if (p.empty()) continue;
    if (first_text && v.type == VocabType::kSpm && v.add_space_prefix && p[0] == ' ') p.erase(0, 1);
    first_text = false;
    s += p;
  }
  return s;
}

}  // namespace dip
