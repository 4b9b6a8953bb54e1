#include "tokenizer/vocab.h"

#include <algorithm>

#include "io/gguf.h"
#include "util/error.h"

namespace dip {

int Vocab::bpe_rank(const std::string& left, const std::string& right) const {
  std::string key;
  key.reserve(left.size() + right.size() + 1);
  key.append(left).push_back('\0');
  key.append(right);
  auto it = bpe_ranks.find(key);
  return it == bpe_ranks.end() ? -1 : it->second;
}

bool Vocab::is_eog(int32_t id) const { return std::find(eog.begin(), eog.end(), id) != eog.end(); }

void finalize_vocab(Vocab& v, const std::string& model_name) {
  const size_t n = v.tokens.size();
  v.token_to_id.clear();
  v.token_to_id.reserve(n);
  for (size_t i = 0; i < n; ++i) v.token_to_id[v.tokens[i].text] = int32_t(i);
  v.eog.clear();
  v.special_tokens.clear();
  // End-of-generation tokens: EOS, EOT, EOM, and the usual end-of-turn texts.
  for (const char* text : {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
                           "<|end_of_text|>", "<EOT>", "<|eom_id|>"}) {
    const int32_t id = v.find(text);
    if (id >= 0) {
      if (v.eot < 0 && std::string(text) != "<|eom_id|>") v.eot = id;
      if (!(v.tokens[id].attr & kAttrControl)) v.tokens[id].attr = kAttrControl;
      v.eog.push_back(id);
    }
  }
  for (int32_t id : {v.eos, v.eot, v.eom}) {
    if (id >= 0 && !v.is_eog(id)) v.eog.push_back(id);
  }

  for (size_t i = 0; i < n; ++i) {
    if (v.tokens[i].attr & (kAttrControl | kAttrUserDefined | kAttrUnknown))
      v.special_tokens.push_back(int32_t(i));
  }
  std::stable_sort(v.special_tokens.begin(), v.special_tokens.end(), [&](int32_t a, int32_t b) {
    return v.tokens[a].text.size() > v.tokens[b].text.size();
  });

  // Phi-3 models strip whitespace to the right of their special tokens (llama.cpp's rule).
  std::string name = model_name;
  std::transform(name.begin(), name.end(), name.begin(),
                 [](unsigned char c) { return char(std::tolower(c)); });
  if (name.find("phi-3") != std::string::npos || name.find("phi3") != std::string::npos) {
    for (int32_t id : v.special_tokens) v.tokens[id].attr |= kAttrRstrip;
    for (const char* t : {"</s>"})
      if (int32_t id = v.find(t); id >= 0) v.tokens[id].attr |= kAttrRstrip;
    for (const char* t : {"<unk>", "<s>", "<|endoftext|>"}) {
      if (int32_t id = v.find(t); id >= 0) v.tokens[id].attr &= ~uint32_t(kAttrRstrip);
    }
  }
}

Vocab load_vocab(const GgufFile& g) {
  const std::string& path = g.path();
  Vocab v;
  v.model_name = g.get_string("tokenizer.ggml.model").value_or("");
  if (v.model_name.empty()) fail("{}: no tokenizer (tokenizer.ggml.model is missing)", path);
  v.pre_name = g.get_string("tokenizer.ggml.pre").value_or("");
  v.chat_template = g.get_string("tokenizer.chat_template").value_or("");
  if (v.model_name == "llama") {
    v.type = VocabType::kSpm;
    v.bos = 1;
    v.eos = 2;
    v.unk = 0;
    v.add_space_prefix = true;
    v.add_bos = true;
  } else if (v.model_name == "gpt2") {
    v.type = VocabType::kBpe;
    v.bos = 11;
    v.eos = 11;
    v.pre = pre_type_from_name(v.pre_name, path);
    if (v.pre == PreType::kLlama3) {
      v.ignore_merges = true;
      v.add_bos = true;
    }
  } else {
    fail("{}: unsupported tokenizer model '{}' (supported: llama, gpt2)", path, v.model_name);
  }
  if (auto b = g.get_bool("tokenizer.ggml.add_space_prefix")) v.add_space_prefix = *b;

  const GgufValue* list = g.get_array("tokenizer.ggml.tokens", GgufType::STRING);
  if (!list) fail("{}: tokenizer.ggml.tokens is missing", path);
  const size_t n = list->count;
  if (n == 0) fail("{}: tokenizer.ggml.tokens is empty", path);
  if (n > (1u << 30)) fail("{}: absurd vocabulary size {}", path, n);
  const GgufValue* scores = g.find("tokenizer.ggml.scores")
                                ? g.get_array("tokenizer.ggml.scores", GgufType::F32)
                                : nullptr;
  const GgufValue* types = g.find("tokenizer.ggml.token_type")
                               ? g.get_array("tokenizer.ggml.token_type", GgufType::I32)
                               : nullptr;
  if (scores && scores->count != n)
    fail("{}: tokenizer.ggml.scores has {} entries for {} tokens", path, scores->count, n);
  if (types && types->count != n)
    fail("{}: tokenizer.ggml.token_type has {} entries for {} tokens", path, types->count, n);

  v.tokens.resize(n);
  for (size_t i = 0; i < n; ++i) {
    TokenData& t = v.tokens[i];
    t.text = std::string(list->strings[i]);
    if (t.text.empty()) t.text = "[EMPTY_" + std::to_string(i) + "]";
    t.score = scores ? float(gguf_array_f64(*scores, i)) : 0.0f;
    if (types) {
      switch (gguf_array_i64(*types, i)) {
        case 1:
          t.attr = kAttrNormal;
          break;
        case 2:
          t.attr = kAttrUnknown;
          break;
        case 3:
          t.attr = kAttrControl;
          break;
        case 4:
          t.attr = kAttrUserDefined;
          break;
        case 5:
          t.attr = kAttrUnused;
          break;
        case 6:
          t.attr = kAttrByte;
          break;
        default:
          t.attr = kAttrUndefined;
          break;
      }
    }
  }

  if (v.type == VocabType::kBpe) {
    const GgufValue* merges = g.get_array("tokenizer.ggml.merges", GgufType::STRING);
    if (!merges) fail("{}: byte-level BPE vocabulary without tokenizer.ggml.merges", path);
    v.bpe_ranks.reserve(merges->count);
    for (size_t i = 0; i < merges->count; ++i) {
      const std::string_view m = merges->strings[i];
      const size_t sp = m.find(' ', 1);
      std::string key;
      if (sp != std::string_view::npos) {
        key.append(m.substr(0, sp)).push_back('\0');
        key.append(m.substr(sp + 1));
      } else {
        key.push_back('\0');
      }
      v.bpe_ranks.emplace(std::move(key), int32_t(i));
    }
  }

  // Tokens that start or end a sequence must exist: an id past the vocabulary is a broken file,
  // not a reason to generate without BOS or to never stop. Padding and separator ids, which
  // generation does not use, are dropped when out of range.
  auto special = [&](const char* key, int32_t& id, bool required) {
    if (auto x = g.get_uint(key)) {
      if (*x < n) {
        id = int32_t(*x);
      } else if (required) {
        fail("{}: {} is {}, outside the vocabulary of {} tokens", path, key, *x, n);
      }
    }
  };
  special("tokenizer.ggml.bos_token_id", v.bos, true);
  special("tokenizer.ggml.eos_token_id", v.eos, true);
  special("tokenizer.ggml.eot_token_id", v.eot, true);
  special("tokenizer.ggml.eom_token_id", v.eom, true);
  special("tokenizer.ggml.unknown_token_id", v.unk, true);
  special("tokenizer.ggml.padding_token_id", v.pad, false);
  special("tokenizer.ggml.seperator_token_id", v.sep, false);
  if (auto b = g.get_bool("tokenizer.ggml.add_bos_token")) v.add_bos = *b;
  if (auto b = g.get_bool("tokenizer.ggml.add_eos_token")) v.add_eos = *b;
  if (v.bos >= int32_t(n)) v.bos = -1;
  if (v.eos >= int32_t(n)) v.eos = -1;
  if (v.unk >= int32_t(n)) v.unk = -1;
  if (v.add_bos && v.bos < 0) fail("{}: the vocabulary asks for a BOS token but has none", path);

  finalize_vocab(v, g.get_string("general.name").value_or(""));
  return v;
}

}  // namespace dip

namespace dip {
const char* pre_type_gguf_name(PreType t) {
  switch (t) {
    case PreType::kDefault:
      return "default";
    case PreType::kGpt2:
      return "gpt-2";
    case PreType::kLlama3:
      return "llama-bpe";
    case PreType::kQwen2:
      return "qwen2";
    case PreType::kDeepseekLlm:
      return "deepseek-llm";
  }
  return "default";
}
}  // namespace dip
