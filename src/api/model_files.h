// Finding the model a run uses and the context it gets.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "model/lora.h"
#include "tokenizer/chat_template.h"

namespace dip {

class Model;

// The model used when none is given: $DIP_MODEL, else models/default.gguf of the build tree the
// executable runs from (build/<preset>/dip), else share/dip/models/default.gguf of its install
// prefix. A given path is returned as it is.
std::string resolve_model(const std::string& path);

// Loads the model at resolve_model(path) and applies the adapters in the order given.
std::unique_ptr<Model> load_model(const std::string& path,
                                  const std::vector<LoraSpec>& adapters = {});

// The context of a run that needs `need` tokens. `want` (an explicit size, 0: none) is honoured
// as given, with a warning beyond the trained context (too long a prompt is then an error of the
// session); by default the model's trained context (at most 4096), refused when `need` exceeds
// the trained context.
uint32_t pick_ctx(const Model& m, uint32_t want, size_t need);

// The chat format of a run: `name` (--chat-template) if given ("none": plain text), else the one
// the model's template is recognised as. Null means plain continuation; *why then says so in a
// line for the user (no template, or one that is not recognised).
std::unique_ptr<ChatFormat> resolve_chat_format(const Model& m, const std::string& name,
                                                std::string* why);

}  // namespace dip
