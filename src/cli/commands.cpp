#include "cli/commands.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <thread>

#include "cli/common.h"
#include "cli/flash_opts.h"
#include "cli/sparsity_opts.h"
#include "convert/convert.h"
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
  auto so = std::make_shared<SparsityOpts>();
  auto fo = std::make_shared<FlashOpts>();
  add_model_opts(c, *o, true);
  add_sparsity_opts(c, *so, true);
  add_flash_opts(c, *fo);
  c->add_option("-p,--prompt", *prompt, "prompt")->required();
  c->add_flag("--json", *json, "print one JSON object with the timings as the last line");
  c->add_option("-n,--n-predict", *n_predict, "tokens to generate")->check(CLI::Range(0, 1 << 20));
  c->add_option("--temp", sp->temperature, "temperature (0 = greedy)");
  c->add_option("--top-k", sp->top_k, "top-k (<= 0: off)");
  c->add_option("--top-p", sp->top_p, "top-p (1: off)");
  c->add_option("--min-p", sp->min_p, "min-p (0: off)");
  c->add_option("--repeat-penalty", sp->repeat_penalty, "repetition penalty (1: off)");
  c->add_option("--repeat-last-n", sp->repeat_last_n, "tokens the penalty looks back");
  c->add_option("-s,--seed", sp->seed, "random seed");
  c->add_flag("--ignore-eos", *ignore_eos, "keep generating after end-of-generation tokens");
  c->callback([=] {
    validate(*sp);
    if (!so->trace.empty()) {
      check_output_path(so->trace,
                        {resolve_model(o->model), fo->image, so->thresholds, so->keep_file});
    }
    auto model = Model::load(resolve_model(o->model));
    const uint64_t overhead_rss = current_rss();  // before any weight is touched
    const Vocab& vocab = model->vocab();
    const std::vector<int32_t> toks = tokenize(vocab, *prompt, true, true);
    if (toks.empty()) fail("the prompt is empty after tokenization");
    const uint32_t n_ctx = pick_ctx(*model, o->ctx, toks.size() + size_t(*n_predict));
    auto flash = make_flash_run(*model, *fo, n_ctx, 1, o->threads, overhead_rss);
    Session s(*model, n_ctx, o->threads);
    if (flash) s.set_max_batch(kFlashMaxBatch);
    Sparsity sparsity = make_sparsity(*model, *so, flash ? flash->columns.get() : nullptr);
    if (sparsity.mlp) {
      s.set_mlp_hook(sparsity.mlp.get());
      sparsity.mlp->release_row_major_weights();
    }
    Sampler sampler(*sp);
    for (int32_t t : toks) sampler.accept(t);
    std::fputs(prompt->c_str(), stdout);
    std::fflush(stdout);
    std::vector<float> logits;
    auto t0 = Clock::now();
    s.eval(toks, false, logits);
    const double t_prompt = seconds_since(t0);
    if (flash) {  // the report covers generation: the prompt has warmed the caches
      sparsity.mlp->reset_stats();
      flash->columns->reset_stats();
    }
    t0 = Clock::now();
    int n_gen = 0;
    const size_t V = model->hparams().n_vocab;
    for (; n_gen < *n_predict; ++n_gen) {
      const int32_t next = sampler.sample(logits.data(), V);
      if (!*ignore_eos && vocab.is_eog(next)) break;
      sampler.accept(next);
      const std::string piece = token_to_piece(vocab, next, false);
      std::fwrite(piece.data(), 1, piece.size(), stdout);
      if (std::fflush(stdout) != 0 && errno == EPIPE) {  // the reader has gone: a normal end
        ++n_gen;
        break;
      }
      if (n_gen + 1 == *n_predict) {
        ++n_gen;
        break;
      }
      const int32_t one[1] = {next};
      s.eval(one, false, logits);
    }
    const double t_gen = seconds_since(t0);
    std::fputs("\n", stdout);
    std::fprintf(stderr,
                 "\nprompt: %zu tokens in %.3f s (%.2f tokens/s) | generation: %d tokens in %.3f s "
                 "(%.2f tokens/s) | threads %d\n",
                 toks.size(), t_prompt, double(toks.size()) / t_prompt, n_gen, t_gen,
                 n_gen > 1 ? double(n_gen - 1) / t_gen : 0.0, o->threads);
    // MLP bytes per token: all three matrices dense, or what the pruned run read.
    uint64_t bytes_per_token = model->bytes_per_token();
    if (sparsity.mlp) {
      const MlpStats& st = sparsity.mlp->stats();
      const double tokens = double(st.evals) / model->hparams().n_layer;
      const double mlp_bytes = tokens > 0 ? double(st.bytes) / tokens : 0.0;
      bytes_per_token =
          bytes_per_token - sparsity.mlp->dense_bytes_per_token() + uint64_t(mlp_bytes);
      if (!flash) {
        std::fprintf(stderr,
                     "%s: MLP density %.3f, MLP bytes/token %.1f MB of %.1f MB dense, modelled "
                     "cache hit rate %.3f\n",
                     method_name(sparsity.cfg.method), st.density(), mlp_bytes / 1e6,
                     double(sparsity.mlp->dense_bytes_per_token()) / 1e6, st.hit_rate());
      }
      sparsity.mlp->finish_trace();
    }
    if (flash)
      print_flash_report(
          flash_report(*flash, *sparsity.mlp, size_t(std::max(0, n_gen - 1)), t_gen));
    if (*json) {
      // gen_steps: one-token evaluations (the first generated token comes from the prompt).
      nlohmann::json j = {{"prompt_tokens", toks.size()},
                          {"prompt_s", t_prompt},
                          {"gen_tokens", n_gen},
                          {"gen_steps", std::max(0, n_gen - 1)},
                          {"gen_s", t_gen},
                          {"threads", o->threads},
                          {"bytes_per_token", bytes_per_token},
                          {"method", method_name(sparsity.cfg.method)}};
      if (sparsity.mlp) {
        j["mlp_density"] = sparsity.mlp->stats().density();
        j["hit_rate"] = sparsity.mlp->stats().hit_rate();
      }
      if (flash)
        j["flash"] = flash_report(*flash, *sparsity.mlp, size_t(std::max(0, n_gen - 1)), t_gen);
      std::printf("%s\n", j.dump().c_str());
    }
  });
}

void add_perplexity(CLI::App& app) {
  auto* c = app.add_subcommand("perplexity",
                               "perplexity of a text file (llama.cpp protocol), dense or pruned");
  auto o = std::make_shared<ModelOpts>();
  auto so = std::make_shared<SparsityOpts>();
  auto file = std::make_shared<std::string>();
  auto ctx = std::make_shared<uint32_t>(512);
  auto chunks = std::make_shared<size_t>(0);
  auto json = std::make_shared<bool>(false);
  c->add_option("-m,--model", o->model, "GGUF model file");
  c->add_option("-t,--threads", o->threads, "threads")->check(CLI::Range(1, 1024));
  c->add_option("-f,--file", *file, "text file (UTF-8)")->required();
  c->add_option("-c,--ctx,--ctx-size", *ctx, "window size in tokens")
      ->check(CLI::Range(4, 1 << 20));
  c->add_option("--chunks", *chunks, "evaluate at most this many windows (0: all)");
  c->add_flag("--json", *json, "print one JSON object as the last line");
  add_sparsity_opts(c, *so, true);
  auto fo = std::make_shared<FlashOpts>();
  add_flash_opts(c, *fo);
  c->callback([=] {
    const std::string text = read_text_file(*file);
    if (!is_valid_utf8(text)) fail("{}: not valid UTF-8 text", *file);
    if (!so->trace.empty()) {
      check_output_path(so->trace,
                        {resolve_model(o->model), fo->image, so->thresholds, so->keep_file, *file});
    }
    auto model = Model::load(resolve_model(o->model));
    const std::vector<int32_t> toks = tokenize(model->vocab(), text, true, false);
    const uint64_t overhead_rss =
        current_rss();  // before any weight is touched (the text and its tokens in it)
    auto flash = make_flash_run(*model, *fo, *ctx, *ctx, o->threads, overhead_rss);
    Sparsity sparsity = make_sparsity(*model, *so, flash ? flash->columns.get() : nullptr);
    Session s(*model, *ctx, o->threads);
    if (flash) s.set_max_batch(kFlashMaxBatch);
    if (*chunks == 1) {
      fail("--chunks 1: perplexity needs at least 2 windows of {} tokens (the text has {} tokens)",
           *ctx, toks.size());
    }
    const size_t n_win = *chunks ? std::min(*chunks, toks.size() / *ctx) : toks.size() / *ctx;
    std::fprintf(stderr, "perplexity: %zu tokens, %zu windows of %u, MLP %s\n", toks.size(), n_win,
                 *ctx, method_name(sparsity.cfg.method));
    auto progress = [&](size_t done, size_t total, double ppl) {
      print_progress("perplexity", done, total, fmt::format("ppl {:.4f}", ppl));
    };
    nlohmann::json j;
    PerplexityResult r;
    if (!sparsity.mlp || flash) {
      // Flash runs: no dense reference (it would read the whole MLP outside the budget).
      if (sparsity.mlp) s.set_mlp_hook(sparsity.mlp.get());
      std::vector<int32_t> used(toks.begin(),
                                toks.begin() + std::min(toks.size(), n_win * size_t(*ctx)));
      r = perplexity(s, *chunks ? used : toks, *ctx, progress);
      end_progress();
      if (flash) {
        sparsity.mlp->finish_trace();
        j = {{"method", method_name(sparsity.cfg.method)},
             {"flash", flash_report(*flash, *sparsity.mlp, r.chunks * *ctx, r.seconds)}};
        print_flash_report(j["flash"]);
      }
    } else {
      DenseReference ref;
      const SparseEvalResult e =
          evaluate_sparse(s, *sparsity.mlp, toks, *ctx, *chunks, ref, progress);
      end_progress();
      sparsity.mlp->finish_trace();
      r = e.ppl;
      std::fprintf(stderr,
                   "dense PPL %.4f | KL to dense %.5f nats/token | top-1 agreement %.4f | MLP "
                   "density %.3f | "
                   "modelled cache hit rate %.3f (up/gate %.3f, down %.3f)\n",
                   e.dense_ppl, e.kl, e.top1, e.stats.density(), e.stats.hit_rate(),
                   e.stats.up_hit_rate(), e.stats.down_hit_rate());
      j = {{"method", method_name(sparsity.cfg.method)},
           {"mlp_density", e.stats.density()},
           {"dense_ppl", e.dense_ppl},
           {"kl", e.kl},
           {"top1", e.top1},
           {"hit_rate", e.stats.hit_rate()},
           {"up_hit_rate", e.stats.up_hit_rate()},
           {"down_hit_rate", e.stats.down_hit_rate()},
           {"gamma", sparsity.cfg.gamma},
           {"cache_fraction", sparsity.cfg.cache_fraction}};
    }
    std::printf("PPL = %.4f +/- %.5f\n", r.ppl, r.ppl_err);
    std::fprintf(stderr, "%zu tokens scored (%zu bytes): %.4f bits per byte, %.1f s\n", r.scored,
                 r.bytes, r.bpb, r.seconds);
    if (*json) {
      j.update({{"ppl", r.ppl},
                {"ppl_err", r.ppl_err},
                {"nll", r.nll},
                {"tokens", r.tokens},
                {"scored", r.scored},
                {"bytes", r.bytes},
                {"bpb", r.bpb},
                {"chunks", r.chunks},
                {"ctx", *ctx},
                {"seconds", r.seconds},
                {"tokens_per_second", double(r.chunks * *ctx) / r.seconds}});
      std::printf("%s\n", j.dump().c_str());
    }
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
  c->add_option("-m,--model", *model, "GGUF model or vocabulary file");
  c->add_option("-p,--prompt", *prompt, "text");
  c->add_option("-f,--file", *file, "read the text from a file");
  c->add_flag("--no-bos,--no-special", *no_special, "do not add BOS/EOS");
  c->add_flag("--parse-special", *parse_special, "recognise control tokens written in the text");
  c->callback([=] {
    std::string text = *prompt;
    if (!file->empty()) text = read_text_file(*file);
    auto m = Model::load(resolve_model(*model), true);
    const auto ids = tokenize(m->vocab(), text, !*no_special, *parse_special);
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
    auto model = Model::load(resolve_model(o->model));
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
  auto align = std::make_shared<uint32_t>(512);
  c->add_option("input", *in, "GGUF file or Hugging Face model folder")->required();
  c->add_option("output", *out,
                "output GGUF file (or folder with --to-hf, or flash image with --flash)")
      ->required();
  c->add_flag("--flash", *flash,
              "write the MLP weights as a flash image (column bundles for `--flash` runs)");
  c->add_option("--flash-align", *align,
                "flash image: column alignment in bytes (the device's direct-I/O block)");
  c->add_option("--type", *type, "f32, f16, bf16, q8_0, q4_0 (f32/f16/bf16 with --to-hf)");
  c->add_flag("--to-hf", *to_hf, "write a Hugging Face folder instead");
  c->add_option("--shard-mib", *shard_mib, "largest safetensors shard with --to-hf (MiB)")
      ->check(CLI::Range(1, 1 << 20));
  c->callback([=] {
    const TensorType t = parse_tensor_type(*type);
    check_output_path(*out, {*in}, *to_hf);
    auto m = Model::load(*in);
    if (*flash) {
      if (*to_hf) fail("--flash and --to-hf exclude each other");
      write_flash_image(*m, *out, *align, [&](size_t done, size_t total) {
        print_progress("flash image", done, total, fmt::format("layer {}", done));
      });
      end_progress();
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
      export_hf(*m, *out, t, *shard_mib << 20);
      std::fprintf(stderr, "wrote %s\n", out->c_str());
      return;
    }
    const bool tty = isatty(2);
    convert_to_gguf(*m, *out, t, [&](size_t done, size_t total, const std::string& name) {
      const int width = 30, filled = int(width * done / total);
      if (tty) {
        std::fprintf(stderr, "\r[%s%s] %zu/%zu %-40s", std::string(filled, '#').c_str(),
                     std::string(width - filled, '.').c_str(), done, total, name.c_str());
      } else if (done == total || done % 20 == 0) {
        std::fprintf(stderr, "[%zu/%zu] %s\n", done, total, name.c_str());
      }
    });
    if (tty) std::fputs("\n", stderr);
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
  c->add_option("--type", *type, "f32, f16, bf16, q8_0, q4_0");
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
