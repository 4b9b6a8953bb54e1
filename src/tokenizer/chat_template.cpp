#include "tokenizer/chat_template.h"

#include <cctype>
#include <functional>
#include <sstream>
#include <utility>

#include "util/error.h"

namespace dip {

namespace {

std::string trim(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return s.substr(b, e - b);
}

bool has(const std::string& s, const char* needle) { return s.find(needle) != std::string::npos; }

// <|im_start|>role\ncontent<|im_end|>\n (ChatML: Qwen, OpenHermes, ...).
class ChatMl final : public ChatFormat {
 public:
  const char* name() const override { return "chatml"; }
  std::string render(const std::vector<ChatMessage>& ms, bool add) const override {
    std::string s;
    for (const auto& m : ms) s += "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n";
    if (add) s += "<|im_start|>assistant\n";
    return s;
  }
};

// [INST] user [/INST]answer</s> (Llama 2, Mistral). The variants: a system message in
// <<SYS>> markers (else it opens the first user message), a BOS before each later turn, contents
// stripped, spaces around the answers.
class Llama2 final : public ChatFormat {
 public:
  Llama2(const char* name, bool sys, bool bos_inside, bool strip, bool spaces)
      : name_(name), sys_(sys), bos_inside_(bos_inside), strip_(strip), spaces_(spaces) {}
  const char* name() const override { return name_; }
  std::string render(const std::vector<ChatMessage>& ms, bool) const override {
    std::string s = "[INST] ";
    bool inside_turn = true;
    const std::string space = spaces_ ? " " : "";
    for (const auto& m : ms) {
      const std::string c = strip_ ? trim(m.content) : m.content;
      if (!inside_turn) {
        inside_turn = true;
        s += bos_inside_ ? "<s>[INST] " : "[INST] ";
      }
      if (m.role == "system") {
        s += sys_ ? "<<SYS>>\n" + c + "\n<</SYS>>\n\n" : c + "\n";
      } else if (m.role == "user") {
        s += c + " [/INST]";
      } else {
        s += space + c + space + "</s>";
        inside_turn = false;
      }
    }
    return s;
  }

 private:
  const char* name_;
  bool sys_, bos_inside_, strip_, spaces_;
};

// <|start_header_id|>role<|end_header_id|>\n\ncontent<|eot_id|> (Llama 3).
class Llama3 final : public ChatFormat {
 public:
  const char* name() const override { return "llama3"; }
  std::string render(const std::vector<ChatMessage>& ms, bool add) const override {
    std::string s;
    for (const auto& m : ms)
      s +=
          "<|start_header_id|>" + m.role + "<|end_header_id|>\n\n" + trim(m.content) + "<|eot_id|>";
    if (add) s += "<|start_header_id|>assistant<|end_header_id|>\n\n";
    return s;
  }
};

// <|role|>\ncontent<|end|>\n (Phi-3).
class Phi3 final : public ChatFormat {
 public:
  const char* name() const override { return "phi3"; }
  std::string render(const std::vector<ChatMessage>& ms, bool add) const override {
    std::string s;
    for (const auto& m : ms) s += "<|" + m.role + "|>\n" + trim(m.content) + "<|end|>\n";
    if (add) s += "<|assistant|>\n";
    return s;
  }
};

// <start_of_turn>user|model\n...<end_of_turn>\n (Gemma): no system role, so a system message
// opens the next user turn.
class Gemma final : public ChatFormat {
 public:
  const char* name() const override { return "gemma"; }
  std::string render(const std::vector<ChatMessage>& ms, bool add) const override {
    std::string s, system;
    for (const auto& m : ms) {
      if (m.role == "system") {
        system = trim(m.content);
        continue;
      }
      const std::string role = m.role == "assistant" ? "model" : m.role;
      s += "<start_of_turn>" + role + "\n";
      if (!system.empty() && role != "model") {
        s += system + "\n\n";
        system.clear();
      }
      s += trim(m.content) + "<end_of_turn>\n";
    }
    if (add) s += "<start_of_turn>model\n";
    return s;
  }
};

// ### Instruction:\n...\n### Response:\n...\n<|EOT|>\n (DeepSeek Coder).
class DeepSeek final : public ChatFormat {
 public:
  const char* name() const override { return "deepseek"; }
  std::string render(const std::vector<ChatMessage>& ms, bool add) const override {
    std::string s;
    for (const auto& m : ms) {
      if (m.role == "system")
        s += m.content;
      else if (m.role == "user")
        s += "### Instruction:\n" + m.content + "\n";
      else
        s += "### Response:\n" + m.content + "\n<|EOT|>\n";
    }
    if (add) s += "### Response:\n";
    return s;
  }
};

// role\ncontent</s>\n with <s> before every later message (AlphaMonarch).
class Monarch final : public ChatFormat {
 public:
  const char* name() const override { return "monarch"; }
  std::string render(const std::vector<ChatMessage>& ms, bool add) const override {
    std::string s;
    for (size_t i = 0; i < ms.size(); ++i)
      s += (i ? "<s>" : "") + ms[i].role + "\n" + ms[i].content + "</s>\n";
    if (add) s += "<s>assistant\n";
    return s;
  }
};

// USER: ...\nASSISTANT: ...</s>\n (Vicuna; the Orca variant marks the system message).
class Vicuna final : public ChatFormat {
 public:
  explicit Vicuna(bool orca) : orca_(orca) {}
  const char* name() const override { return orca_ ? "vicuna-orca" : "vicuna"; }
  std::string render(const std::vector<ChatMessage>& ms, bool add) const override {
    std::string s;
    for (const auto& m : ms) {
      if (m.role == "system")
        s += orca_ ? "SYSTEM: " + m.content + "\n" : m.content + "\n\n";
      else if (m.role == "user")
        s += "USER: " + m.content + "\n";
      else
        s += "ASSISTANT: " + m.content + "</s>\n";
    }
    if (add) s += "ASSISTANT:";
    return s;
  }

 private:
  bool orca_;
};

// <|START_OF_TURN_TOKEN|><|ROLE_TOKEN|>content<|END_OF_TURN_TOKEN|> (Command-R).
class CommandR final : public ChatFormat {
 public:
  const char* name() const override { return "command-r"; }
  std::string render(const std::vector<ChatMessage>& ms, bool add) const override {
    std::string s;
    for (const auto& m : ms) {
      const char* role = m.role == "system" ? "<|SYSTEM_TOKEN|>"
                         : m.role == "user" ? "<|USER_TOKEN|>"
                                            : "<|CHATBOT_TOKEN|>";
      s +=
          std::string("<|START_OF_TURN_TOKEN|>") + role + trim(m.content) + "<|END_OF_TURN_TOKEN|>";
    }
    if (add) s += "<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>";
    return s;
  }
};

using Maker = std::function<std::unique_ptr<ChatFormat>()>;

const std::vector<std::pair<std::string, Maker>>& registry() {
  static const std::vector<std::pair<std::string, Maker>> r = {
      {"chatml", [] { return std::make_unique<ChatMl>(); }},
      {"llama2", [] { return std::make_unique<Llama2>("llama2", false, false, false, false); }},
      {"llama2-sys",
       [] { return std::make_unique<Llama2>("llama2-sys", true, false, false, false); }},
      {"llama2-sys-bos",
       [] { return std::make_unique<Llama2>("llama2-sys-bos", true, true, false, true); }},
      {"llama2-sys-strip",
       [] { return std::make_unique<Llama2>("llama2-sys-strip", true, false, true, true); }},
      {"llama3", [] { return std::make_unique<Llama3>(); }},
      {"phi3", [] { return std::make_unique<Phi3>(); }},
      {"gemma", [] { return std::make_unique<Gemma>(); }},
      {"deepseek", [] { return std::make_unique<DeepSeek>(); }},
      {"monarch", [] { return std::make_unique<Monarch>(); }},
      {"vicuna", [] { return std::make_unique<Vicuna>(false); }},
      {"vicuna-orca", [] { return std::make_unique<Vicuna>(true); }},
      {"command-r", [] { return std::make_unique<CommandR>(); }},
  };
  return r;
}

}  // namespace

std::vector<std::string> chat_format_names() {
  std::vector<std::string> v;
  for (const auto& [n, _] : registry()) v.push_back(n);
  return v;
}

std::unique_ptr<ChatFormat> chat_format_by_name(const std::string& name) {
  for (const auto& [n, make] : registry()) {
    if (n == name) return make();
  }
  std::string all;
  for (const auto& n : chat_format_names()) all += (all.empty() ? "" : ", ") + n;
  fail("unknown chat template '{}': use one of {}", name, all);
}

std::unique_ptr<ChatFormat> detect_chat_format(const std::string& t) {
  if (t.empty()) return nullptr;
  if (has(t, "<|im_start|>")) return chat_format_by_name("chatml");
  if (has(t, "[INST]")) {
    const bool sys = has(t, "<<SYS>>"), bos_inside = has(t, "bos_token + '[INST]"),
               strip = has(t, "content.strip()");
    // Spaces around the answers where the template writes them (' ' + eos_token).
    const bool spaces = has(t, "' ' + eos_token");
    if (!sys) return std::make_unique<Llama2>("llama2", false, false, strip, spaces);
    return std::make_unique<Llama2>(bos_inside ? "llama2-sys-bos"
                                    : strip    ? "llama2-sys-strip"
                                               : "llama2-sys",
                                    true, bos_inside, strip, spaces);
  }
  if (has(t, "<|assistant|>") && has(t, "<|end|>")) return chat_format_by_name("phi3");
  if (has(t, "bos_token + message['role']")) return chat_format_by_name("monarch");
  if (has(t, "<start_of_turn>")) return chat_format_by_name("gemma");
  if (has(t, "### Instruction:") && has(t, "<|EOT|>")) return chat_format_by_name("deepseek");
  if (has(t, "USER: ") && has(t, "ASSISTANT: "))
    return chat_format_by_name(has(t, "SYSTEM: ") ? "vicuna-orca" : "vicuna");
  if (has(t, "<|START_OF_TURN_TOKEN|>") && has(t, "<|USER_TOKEN|>"))
    return chat_format_by_name("command-r");
  if (has(t, "<|start_header_id|>") && has(t, "<|end_header_id|>"))
    return chat_format_by_name("llama3");
  return nullptr;
}

}  // namespace dip
