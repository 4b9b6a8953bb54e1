// Calibration of magnitude thresholds: per layer, the distribution of |x| (MLP input), |h|
// (down-projection input) and |silu(gate x)| over a calibration text, stored as thresholds on a
// grid of keep fractions: threshold(keep) is the (1 - keep) quantile. Used by DIP's threshold
// mode, CATS and TEAL. The file names the model it was made for; another model is an error.
#pragma once
#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace dip {

class Model;

enum class Signal : int { kX = 0, kH = 1, kGate = 2 };

// Log-spaced histogram of magnitudes (zeros counted in the lowest bin).
class MagnitudeHistogram {
 public:
  MagnitudeHistogram();
  void add(const float* v, size_t n);
  uint64_t count() const { return total_; }
  // The value t such that a fraction `keep` of the samples has magnitude >= t.
  float threshold_for_keep(double keep) const;

 private:
  std::vector<uint64_t> bins_;
  uint64_t total_ = 0;
};

struct Thresholds {
  std::string model_id;
  uint32_t n_layer = 0, n_embd = 0, n_ff = 0;
  uint64_t tokens = 0;
  std::vector<double> keep_grid;  // ascending, last = 1
  // [layer][signal][grid index]
  std::vector<std::array<std::vector<float>, 3>> table;

  // Threshold for keep fraction `keep` of `signal` in `layer` (linear in keep between grid points).
  float at(uint32_t layer, Signal signal, double keep) const;
};

// A short fingerprint of a model's shape and a few of its weights (norm vectors).
std::string model_fingerprint(const Model& m);

// Runs the model densely over `tokens` (windows of n_ctx) and builds the thresholds table;
// progress(done, total) after each window.
Thresholds calibrate(const Model& m, const std::vector<int32_t>& tokens, uint32_t n_ctx,
                     int threads, const std::function<void(size_t, size_t)>& progress);

void save_thresholds(const Thresholds& t, const std::string& path);
// Loads and checks that the file was made for model m (clear error otherwise).
Thresholds load_thresholds(const std::string& path, const Model& m);

}  // namespace dip
