// `dip simulate`: the paper's hardware model (sim/hardware_model.h) for one device and model
// shape, over a mask trace recorded by the engine or synthetic masks.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "sim/hardware_model.h"

namespace dip {

// Unset optionals: the device preset's values.
struct SimulateOptions {
  std::string shape = "default", model, device = "a18", policy = "lru", trace, split = "uniform";
  double bits = 16, density = 1.0, skew = 1.0;
  std::optional<double> gamma;
  std::optional<double> dram_bw, flash_bw, dram_size, flash_iops, flash_latency_us, compute_gflops,
      request_cpu_us;  // unset: the preset's
  uint32_t prompt = 128, gen = 128, warm_tokens = 0, bundle = 1, flash_qd = 0;
  bool compute_serial = false, requests_serial = false;
  // A device measured by `dip flash-probe`: flash bandwidth, request rate (their costs added:
  // requests serial) and host CPU per request from the file; the flags above override it.
  std::string flash_probe;
  std::string flash_gap =
      "0";  // reads joined across gaps of this size, as the engine's; auto: the probe's
  uint64_t seed = 1;
  bool sequential = false, json = false;
};

struct SimulateResult {
  SimConfig cfg;
  size_t tokens = 0;   // masks simulated
  std::string source;  // "trace FILE" or the synthetic masks' description
  SimResult r;
  double seconds = 0;
  nlohmann::json json;  // as `dip simulate --json` prints it
};

SimulateResult simulate_device(const SimulateOptions& o);

}  // namespace dip
