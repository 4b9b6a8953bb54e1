// The maskers the registry knows (one function per masker_<name>.cpp).
#pragma once
#include "sparsity/masker.h"

namespace dip {

const Masker& dense_masker();
const Masker& dip_masker();
const Masker& dip_ca_masker();
const Masker& glu_masker();
const Masker& cats_masker();
const Masker& teal_masker();

}  // namespace dip
