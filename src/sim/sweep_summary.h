// The paper's headline comparisons over a simulated sweep (`dip sweep --simulate`): for each
// flash speed, pruning method and accuracy budget (largest relative perplexity increase allowed),
// against dense streaming
//   - the throughput gain at equal memory: at each DRAM size, the method's best tokens/s among its
//     points within the budget over dense streaming's tokens/s at that size;
//   - the memory reduction at equal throughput: for dense streaming at DRAM size D, the smallest
//     DRAM size D' at which the method (within the budget) reaches dense's tokens/s, by linear
//     interpolation of its best tokens/s between the swept sizes; reduction = 1 - D'/D.
#pragma once
#include <string>
#include <vector>

namespace dip {

// One simulated point: a method's configuration at one DRAM size and flash speed.
struct SimPoint {
  std::string method;  // "dense" is the baseline
  std::string label;   // e.g. "dip-ca 0.5 gamma 0.2"
  double ppl_increase_pct = 0;
  double dram_size = 0, flash_bw = 0;  // bytes, bytes/s
  double tokens_per_s = 0;
};

struct Comparison {
  std::string method;
  double flash_bw = 0, max_ppl_increase_pct = 0;
  double dram_size = 0;  // dense streaming's DRAM size D
  double dense_tps = 0;
  // Equal memory: the best point within the budget at D (tps 0 and an empty label: none).
  double method_tps = 0, gain = 0;
  std::string best_label;
  // Equal throughput: D' (0: not reached within the swept sizes), and whether D' is only an
  // upper bound (the method already reaches dense's tokens/s at the smallest swept size).
  double equal_tps_dram = 0, memory_reduction = 0;
  bool reduction_is_lower_bound = false;
};

// One comparison per flash speed x method (other than dense) x budget x DRAM size, in that order.
// Fails when a (flash speed, DRAM size) of the grid has no dense point.
std::vector<Comparison> compare_to_dense(const std::vector<SimPoint>& points,
                                         const std::vector<double>& budgets_pct);

}  // namespace dip
