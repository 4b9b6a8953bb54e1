// `dip convert-lora` (an adapter to llama.cpp's GGUF adapter format) and `dip make-test-lora`
// (a random adapter for tests).
#include <cstdio>
#include <memory>

#include "api/model_files.h"
#include "cli/commands.h"
#include "cli/flags.h"
#include "convert/convert_lora.h"
#include "convert/synth_model.h"
#include "model/model.h"
#include "util/number_list.h"
#include "util/output_file.h"

namespace dip::cli {

void add_convert_lora(CLI::App& app) {
  auto* c = app.add_subcommand(
      "convert-lora", "write a LoRA adapter (PEFT folder or GGUF) as a llama.cpp GGUF adapter");
  auto in = std::make_shared<std::string>();
  auto out = std::make_shared<std::string>();
  auto model = std::make_shared<std::string>();
  auto type = std::make_shared<std::string>("f32");
  c->add_option("input", *in, "PEFT adapter folder or GGUF adapter")->required();
  c->add_option("output", *out, "GGUF adapter to write")->required();
  c->add_option("-m,--model", *model, "the base model the adapter was trained on");
  c->add_option("--type", *type, "f32, f16, bf16 or q8_0 (q8_0: the rank a multiple of 32)");
  c->callback([=] {
    check_output_path(*out, {*in, resolve_model(*model)});
    const TensorType t = parse_tensor_type(*type);
    auto base = load_model(*model);
    auto a = LoraAdapter::load({*in, 1.0f}, *base);
    write_lora_gguf(*base, *a, *out, t);
    std::fprintf(stderr, "wrote %s: %zu adapted tensors, alpha %g\n", out->c_str(),
                 a->tensors().size(), double(a->alpha()));
  });
}

void add_make_test_lora(CLI::App& app) {
  auto* c = app.add_subcommand("make-test-lora",
                               "write a LoRA adapter with random weights for a model (tests)");
  auto sp = std::make_shared<SynthLoraSpec>();
  auto out = std::make_shared<std::string>();
  auto model = std::make_shared<std::string>();
  auto type = std::make_shared<std::string>("f32");
  auto targets = std::make_shared<std::string>();
  c->add_option("output", *out, "GGUF adapter to write")->required();
  c->add_option("-m,--model", *model, "the base model");
  c->add_option("--rank", sp->rank)->check(CLI::Range(1, 4096));
  c->add_option("--alpha", sp->alpha);
  c->add_option("--b-std", sp->b_std, "standard deviation of B's entries");
  c->add_option("--seed", sp->seed);
  c->add_option("--type", *type, "f32, f16, bf16 or q8_0 (q8_0: the rank a multiple of 32)");
  c->add_option("--targets", *targets,
                "comma-separated weights to adapt (default: attn_q,attn_k,attn_v,attn_qkv,"
                "attn_output,ffn_gate,ffn_up,ffn_down)");
  c->callback([=] {
    check_output_path(*out, {resolve_model(*model)});
    sp->type = parse_tensor_type(*type);
    if (!targets->empty()) sp->targets = split_commas(*targets);
    auto base = load_model(*model);
    write_synth_lora(*base, *sp, *out);
  });
}

}  // namespace dip::cli
