// `dip sweep --flash IMAGE`: DRAM budgets x methods with the MLP really on flash. Per budget,
// dense streaming first (the baseline and the reference perplexity), then every point: perplexity,
// its increase over dense streaming, tokens/s of the evaluation, flash bytes and requests per
// token, hit rates, the time split and the peak RSS against the budget. Writes flash_sweep.csv
// and flash_sweep.json.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "api/flash_setup.h"
#include "api/sparsity_setup.h"
#include "api/sweep.h"

namespace dip {

// budgets: "25%" entries are MLP cache shares (as --mlp-cache), others DRAM budgets (as
// --dram-budget).
void run_flash_sweep(const Model& m, const std::vector<int32_t>& toks,
                     const std::vector<SweepPoint>& points, const std::vector<std::string>& budgets,
                     const FlashOptions& fo, const SparsityOptions& so, uint32_t ctx, size_t chunks,
                     int threads, uint64_t overhead_rss, const std::string& out);

}  // namespace dip
