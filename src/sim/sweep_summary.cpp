#include "sim/sweep_summary.h"

#include <algorithm>
#include <map>
#include <set>

#include "util/error.h"

namespace dip {

std::vector<Comparison> compare_to_dense(const std::vector<SimPoint>& points,
                                         const std::vector<double>& budgets_pct) {
  std::set<double> bws, drams;
  std::vector<std::string> methods;
  for (const SimPoint& p : points) {
    bws.insert(p.flash_bw);
    drams.insert(p.dram_size);
    if (p.method != "dense" &&
        std::find(methods.begin(), methods.end(), p.method) == methods.end()) {
      methods.push_back(p.method);
    }
  }
  const std::vector<double> sizes(drams.begin(), drams.end());
  std::vector<Comparison> out;
  for (double bw : bws) {
    std::map<double, double> dense;  // DRAM size -> tokens/s
    for (const SimPoint& p : points) {
      if (p.method == "dense" && p.flash_bw == bw) dense[p.dram_size] = p.tokens_per_s;
    }
    for (double d : sizes) {
      if (!dense.count(d))
        fail("simulated sweep: no dense streaming point at {:.0f} bytes of DRAM", d);
    }
    for (const std::string& m : methods) {
      for (double budget : budgets_pct) {
        // The method's best point within the budget at each swept size.
        std::vector<double> best(sizes.size(), 0.0);
        std::vector<std::string> label(sizes.size());
        for (const SimPoint& p : points) {
          if (p.method != m || p.flash_bw != bw || !(p.ppl_increase_pct <= budget)) continue;
          const size_t k =
              size_t(std::lower_bound(sizes.begin(), sizes.end(), p.dram_size) - sizes.begin());
          if (p.tokens_per_s > best[k]) {
            best[k] = p.tokens_per_s;
            label[k] = p.label;
          }
        }
        for (size_t k = 0; k < sizes.size(); ++k) {
          Comparison c;
          c.method = m;
          c.flash_bw = bw;
          c.max_ppl_increase_pct = budget;
          c.dram_size = sizes[k];
          c.dense_tps = dense[sizes[k]];
          c.method_tps = best[k];
          c.best_label = label[k];
          c.gain = best[k] / c.dense_tps;
          // The smallest size reaching dense's tokens/s: interpolated between the first size that
          // reaches it and the one before.
          for (size_t j = 0; j < sizes.size(); ++j) {
            if (best[j] < c.dense_tps) continue;
            if (j == 0) {
              c.equal_tps_dram = sizes[0];
              c.reduction_is_lower_bound = true;
            } else {
              const double f = best[j] > best[j - 1]
                                   ? (c.dense_tps - best[j - 1]) / (best[j] - best[j - 1])
                                   : 1.0;
              c.equal_tps_dram = sizes[j - 1] + std::clamp(f, 0.0, 1.0) * (sizes[j] - sizes[j - 1]);
            }
            c.memory_reduction = 1.0 - c.equal_tps_dram / sizes[k];
            break;
          }
          out.push_back(c);
        }
      }
    }
  }
  return out;
}

}  // namespace dip
