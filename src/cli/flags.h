// The flags the `dip` subcommands share (model, pruning, flash, simulated sweep) as CLI11
// options filling the library's option structs, and the flash run report as printed.
#pragma once
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <string>

#include "api/flash_setup.h"
#include "api/sim_sweep.h"
#include "api/sparsity_setup.h"
#include "sampling/sampler.h"
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

// Sampling flags (--temp, --top-k, ..., -s/--seed). Without --seed, finish_sampling_opts draws
// a random seed, as llama.cpp does, so that sampled text differs from run to run.
void add_sampling_opts(CLI::App* c, SamplingParams& sp);
void finish_sampling_opts(const CLI::App* c, SamplingParams& sp);

// The prompt of generate/chat-like commands: -p TEXT, -p - (stdin), -f FILE, or stdin when it is
// not a terminal and neither was given.
std::string read_prompt(const std::string& prompt, const std::string& file);

void print_flash_report(const nlohmann::json& r);

}  // namespace dip::cli
