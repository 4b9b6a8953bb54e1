// Finding the model a run uses and the context it gets.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace dip {

class Model;

// The model used when none is given: $DIP_MODEL, else models/default.gguf of the build tree the
// executable runs from (build/<preset>/dip), else share/dip/models/default.gguf of its install
// prefix. A given path is returned as it is.
std::string resolve_model(const std::string& path);

// The context of a run that needs `need` tokens. `want` (an explicit size, 0: none) is honoured
// as given, with a warning beyond the trained context (too long a prompt is then an error of the
// session); by default the model's trained context (at most 4096), refused when `need` exceeds
// the trained context.
uint32_t pick_ctx(const Model& m, uint32_t want, size_t need);

}  // namespace dip
