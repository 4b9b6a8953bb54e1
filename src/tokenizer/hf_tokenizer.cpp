#include "tokenizer/hf_tokenizer.h"

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "io/mapped_file.h"
#include "util/error.h"
#include "util/output_file.h"

namespace dip {

namespace {

using json = nlohmann::json;

const char* kGpt2Regex =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
const char* kLlama3Regex =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const char* kQwen2Regex =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

json parse_json(const std::string& text, const std::string& name) {
  try {
    return json::parse(text);
  } catch (const json::exception& e) {
    fail("{}: malformed JSON: {}", name, e.what());
  }
}

// The token text of a tokenizer_config.json entry: "text" or {"content": "text", ...}.
std::string token_text(const json& j) {
  if (j.is_string()) return j.get<std::string>();
  if (j.is_object() && j.contains("content") && j["content"].is_string())
    return j["content"].get<std::string>();
  return "";
}

// Byte-level pre-tokenizer recognised from the pre_tokenizer section.
PreType detect_pre(const json& pre, const std::string& name, bool& byte_level) {
  std::vector<const json*> items;
  if (pre.is_object() && pre.value("type", "") == "Sequence" && pre.contains("pretokenizers") &&
      pre["pretokenizers"].is_array()) {
    for (const auto& p : pre["pretokenizers"]) items.push_back(&p);
  } else if (pre.is_object()) {
    items.push_back(&pre);
  }
  std::string regex;
  for (const json* p : items) {
    if (!p->is_object()) continue;
    const std::string type = p->value("type", "");
    if (type == "ByteLevel") {
      byte_level = true;
      if (p->value("add_prefix_space", false))
        fail("{}: ByteLevel add_prefix_space is not supported", name);
      if (p->value("use_regex", true) && regex.empty()) regex = kGpt2Regex;
    } else if (type == "Split") {
      if (p->contains("pattern") && (*p)["pattern"].is_object() &&
          (*p)["pattern"].contains("Regex") && (*p)["pattern"]["Regex"].is_string()) {
        regex = (*p)["pattern"]["Regex"].get<std::string>();
      } else {
        fail("{}: Split pre-tokenizer without a regex is not supported", name);
      }
    } else if (!type.empty()) {
      fail("{}: pre-tokenizer '{}' is not supported", name, type);
    }
  }
  if (!byte_level) return PreType::kDefault;
  if (regex == kGpt2Regex) return PreType::kGpt2;
  if (regex == kLlama3Regex) return PreType::kLlama3;
  if (regex == kQwen2Regex) return PreType::kQwen2;
  fail("{}: byte-level pre-tokenizer with an unknown regex (gpt-2, llama3 and qwen2 are known): {}",
       name, regex);
}

}  // namespace

Vocab parse_hf_tokenizer(const std::string& tokenizer_json, const std::string& config_json,
                         const std::string& name, uint32_t n_vocab) {
  const json j = parse_json(tokenizer_json, name);
  const json cfg = config_json.empty() ? json::object()
                                       : parse_json(config_json, name + " (tokenizer_config.json)");
  if (!j.is_object() || !j.contains("model") || !j["model"].is_object())
    fail("{}: no 'model' section", name);
  const json& model = j["model"];
  if (model.value("type", "") != "BPE")
    fail("{}: tokenizer model '{}' is not supported (BPE is)", name, model.value("type", "?"));
  if (!model.contains("vocab") || !model["vocab"].is_object())
    fail("{}: model.vocab is missing", name);
  if (model["vocab"].empty()) fail("{}: model.vocab is empty: no text could be tokenized", name);
  if (n_vocab > (1u << 24)) fail("{}: absurd vocabulary size {}", name, n_vocab);

  Vocab v;
  bool byte_level = false;
  v.pre = detect_pre(j.contains("pre_tokenizer") ? j["pre_tokenizer"] : json(), name, byte_level);
  const bool byte_fallback = model.value("byte_fallback", false);
  if (byte_level) {
    v.type = VocabType::kBpe;
    v.model_name = "gpt2";
    v.pre_name = pre_type_gguf_name(v.pre);
    if (v.pre == PreType::kLlama3) v.ignore_merges = true;
  } else if (byte_fallback) {
    v.type = VocabType::kSpm;  // SentencePiece BPE exported to tokenizer.json (Llama 2, Mistral)
    v.model_name = "llama";
    v.add_space_prefix = true;
  } else {
    fail("{}: neither a byte-level BPE nor a byte-fallback (SentencePiece) BPE tokenizer", name);
  }

  // Ids: model.vocab plus added_tokens; holes and padding up to n_vocab become unused tokens.
  uint32_t max_id = 0;
  for (auto it = model["vocab"].begin(); it != model["vocab"].end(); ++it) {
    if (!it.value().is_number_unsigned())
      fail("{}: vocab entry '{}' has no valid id", name, it.key());
    max_id = std::max<uint32_t>(max_id, it.value().get<uint32_t>() + 1);
  }
  const json added = j.contains("added_tokens") && j["added_tokens"].is_array() ? j["added_tokens"]
                                                                                : json::array();
  for (const auto& a : added) {
    if (!a.is_object() || !a.contains("id") || !a["id"].is_number_unsigned() ||
        !a.contains("content") || !a["content"].is_string()) {
      fail("{}: malformed added_tokens entry", name);
    }
    max_id = std::max<uint32_t>(max_id, a["id"].get<uint32_t>() + 1);
  }
  if (max_id > (1u << 24)) fail("{}: token id {} is absurd", name, max_id - 1);
  const uint32_t n = std::max(max_id, n_vocab);
  v.tokens.resize(n);
  std::vector<bool> set(n, false);
  for (auto it = model["vocab"].begin(); it != model["vocab"].end(); ++it) {
    const uint32_t id = it.value().get<uint32_t>();
    v.tokens[id].text = it.key();
    v.tokens[id].attr = kAttrNormal;
    set[id] = true;
  }
  for (const auto& a : added) {
    const uint32_t id = a["id"].get<uint32_t>();
    v.tokens[id].text = a["content"].get<std::string>();
    v.tokens[id].attr = a.value("special", false) ? kAttrControl : kAttrUserDefined;
    set[id] = true;
  }
  for (uint32_t i = 0; i < n; ++i) {
    if (!set[i]) {
      v.tokens[i].text = "[PAD" + std::to_string(i) + "]";
      v.tokens[i].attr = kAttrUnused;
    }
  }

  const json merges =
      model.contains("merges") && model["merges"].is_array() ? model["merges"] : json::array();
  std::vector<std::pair<std::string, std::string>> pairs;
  pairs.reserve(merges.size());
  for (const auto& m : merges) {
    if (m.is_string()) {
      const std::string s = m.get<std::string>();
      const size_t sp = s.find(' ', 1);
      if (sp == std::string::npos) fail("{}: merge '{}' has no space", name, s);
      pairs.emplace_back(s.substr(0, sp), s.substr(sp + 1));
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      pairs.emplace_back(m[0].get<std::string>(), m[1].get<std::string>());
    } else {
      fail("{}: malformed merge entry", name);
    }
  }
  if (v.type == VocabType::kBpe) {
    for (size_t i = 0; i < pairs.size(); ++i) {
      v.bpe_ranks.emplace(pairs[i].first + '\0' + pairs[i].second, int32_t(i));
    }
  } else {
    // SentencePiece merges by score: the token a merge creates scores -rank (earlier = better).
    std::unordered_map<std::string, int32_t> id_of;
    for (uint32_t i = 0; i < n; ++i) id_of[v.tokens[i].text] = int32_t(i);
    for (auto& t : v.tokens) t.score = -1e9f;
    for (size_t i = 0; i < pairs.size(); ++i) {
      auto it = id_of.find(pairs[i].first + pairs[i].second);
      if (it != id_of.end())
        v.tokens[it->second].score = std::max(v.tokens[it->second].score, -float(i));
    }
    for (auto& t : v.tokens) {
      if (t.text.size() == 6 && t.text.rfind("<0x", 0) == 0 && t.text.back() == '>')
        t.attr = kAttrByte;
    }
    if (int32_t id =
            [&] {
              auto it = id_of.find("<unk>");
              return it == id_of.end() ? -1 : it->second;
            }();
        id >= 0) {
      v.unk = id;
      v.tokens[id].attr = kAttrUnknown;
    }
  }

  auto id_of_text = [&](const std::string& t) -> int32_t {
    if (t.empty()) return -1;
    for (uint32_t i = 0; i < n; ++i)
      if (v.tokens[i].text == t) return int32_t(i);
    return -1;
  };
  // A named BOS/EOS that the vocabulary lacks is an error, not a sequence without one.
  auto named_token = [&](const char* key) -> int32_t {
    if (!cfg.contains(key) || cfg[key].is_null()) return -1;
    const std::string text = token_text(cfg[key]);
    const int32_t id = id_of_text(text);
    if (id < 0 && !text.empty()) fail("{}: {} '{}' is not in the vocabulary", name, key, text);
    return id;
  };
  v.bos = named_token("bos_token");
  v.eos = named_token("eos_token");
  if (v.type == VocabType::kSpm) {
    if (v.bos < 0) v.bos = id_of_text("<s>");
    if (v.eos < 0) v.eos = id_of_text("</s>");
  }
  if (cfg.contains("chat_template") && cfg["chat_template"].is_string())
    v.chat_template = cfg["chat_template"].get<std::string>();
  v.add_bos = cfg.contains("add_bos_token") && cfg["add_bos_token"].is_boolean()
                  ? cfg["add_bos_token"].get<bool>()
                  : (v.type == VocabType::kSpm || v.pre == PreType::kLlama3);
  v.add_eos = cfg.contains("add_eos_token") && cfg["add_eos_token"].is_boolean() &&
              cfg["add_eos_token"].get<bool>();
  if (v.add_bos && v.bos < 0) fail("{}: add_bos_token is set but there is no BOS token", name);
  finalize_vocab(v, "");
  return v;
}

Vocab load_hf_tokenizer(const std::string& dir, uint32_t n_vocab) {
  const std::string tj = dir + "/tokenizer.json";
  if (!std::filesystem::exists(tj)) fail("{}: missing tokenizer.json", dir);
  const std::string tc = dir + "/tokenizer_config.json";
  return parse_hf_tokenizer(read_text_file(tj),
                            std::filesystem::exists(tc) ? read_text_file(tc) : "", tj, n_vocab);
}

void write_hf_tokenizer(const Vocab& v, const std::string& dir) {
  if (v.type != VocabType::kBpe)
    fail("{}: only byte-level BPE vocabularies can be exported to tokenizer.json", dir);
  json vocab = json::object();
  json added = json::array();
  for (size_t i = 0; i < v.tokens.size(); ++i) {
    const auto& t = v.tokens[i];
    if (t.attr & (kAttrControl | kAttrUserDefined)) {
      added.push_back({{"id", i},
                       {"content", t.text},
                       {"single_word", false},
                       {"lstrip", false},
                       {"rstrip", false},
                       {"normalized", false},
                       {"special", bool(t.attr & kAttrControl)}});
    } else {
      vocab[t.text] = i;
    }
  }
  std::vector<std::pair<int32_t, std::string>> merges;
  for (const auto& [k, rank] : v.bpe_ranks) {
    const size_t z = k.find('\0');
    merges.emplace_back(rank, k.substr(0, z) + " " + k.substr(z + 1));
  }
  std::sort(merges.begin(), merges.end());
  json jm = json::array();
  for (auto& m : merges) jm.push_back(m.second);
  const char* regex = v.pre == PreType::kLlama3  ? kLlama3Regex
                      : v.pre == PreType::kQwen2 ? kQwen2Regex
                                                 : nullptr;
  json pre;
  if (regex) {
    pre = {{"type", "Sequence"},
           {"pretokenizers",
            {{{"type", "Split"},
              {"pattern", {{"Regex", regex}}},
              {"behavior", "Isolated"},
              {"invert", false}},
             {{"type", "ByteLevel"},
              {"add_prefix_space", false},
              {"trim_offsets", true},
              {"use_regex", false}}}}};
  } else if (v.pre == PreType::kGpt2) {
    pre = {{"type", "ByteLevel"},
           {"add_prefix_space", false},
           {"trim_offsets", true},
           {"use_regex", true}};
  } else {
    fail("{}: pre-tokenizer {} cannot be exported", dir, pre_type_gguf_name(v.pre));
  }
  const json tok = {{"version", "1.0"},
                    {"truncation", nullptr},
                    {"padding", nullptr},
                    {"added_tokens", added},
                    {"normalizer", nullptr},
                    {"pre_tokenizer", pre},
                    {"post_processor", nullptr},
                    {"decoder",
                     {{"type", "ByteLevel"},
                      {"add_prefix_space", true},
                      {"trim_offsets", true},
                      {"use_regex", true}}},
                    {"model",
                     {{"type", "BPE"},
                      {"dropout", nullptr},
                      {"unk_token", nullptr},
                      {"continuing_subword_prefix", nullptr},
                      {"end_of_word_suffix", nullptr},
                      {"fuse_unk", false},
                      {"byte_fallback", false},
                      {"vocab", vocab},
                      {"merges", jm}}}};
  json cfg = {{"add_bos_token", v.add_bos}, {"add_eos_token", v.add_eos}};
  if (v.bos >= 0) cfg["bos_token"] = v.tokens[v.bos].text;
  if (v.eos >= 0) cfg["eos_token"] = v.tokens[v.eos].text;
  write_file_atomically(dir + "/tokenizer.json", tok.dump(1));
  write_file_atomically(dir + "/tokenizer_config.json", cfg.dump(1));
}

}  // namespace dip
