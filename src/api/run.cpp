#include "api/run.h"

#include <algorithm>

#include "flash/dram_budget.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"
#include "util/clock.h"
#include "util/error.h"
#include "util/threadpool.h"

namespace dip {

Runner::Runner(const Model& m, const RunOptions& o, uint32_t n_ctx, uint32_t n_logits)
    : model_(m), threads_(o.threads > 0 ? o.threads : available_cores()), n_ctx_(n_ctx) {
  // Before any weight is touched: the code, libraries, vocabulary and text the budget must hold.
  const uint64_t overhead_rss = current_rss();
  flash_ = make_flash_run(m, o.flash, n_ctx, n_logits, threads_, overhead_rss, o.batch);
  session_ = std::make_unique<Session>(m, n_ctx, threads_);
  if (o.batch)
    session_->set_max_batch(o.batch);
  else if (flash_)
    session_->set_max_batch(flash_->max_batch);
  sparsity_ = make_sparsity(m, o.sparsity, flash_ ? flash_->columns.get() : nullptr);
  reference_without_lora_ = o.sparsity.reference_without_lora;
  if (reference_without_lora_ && m.adapters().empty())
    fail("--kl-to-base compares against the model without its adapters: give --lora");
}

Runner::~Runner() = default;

double Runner::warm_up() {
  if (sparsity_.mlp || flash_) return 0.0;
  const auto t0 = Clock::now();
  const int32_t token[1] = {0};
  std::vector<float> logits;
  session_->eval(token, false, logits);
  session_->reset();
  return seconds_since(t0);
}

GenerateResult Runner::generate(const std::vector<int32_t>& prompt, const GenerateOptions& o,
                                const TokenCallback& on_token) {
  validate(o.sampling);
  if (prompt.empty()) fail("the prompt is empty after tokenization");
  if (o.n_predict < 0) fail("-n {}: the number of tokens to generate must be >= 0", o.n_predict);
  SparseMlp* mlp = sparsity_.mlp.get();
  if (mlp) {
    session_->set_mlp_hook(mlp);
    if (!row_weights_released_) mlp->release_row_major_weights();  // not again every turn
    row_weights_released_ = true;
  }
  const Vocab& vocab = model_.vocab();
  Sampler sampler(o.sampling);
  for (int32_t t : prompt) sampler.accept(t);
  GenerateResult r;
  r.prompt_tokens = prompt.size();
  std::vector<float> logits;
  auto t0 = Clock::now();
  session_->eval(prompt, false, logits);
  r.prompt_s = seconds_since(t0);
  if (flash_) {  // the report covers generation: the prompt has warmed the caches
    mlp->reset_stats();
    flash_->columns->reset_stats();
  }
  t0 = Clock::now();
  const size_t V = model_.hparams().n_vocab;
  while (int(r.tokens.size()) < o.n_predict) {
    const int32_t next = sampler.sample(logits.data(), V);
    if (!o.ignore_eos && vocab.is_eog(next)) break;
    sampler.accept(next);
    r.tokens.push_back(next);
    if (on_token && !on_token(next, token_to_piece(vocab, next, false))) {
      r.stopped_by_callback = true;
      break;
    }
    if (int(r.tokens.size()) == o.n_predict) break;
    const int32_t one[1] = {next};
    session_->eval(one, false, logits);
  }
  r.gen_s = seconds_since(t0);
  const int n_gen = int(r.tokens.size());
  const size_t steps = size_t(std::max(0, n_gen - 1));  // the first comes from the prompt
  // MLP bytes per token: all three matrices dense, or what the pruned run read.
  uint64_t bytes_per_token = model_.bytes_per_token();
  double mlp_bytes = 0;
  if (mlp) {
    const MlpStats& st = mlp->stats();
    const double tokens = double(st.evals) / model_.hparams().n_layer;
    mlp_bytes = tokens > 0 ? double(st.bytes) / tokens : 0.0;
    bytes_per_token = bytes_per_token - mlp->dense_bytes_per_token() + uint64_t(mlp_bytes);
    mlp->finish_trace();
  }
  r.report = {{"prompt_tokens", prompt.size()},
              {"prompt_s", r.prompt_s},
              {"gen_tokens", n_gen},
              {"gen_steps", steps},
              {"gen_s", r.gen_s},
              {"threads", threads_},
              {"seed", o.sampling.seed},
              {"bytes_per_token", bytes_per_token},
              {"method", method_name(sparsity_.cfg.method)}};
  if (mlp) {
    r.report["mlp_density"] = mlp->stats().density();
    r.report["hit_rate"] = mlp->stats().hit_rate();
    r.report["mlp_bytes_per_token"] = mlp_bytes;
    r.report["dense_mlp_bytes_per_token"] = mlp->dense_bytes_per_token();
  }
  if (flash_) r.report["flash"] = flash_report(*flash_, *mlp, steps, r.gen_s);
  return r;
}

void check_score_windows(size_t n_tokens, uint32_t window, size_t max_windows) {
  if (max_windows == 1) {
    fail("--chunks 1: perplexity needs at least 2 windows of {} tokens (the text has {} tokens)",
         window, n_tokens);
  }
  check_perplexity_input(n_tokens, window);
}

ScoreResult Runner::score(const std::vector<int32_t>& tokens, size_t max_windows,
                          const std::function<void(size_t, size_t, double)>& progress) {
  check_score_windows(tokens.size(), n_ctx_, max_windows);
  SparseMlp* mlp = sparsity_.mlp.get();
  ScoreResult r;
  r.report = {{"method", method_name(sparsity_.cfg.method)}};
  if (!mlp || flash_) {
    // Flash runs: no dense reference (it would read the whole MLP outside the budget).
    session_->set_mlp_hook(mlp);
    const size_t n_win =
        max_windows ? std::min(max_windows, tokens.size() / n_ctx_) : tokens.size() / n_ctx_;
    const std::vector<int32_t> used(tokens.begin(),
                                    tokens.begin() + std::min(tokens.size(), n_win * n_ctx_));
    r.ppl = perplexity(*session_, max_windows ? used : tokens, n_ctx_, progress);
    if (flash_) {
      mlp->finish_trace();
      r.report["flash"] = flash_report(*flash_, *mlp, r.ppl.chunks * n_ctx_, r.ppl.seconds);
    }
  } else {
    DenseReference ref;
    ref.without_lora = reference_without_lora_;
    r.against_dense = true;
    r.vs_dense = evaluate_sparse(*session_, *mlp, tokens, n_ctx_, max_windows, ref, progress);
    mlp->finish_trace();
    r.ppl = r.vs_dense.ppl;
    const SparseEvalResult& e = r.vs_dense;
    r.report.update({{"mlp_density", e.stats.density()},
                     {"dense_ppl", e.dense_ppl},
                     {"kl", e.kl},
                     {"top1", e.top1},
                     {"hit_rate", e.stats.hit_rate()},
                     {"up_hit_rate", e.stats.up_hit_rate()},
                     {"down_hit_rate", e.stats.down_hit_rate()},
                     {"gamma", sparsity_.cfg.gamma},
                     {"cache_fraction", sparsity_.cfg.cache_fraction}});
  }
  r.report.update({{"ppl", r.ppl.ppl},
                   {"ppl_err", r.ppl.ppl_err},
                   {"nll", r.ppl.nll},
                   {"tokens", r.ppl.tokens},
                   {"scored", r.ppl.scored},
                   {"bytes", r.ppl.bytes},
                   {"bpb", r.ppl.bpb},
                   {"chunks", r.ppl.chunks},
                   {"ctx", n_ctx_},
                   {"seconds", r.ppl.seconds},
                   {"tokens_per_second", double(r.ppl.chunks * n_ctx_) / r.ppl.seconds}});
  return r;
}

}  // namespace dip
