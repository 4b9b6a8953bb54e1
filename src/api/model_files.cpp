#include "api/model_files.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <vector>

#include "model/model.h"
#include "util/error.h"
#include "util/progress.h"

namespace dip {

namespace {
// The folder of the running executable (not of the source tree it was built from).
std::filesystem::path executable_dir() {
  std::error_code ec;
  const std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::filesystem::path() : exe.parent_path();
}
}  // namespace

std::unique_ptr<Model> load_model(const std::string& path, const std::vector<LoraSpec>& adapters) {
  auto m = Model::load(resolve_model(path));
  for (const LoraSpec& a : adapters) m->add_lora(a);
  return m;
}

std::string resolve_model(const std::string& path) {
  if (!path.empty()) return path;
  if (const char* env = std::getenv("DIP_MODEL"); env && *env) return env;
  // A build tree (build/<preset>/dip next to the repository's models/), or an install prefix
  // (bin/dip with share/dip/models/).
  const std::filesystem::path dir = executable_dir();
  std::vector<std::filesystem::path> tried;
  for (const auto& p : {dir / ".." / ".." / "models" / "default.gguf",
                        dir / ".." / "share" / "dip" / "models" / "default.gguf"}) {
    std::error_code ec;
    if (std::filesystem::is_regular_file(p, ec)) return p.lexically_normal().string();
    tried.push_back(p.lexically_normal());
  }
  fail("no model given (-m), DIP_MODEL unset, and no default model at {} or {}", tried[0].string(),
       tried[1].string());
}

uint32_t pick_ctx(const Model& m, uint32_t want, size_t need) {
  const uint32_t trained = m.hparams().n_ctx_train;
  if (want) {
    if (trained && want > trained) {
      print_note(fmt::format(
          "warning: context {} is beyond the model's trained context of {}: quality will suffer",
          want, trained));
    }
    return want;
  }
  // Past the trained context a model's output degrades, and the attention's time grows with the
  // square of the length: that takes an explicit -c, never a silent raise.
  if (trained && need > trained) {
    fail(
        "the prompt and the tokens to generate need a context of {} tokens, beyond the model's "
        "trained context of {}: "
        "shorten the prompt or -n, or give -c {} to run beyond it anyway",
        need, trained, need);
  }
  return std::max<uint32_t>(std::min<uint32_t>(trained ? trained : 4096, 4096), uint32_t(need));
}

std::unique_ptr<ChatFormat> resolve_chat_format(const Model& m, const std::string& name,
                                                std::string* why) {
  if (name == "none") {
    if (why) *why = "plain continuation (--chat-template none)";
    return nullptr;
  }
  if (!name.empty()) return chat_format_by_name(name);
  const std::string& t = m.vocab().chat_template;
  auto f = detect_chat_format(t);
  if (!f && why) {
    *why = t.empty() ? "plain continuation (the model has no chat template)"
                     : "plain continuation (the model's chat template is not one dip recognises: "
                       "give --chat-template NAME)";
  }
  return f;
}

}  // namespace dip
