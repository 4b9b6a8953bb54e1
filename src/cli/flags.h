// The flags the `dip` subcommands share (model, pruning, flash, simulated sweep) as CLI11
// options filling the library's option structs, and the flash run report as printed.
#pragma once
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <string>

#include "api/flash_setup.h"
#include "api/sim_sweep.h"
#include "api/sparsity_setup.h"
#include "model/lora.h"
#include "sampling/sampler.h"
#include "util/threadpool.h"

namespace dip::cli {

struct ModelOpts {
  std::string model;
  int threads = available_cores();
  uint32_t ctx = 0;
  std::vector<std::string> lora;                                 // --lora FILE
  std::vector<std::pair<std::string, std::string>> lora_scaled;  // --lora-scaled FILE SCALE
  // The adapters in the order of the command line's lists (--lora first).
  std::vector<LoraSpec> adapters() const;
};
void add_model_opts(CLI::App* c, ModelOpts& o, bool with_ctx);
// --lora FILE and --lora-scaled FILE SCALE (both repeatable).
void add_lora_opts(CLI::App* c, ModelOpts& o);
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
