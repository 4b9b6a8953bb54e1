#include <array>

#include "sparsity/masker_list.h"
#include "util/error.h"

namespace dip {

namespace {
// Every method, in the order help texts list them; a new method is one more line here.
const std::array<const Masker*, 6>& all_maskers() {
  static const std::array<const Masker*, 6> maskers = {
      &dense_masker(), &dip_masker(),  &dip_ca_masker(),
      &glu_masker(),   &cats_masker(), &teal_masker(),
  };
  return maskers;
}
}  // namespace

const Masker& masker_for(Method m) {
  for (const Masker* k : all_maskers()) {
    if (k->id() == m) return *k;
  }
  fail("unknown method id {}", uint32_t(m));
}

const Masker& masker_named(const std::string& name) {
  for (const Masker* k : all_maskers()) {
    if (name == k->name()) return *k;
  }
  fail("unknown method '{}' ({})", name, masker_names());
}

std::string masker_names() {
  std::string s;
  for (const Masker* k : all_maskers()) s += (s.empty() ? "" : ", ") + std::string(k->name());
  return s;
}

}  // namespace dip
