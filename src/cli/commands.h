// The `dip` subcommands. Each returns the process exit code; errors are thrown as dip::Error.
#pragma once
#include <CLI/CLI.hpp>

namespace dip::cli {

void add_generate(CLI::App& app);
void add_chat(CLI::App& app);
void add_serve(CLI::App& app);
void add_perplexity(CLI::App& app);
void add_info(CLI::App& app);
void add_tokenize(CLI::App& app);
void add_eval(CLI::App& app);
void add_make_test_model(CLI::App& app);
void add_convert(CLI::App& app);
void add_convert_lora(CLI::App& app);
void add_make_test_lora(CLI::App& app);
void add_calibrate(CLI::App& app);
void add_sweep(CLI::App& app);
void add_simulate(CLI::App& app);
void add_flash_probe(CLI::App& app);

}  // namespace dip::cli
