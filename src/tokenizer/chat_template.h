// Chat templates: a conversation rendered into the prompt text a model was trained on. dip does
// not run Jinja; like llama.cpp it recognises the template a model ships (GGUF
// tokenizer.chat_template, or tokenizer_config.json's chat_template) by the markers it contains
// and renders the family's format in code, with the same output as llama.cpp's
// llama_chat_apply_template. One small type per family behind ChatFormat, picked by
// detection or by name (--chat-template).
#pragma once
#include <memory>
#include <string>
#include <vector>

namespace dip {

struct ChatMessage {
  std::string role;  // system, user, assistant
  std::string content;
};

class ChatFormat {
 public:
  virtual ~ChatFormat() = default;
  virtual const char* name() const = 0;
  // The conversation as prompt text; with add_assistant, followed by the opening of the
  // assistant's turn (the text the answer continues).
  virtual std::string render(const std::vector<ChatMessage>& messages,
                             bool add_assistant) const = 0;
};

// The family a template string belongs to; null when none is recognised.
std::unique_ptr<ChatFormat> detect_chat_format(const std::string& tmpl);
// A family by name (chatml, llama2, llama2-sys, llama2-sys-bos, llama2-sys-strip, llama3, phi3,
// gemma, deepseek, monarch, vicuna, vicuna-orca, command-r); an unknown name is an error listing
// them.
std::unique_ptr<ChatFormat> chat_format_by_name(const std::string& name);
std::vector<std::string> chat_format_names();

}  // namespace dip
