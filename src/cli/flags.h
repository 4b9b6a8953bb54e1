// The flags the `dip` subcommands share (model, pruning, flash, simulated sweep) as CLI11
// options filling the library's option structs, and the flash run report as printed.
#pragma once
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <string>

#include "api/flash_setup.h"
#include "api/sim_sweep.h"
#include "api/sparsity_setup.h"
#include "util/threadpool.h"

namespace dip::cli {

struct ModelOpts {
  std::string model;
  int threads = available_cores();
  uint32_t ctx = 0;
};
void add_model_opts(CLI::App* c, ModelOpts& o, bool with_ctx);
// with_method false: sweep gives methods and densities its own way.
void add_sparsity_opts(CLI::App* c, SparsityOptions& o, bool with_method);
void add_flash_opts(CLI::App* c, FlashOptions& o);
void add_sim_sweep_opts(CLI::App* c, SimSweepOptions& o);

void print_flash_report(const nlohmann::json& r);

}  // namespace dip::cli
