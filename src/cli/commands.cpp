#include "cli/commands.h"

#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <thread>

#include "api/model_files.h"
#include "api/run.h"
#include "cli/flags.h"
#include "cli/terminal.h"
#include "convert/convert.h"
#include "convert/quant_mix.h"
#include "convert/synth_model.h"
#include "eval/perplexity.h"
#include "eval/sparse_eval.h"
#include "io/mapped_file.h"
#include "model/forward.h"
#include "model/model.h"
#include "sampling/sampler.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"
#include "util/error.h"
#include "util/output_file.h"
#include "util/progress.h"

namespace dip::cli {

namespace {

std::vector<int32_t> parse_ids(const std::string& s) {
  std::vector<int32_t> ids;
  std::string cur;
  for (char ch : s + ",") {
    if (ch == ',' || ch == ' ') {
      if (!cur.empty()) {
        char* end = nullptr;
        const long v = std::strtol(cur.c_str(), &end, 10);
        if (*end || v < 0 || v > INT32_MAX) fail("bad token id '{}'", cur);
        ids.push_back(int32_t(v));
        cur.clear();
      }
    } else {
      cur.push_back(ch);
    }
  }
  return ids;
}

}  // namespace

void add_generate(CLI::App& app) {
  auto* c = app.add_subcommand("generate", "generate text from a prompt");
  auto o = std::make_shared<ModelOpts>();
  auto sp = std::make_shared<SamplingParams>();
  auto prompt = std::make_shared<std::string>();
  auto n_predict = std::make_shared<int>(128);
  auto ignore_eos = std::make_shared<bool>(false);
  auto json = std::make_shared<bool>(false);
  auto batch = std::make_shared<uint32_t>(0);
  auto no_warmup = std::make_shared<bool>(false);
  auto so = std::make_shared<SparsityOptions>();
  auto fo = std::make_shared<FlashOptions>();
  add_model_opts(c, *o, true);
  add_sparsity_opts(c, *so, true);
  add_flash_opts(c, *fo);
  auto file = std::make_shared<std::string>();
  c->add_option("-p,--prompt", *prompt, "prompt (- : read it from stdin, as when stdin is a pipe)");
  c->add_option("-f,--file", *file, "read the prompt from this file");
  c->add_flag("--json", *json, "print one JSON object with the timings as the last line");
  c->add_option("-n,--n-predict", *n_predict, "tokens to generate")->check(CLI::Range(0, 1 << 20));
  add_sampling_opts(c, *sp);
  c->add_flag("--ignore-eos", *ignore_eos, "keep generating after end-of-generation tokens");
  c->add_option("-b,--batch-size", *batch,
                "tokens per internal batch of the prompt (default 512, 32 with --flash)")
      ->check(CLI::Range(1, 1 << 16));
  c->add_flag("--no-warmup", *no_warmup,
              "time the first prompt cold: no one-token run at load that maps the weights and "
              "makes their CPU layouts (dense runs warm up by default, as llama.cpp's tools do)");
  c->callback([=] {
    finish_sampling_opts(c, *sp);
    const std::string text = read_prompt(*prompt, *file);
    if (!so->trace.empty()) {
      check_output_path(so->trace,
                        {resolve_model(o->model), fo->image, so->thresholds, so->keep_file});
    }
    auto model = load_model(o->model, o->adapters());
    const std::vector<int32_t> toks = tokenize(model->vocab(), text, true, true);
    if (toks.empty()) fail("the prompt is empty after tokenization");
    const uint32_t n_ctx = pick_ctx(*model, o->ctx, toks.size() + size_t(*n_predict));
    Runner run(*model, {o->threads, *batch, *so, *fo}, n_ctx, 1);
    const double warmup_s = *no_warmup ? 0.0 : run.warm_up();
    const bool out_tty = isatty(1);  // text shown on a terminal loses its control characters
    const std::string shown_prompt = out_tty ? terminal_text(text) : text;
    std::fputs(shown_prompt.c_str(), stdout);
    std::fflush(stdout);
    const GenerateResult r = run.generate(
        toks, {*sp, *n_predict, *ignore_eos},
        [out_tty](int32_t, const std::string& piece) { return write_generated(piece, out_tty); });
    std::fputs("\n", stdout);
    nlohmann::json j = r.report;
    j["warmup_s"] = warmup_s;
    const int n_gen = int(r.tokens.size());
    std::fprintf(stderr,
                 "\nprompt: %zu tokens in %.3f s (%.2f tokens/s) | generation: %d tokens in %.3f s "
                 "(%.2f tokens/s) | threads %d | seed %llu\n",
                 toks.size(), r.prompt_s, double(toks.size()) / r.prompt_s, n_gen, r.gen_s,
                 n_gen > 1 ? double(n_gen - 1) / r.gen_s : 0.0, run.threads(),
                 (unsigned long long)sp->seed);
    if (run.mlp() && !run.flash()) {
      std::fprintf(stderr,
                   "%s: MLP density %.3f, MLP bytes/token %.1f MB of %.1f MB dense, modelled "
                   "cache hit rate %.3f\n",
                   method_name(run.sparsity_config().method), j["mlp_density"].get<double>(),
                   j["mlp_bytes_per_token"].get<double>() / 1e6,
                   j["dense_mlp_bytes_per_token"].get<double>() / 1e6, j["hit_rate"].get<double>());
    }
    if (run.flash()) print_flash_report(j["flash"]);
    if (*json) std::printf("%s\n", j.dump().c_str());
  });
}

void add_perplexity(CLI::App& app) {
  auto* c = app.add_subcommand("perplexity",
                               "perplexity of a text file (llama.cpp protocol), dense or pruned");
  auto o = std::make_shared<ModelOpts>();
  auto so = std::make_shared<SparsityOptions>();
  auto file = std::make_shared<std::string>();
  auto ctx = std::make_shared<uint32_t>(512);
  auto chunks = std::make_shared<size_t>(0);
  auto json = std::make_shared<bool>(false);
  auto batch = std::make_shared<uint32_t>(0);
  c->add_option("-m,--model", o->model, "GGUF model file");
  c->add_option("-t,--threads", o->threads, "threads")->check(CLI::Range(1, 1024));
  add_lora_opts(c, *o);
  c->add_option("-f,--file", *file, "text file (UTF-8)")->required();
  c->add_option("-c,--ctx,--ctx-size", *ctx, "window size in tokens")
      ->check(CLI::Range(4, 1 << 20));
  c->add_option("--chunks", *chunks, "evaluate at most this many windows (0: all)");
  c->add_flag("--json", *json, "print one JSON object as the last line");
  add_sparsity_opts(c, *so, true);
  auto fo = std::make_shared<FlashOptions>();
  add_flash_opts(c, *fo);
  c->add_option("-b,--batch-size", *batch,
                "tokens per internal batch (default 512, 32 with --flash)")
      ->check(CLI::Range(1, 1 << 16));
  c->callback([=] {
    const std::string text = read_text_file(*file);
    if (!is_valid_utf8(text)) fail("{}: not valid UTF-8 text", *file);
    if (!so->trace.empty()) {
      check_output_path(so->trace,
                        {resolve_model(o->model), fo->image, so->thresholds, so->keep_file, *file});
    }
    auto model = load_model(o->model, o->adapters());
    const std::vector<int32_t> toks = tokenize(model->vocab(), text, true, false);
    check_score_windows(toks.size(), *ctx, *chunks);
    Runner run(*model, {o->threads, *batch, *so, *fo}, *ctx, *ctx);
    const size_t n_win = *chunks ? std::min(*chunks, toks.size() / *ctx) : toks.size() / *ctx;
    std::fprintf(stderr, "perplexity: %zu tokens, %zu windows of %u, MLP %s\n", toks.size(), n_win,
                 *ctx, method_name(run.sparsity_config().method));
    const ScoreResult sr = run.score(toks, *chunks, [&](size_t done, size_t total, double ppl) {
      print_progress("perplexity", done, total, fmt::format("ppl {:.4f}", ppl));
    });
    end_progress();
    const PerplexityResult& r = sr.ppl;
    if (sr.against_dense) {
      const SparseEvalResult& e = sr.vs_dense;
      std::fprintf(stderr,
                   "dense PPL %.4f | KL to dense %.5f nats/token | top-1 agreement %.4f | MLP "
                   "density %.3f | modelled cache hit rate %.3f (up/gate %.3f, down %.3f)\n",
                   e.dense_ppl, e.kl, e.top1, e.stats.density(), e.stats.hit_rate(),
                   e.stats.up_hit_rate(), e.stats.down_hit_rate());
    }
    if (run.flash()) print_flash_report(sr.report["flash"]);
    std::printf("PPL = %.4f +/- %.5f\n", r.ppl, r.ppl_err);
    std::fprintf(stderr, "%zu tokens scored (%zu bytes): %.4f bits per byte, %.1f s\n", r.scored,
                 r.bytes, r.bpb, r.seconds);
    if (*json) std::printf("%s\n", sr.report.dump().c_str());
  });
}

void add_info(CLI::App& app) {
  auto* c = app.add_subcommand("info", "architecture, hyper-parameters and tensors of a model");
  auto path = std::make_shared<std::string>();
  c->add_option("model", *path, "GGUF model file");
  c->callback([=] {
    auto m = Model::load(resolve_model(*path));
    const HParams& hp = m->hparams();
    if (m->gguf()) {
      std::printf("file          %s (GGUF v%u, %zu bytes)\n", m->path().c_str(),
                  m->gguf()->version(), m->gguf()->file_size());
    } else {
      std::printf("folder        %s (Hugging Face %s, %zu safetensors files)\n", m->path().c_str(),
                  m->hf()->architecture.c_str(), m->hf()->shards.size());
    }
    std::printf("architecture  %s\n", hp.arch_name.c_str());
    std::printf("vocabulary    %u tokens (%s, pre-tokenizer '%s')\n", hp.n_vocab,
                m->vocab().model_name.c_str(), m->vocab().pre_name.c_str());
    std::printf("context       %u\n", hp.n_ctx_train);
    std::printf("embedding     %u\nlayers        %u\nfeed-forward  %u\n", hp.n_embd, hp.n_layer,
                hp.n_ff);
    std::printf("heads         %u (kv %u, head size %u)\n", hp.n_head, hp.n_head_kv, hp.head_dim);
    std::printf("rope          %s, base %g, %u dims, freq scale %g%s\n",
                hp.rope_neox ? "neox" : "normal", hp.rope_base, hp.n_rot, hp.rope_freq_scale,
                m->rope_freqs.empty() ? "" : ", frequency factors");
    std::printf("rms eps       %g\n", hp.rms_eps);
    std::printf("output        %s\n",
                m->output.data == m->tok_embd.data ? "tied to token_embd" : "output.weight");
    std::printf("\n%-32s %-6s %-22s %12s\n", "tensor", "type", "shape", "bytes");
    uint64_t total = 0;
    for (const auto& t : m->tensors()) {
      std::string shape;
      for (size_t i = 0; i < t.dims.size(); ++i)
        shape += fmt::format("{}{}", i ? " x " : "", t.dims[i]);
      std::printf("%-32s %-6s %-22s %12llu\n", t.name.c_str(), ggml_type_name(t.type_id).c_str(),
                  shape.c_str(), (unsigned long long)t.n_bytes);
      total += t.n_bytes;
    }
    const double mlp = double(m->mlp_bytes());
    std::printf(
        "\ntotal weights %llu bytes; MLP %llu bytes (%.1f%%); per generated token %llu bytes\n",
        (unsigned long long)total, (unsigned long long)m->mlp_bytes(), 100.0 * mlp / double(total),
        (unsigned long long)m->bytes_per_token());
  });
}

void add_tokenize(CLI::App& app) {
  auto* c = app.add_subcommand("tokenize", "print the token ids of a text, one line");
  auto model = std::make_shared<std::string>();
  auto prompt = std::make_shared<std::string>();
  auto file = std::make_shared<std::string>();
  auto no_special = std::make_shared<bool>(false);
  auto parse_special = std::make_shared<bool>(false);
  auto pieces = std::make_shared<bool>(false);
  c->add_option("-m,--model", *model, "GGUF model or vocabulary file");
  c->add_option("-p,--prompt", *prompt, "text");
  c->add_option("-f,--file", *file, "read the text from a file");
  c->add_flag("--no-bos,--no-special", *no_special, "do not add BOS/EOS");
  c->add_flag("--parse-special", *parse_special, "recognise control tokens written in the text");
  c->add_flag("--pieces", *pieces, "print each token as id:'text', one per line");
  c->callback([=] {
    std::string text = *prompt;
    if (!file->empty()) text = read_text_file(*file);
    auto m = Model::load(resolve_model(*model), true);
    const auto ids = tokenize(m->vocab(), text, !*no_special, *parse_special);
    if (*pieces) {
      for (int32_t id : ids) {
        const nlohmann::json piece = token_to_piece(m->vocab(), id, true);
        std::printf("%d:%s\n", id,
                    piece.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
      }
      return;
    }
    std::string line;
    for (size_t i = 0; i < ids.size(); ++i) line += fmt::format("{}{}", i ? " " : "", ids[i]);
    std::printf("%s\n", line.c_str());
  });
}

void add_eval(CLI::App& app) {
  auto* c = app.add_subcommand(
      "eval", "evaluate token ids: dump logits, greedy continuation (for differential tests)");
  auto o = std::make_shared<ModelOpts>();
  auto ids = std::make_shared<std::string>();
  auto dump = std::make_shared<std::string>();
  auto greedy = std::make_shared<int>(0);
  add_model_opts(c, *o, true);
  c->add_option("--tokens", *ids, "comma-separated token ids")->required();
  c->add_option("--dump-logits", *dump, "write float32 logits of every position to this file");
  c->add_option("--greedy", *greedy, "greedy continuation length")->check(CLI::Range(0, 1 << 16));
  c->callback([=] {
    if (!dump->empty()) check_output_path(*dump, {resolve_model(o->model)});
    auto model = load_model(o->model, o->adapters());
    const auto toks = parse_ids(*ids);
    Session s(*model, pick_ctx(*model, o->ctx, toks.size() + size_t(*greedy)), o->threads);
    std::vector<float> logits;
    s.eval(toks, true, logits);
    const size_t V = model->hparams().n_vocab;
    if (!dump->empty()) {
      write_file_atomically(
          *dump, std::string_view(reinterpret_cast<const char*>(logits.data()), logits.size() * 4));
    }
    nlohmann::json j = {{"n_vocab", V}, {"n_tokens", toks.size()}};
    std::vector<int32_t> gen;
    std::vector<float> last(logits.end() - long(V), logits.end());
    for (int i = 0; i < *greedy; ++i) {
      const int32_t next = int32_t(std::max_element(last.begin(), last.end()) - last.begin());
      gen.push_back(next);
      if (i + 1 == *greedy) break;
      const int32_t one[1] = {next};
      s.eval(one, false, last);
    }
    j["greedy"] = gen;
    std::printf("%s\n", j.dump().c_str());
  });
}

void add_convert(CLI::App& app) {
  auto* c = app.add_subcommand(
      "convert",
      "convert a GGUF file or Hugging Face folder to GGUF (or to a Hugging Face folder)");
  auto in = std::make_shared<std::string>();
  auto out = std::make_shared<std::string>();
  auto type = std::make_shared<std::string>("f16");
  auto to_hf = std::make_shared<bool>(false);
  auto shard_mib = std::make_shared<uint64_t>(16);
  auto flash = std::make_shared<bool>(false);
  auto fw = std::make_shared<FlashWriteOptions>();
  auto lo = std::make_shared<ModelOpts>();
  c->add_option("input", *in, "GGUF file or Hugging Face model folder")->required();
  c->add_option("output", *out,
                "output GGUF file (or folder with --to-hf, or flash image with --flash)")
      ->required();
  c->add_flag("--flash", *flash,
              "write the MLP weights as a flash image (column bundles for `--flash` runs)");
  c->add_option("--flash-align", fw->align,
                "flash image: column alignment in bytes (the device's direct-I/O block)");
  c->add_option("--layout-from", fw->layout_text,
                "flash image: place columns that DIP keeps together on this text side by side "
                "(fewer, larger reads)");
  c->add_option("--layout-density", fw->layout_density,
                "flash image: the MLP density of the masks the layout learns from (default 0.5)");
  c->add_option("--layout-tokens", fw->layout_tokens,
                "flash image: use at most this many tokens of the layout text (default 16384)");
  c->add_option(
      "--type", *type,
      "f32, f16, bf16, q8_0, q4_0, q2_k, q3_k, q4_k, q5_k, q6_k (every matrix in that type), or "
      "llama.cpp's mixes q2_k_s, q3_k_s, q3_k_m, q3_k_l, q4_k_s, q4_k_m, q5_k_s, q5_k_m "
      "(f32/f16/bf16 with --to-hf)");
  c->add_flag("--to-hf", *to_hf, "write a Hugging Face folder instead");
  add_lora_opts(c, *lo);  // merged into the weights written
  c->add_option("--shard-mib", *shard_mib, "largest safetensors shard with --to-hf (MiB)")
      ->check(CLI::Range(1, 1 << 20));
  c->callback([=] {
    const QuantMix mix = parse_quant_mix(*type);
    check_output_path(*out, {*in, fw->layout_text}, *to_hf);
    if (!*flash && !fw->layout_text.empty()) fail("--layout-from needs --flash");
    if (*flash && (!lo->lora.empty() || !lo->lora_scaled.empty())) {
      fail(
          "--flash takes the model as it is: merge adapters into a GGUF file first (dip convert "
          "--lora), then write its flash image");
    }
    auto m = load_model(*in, lo->adapters());
    if (*flash) {
      if (*to_hf) fail("--flash and --to-hf exclude each other");
      const CoactivationLayout lay = write_flash(*m, *out, *fw, [&](size_t done, size_t total) {
        print_progress("flash image", done, total, fmt::format("layer {}", done));
      });
      end_progress();
      if (!lay.up_after.empty()) {
        auto mean = [](const std::vector<double>& v) {
          double s = 0;
          for (double x : v) s += x;
          return s / double(v.size());
        };
        std::fprintf(
            stderr,
            "co-activation layout: a kept column's file neighbour is kept too for %.0f%% "
            "of up+gate bundles (model order %.0f%%) and %.0f%% of down columns (%.0f%%)\n",
            100 * mean(lay.up_after), 100 * mean(lay.up_before), 100 * mean(lay.down_after),
            100 * mean(lay.down_before));
      }
      const FlashImage img(*out);
      std::fprintf(stderr,
                   "wrote %s: %u layers, %s of columns (up+gate bundles %llu B, down columns %llu "
                   "B, aligned to %u B)\n",
                   out->c_str(), img.header().n_layer, format_bytes(img.column_bytes()).c_str(),
                   (unsigned long long)img.header().up_col_bytes,
                   (unsigned long long)img.header().down_col_bytes, img.header().align);
      return;
    }
    if (*to_hf) {
      if (mix.mixed()) fail("--to-hf writes f32, f16 or bf16, not {}", mix.name);
      export_hf(*m, *out, mix.base, *shard_mib << 20);
      std::fprintf(stderr, "wrote %s\n", out->c_str());
      return;
    }
    convert_to_gguf(*m, *out, mix, [&](size_t done, size_t total, const std::string& name) {
      print_progress("convert", done, total, name);
    });
    end_progress();
    std::fprintf(stderr, "wrote %s\n", out->c_str());
  });
}

void add_make_test_model(CLI::App& app) {
  auto* c = app.add_subcommand("make-test-model",
                               "write a GGUF model with random weights (tests, benchmarks, demo)");
  auto sp = std::make_shared<SynthSpec>();
  auto out = std::make_shared<std::string>();
  auto arch = std::make_shared<std::string>("llama");
  auto type = std::make_shared<std::string>("f32");
  c->add_option("output", *out, "output GGUF path")->required();
  c->add_option("--arch", *arch, "llama, qwen2, qwen3, phi3");
  c->add_option("--type", *type, "f32, f16, bf16, q8_0, q4_0, q2_k, q3_k, q4_k, q5_k, q6_k");
  c->add_option("--n-embd", sp->n_embd)->check(CLI::Range(8, 1 << 16));
  c->add_option("--n-layer", sp->n_layer)->check(CLI::Range(1, 1024));
  c->add_option("--n-ff", sp->n_ff)->check(CLI::Range(8, 1 << 18));
  c->add_option("--n-head", sp->n_head)->check(CLI::Range(1, 1024));
  c->add_option("--n-head-kv", sp->n_head_kv)->check(CLI::Range(1, 1024));
  c->add_option("--n-ctx", sp->n_ctx)->check(CLI::Range(16, 1 << 20));
  c->add_flag("--tied", sp->tied, "tie the output to the token embedding");
  c->add_flag("--rope-freqs", sp->rope_freqs, "add Llama-3 style RoPE frequency factors");
  c->add_option("--seed", sp->seed);
  c->add_option("--vocab", sp->vocab_from, "copy the tokenizer from this GGUF file");
  c->add_option("--pre", sp->pre, "pre-tokenizer of the built-in vocabulary");
  c->add_option("--logit-scale", sp->logit_scale, "std of the output logits");
  c->add_option("--rope-base", sp->rope_base, "RoPE frequency base");
  c->add_option("--n-merges", sp->n_merges, "merges of the built-in vocabulary")
      ->check(CLI::Range(0, 100000));
  c->add_flag(
      "--fast-weights", sp->fast_weights,
      "near-normal weights from sums of uniforms, several times faster (models of tens of GB)");
  auto progress = std::make_shared<bool>(false);
  c->add_flag("--progress", *progress, "a progress bar while the tensors are written");
  c->callback([=] {
    check_output_path(*out, {sp->vocab_from});
    sp->arch = parse_arch(*arch);
    sp->type = parse_tensor_type(*type);
    if (*progress) {
      write_synth_model(*sp, *out, [](size_t done, size_t total, const std::string& name) {
        print_progress("writing", done, total, name);
      });
      end_progress();
    } else {
      write_synth_model(*sp, *out);
    }
    std::fprintf(stderr, "wrote %s\n", out->c_str());
  });
}

}  // namespace dip::cli
