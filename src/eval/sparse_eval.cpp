#include "eval/sparse_eval.h"

#include <chrono>
#include <cmath>

#include "model/forward.h"
#include "ops/elementwise.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"

namespace dip {

namespace {
// log-softmax of n logits into out (double sums, float results); returns the argmax.
int32_t log_softmax(const float* logits, size_t n, float* out) {
  float mx = logits[0];
  int32_t best = 0;
  for (size_t i = 1; i < n; ++i) {
    if (logits[i] > mx) {
      mx = logits[i];
      best = int32_t(i);
    }
  }
  double sum = 0;
  for (size_t i = 0; i < n; ++i) sum += std::exp(double(logits[i] - mx));
  const double lse = std::log(sum);
  for (size_t i = 0; i < n; ++i) out[i] = float(double(logits[i] - mx) - lse);
  return best;
}
}  // namespace

double DenseReference::ppl() const { return scored ? std::exp(nll / double(scored)) : 0.0; }

SparseEvalResult evaluate_sparse(Session& s, SparseMlp& mlp, const std::vector<int32_t>& tokens,
                                 uint32_t n_ctx, size_t max_chunks, DenseReference& ref,
                                 const std::function<void(size_t, size_t, double)>& progress) {
  const Vocab& vocab = s.model().vocab();
  const size_t V = s.model().hparams().n_vocab;
  check_perplexity_input(tokens.size(), n_ctx);
  size_t chunks = tokens.size() / n_ctx;
  if (max_chunks) chunks = std::min(chunks, max_chunks);
  const size_t first = n_ctx / 2, per_chunk = n_ctx - 1 - first;
  if (ref.filled && ref.chunks != chunks)
    fail("internal: dense reference made for {} windows, not {}", ref.chunks, chunks);
  if (!ref.filled) {
    ref.chunks = chunks;
    ref.logprobs.assign(chunks * per_chunk * V, 0.0f);
    ref.argmax.assign(chunks * per_chunk, 0);
    ref.nll = 0;
    ref.scored = 0;
  }
  SparseEvalResult r;
  r.ppl.tokens = tokens.size();
  r.ppl.chunks = chunks;
  mlp.reset_stats();
  const auto t0 = std::chrono::steady_clock::now();
  double nll = 0, nll2 = 0, kl = 0;
  size_t agree = 0;
  std::vector<float> logits, lp(V);
  std::vector<int32_t> window(n_ctx);
  for (size_t c = 0; c < chunks; ++c) {
    std::copy(tokens.begin() + c * n_ctx, tokens.begin() + (c + 1) * n_ctx, window.begin());
    if (vocab.add_bos) window[0] = vocab.bos;
    if (!ref.filled) {
      s.set_mlp_hook(nullptr);
      s.reset();
      s.set_lora_enabled(!ref.without_lora);
      s.eval(window, true, logits);
      s.set_lora_enabled(true);
      for (size_t j = first; j + 1 < n_ctx; ++j) {
        const size_t p = c * per_chunk + (j - first);
        float* d = &ref.logprobs[p * V];
        ref.argmax[p] = log_softmax(&logits[j * V], V, d);
        ref.nll -= log_softmax_at(&logits[j * V], V, size_t(window[j + 1]));
        ref.scored++;
      }
    }
    s.set_mlp_hook(&mlp);
    s.reset();
    s.eval(window, true, logits);
    s.set_mlp_hook(nullptr);
    for (size_t j = first; j + 1 < n_ctx; ++j) {
      const size_t p = c * per_chunk + (j - first);
      const int32_t best = log_softmax(&logits[j * V], V, lp.data());
      // The same sum as perplexity()'s (in doubles), so equal logits give equal perplexities.
      const double l = log_softmax_at(&logits[j * V], V, size_t(window[j + 1]));
      nll -= l;
      nll2 += l * l;
      const float* d = &ref.logprobs[p * V];
      double k = 0;
      for (size_t i = 0; i < V; ++i) k += std::exp(double(d[i])) * (double(d[i]) - double(lp[i]));
      kl += k;
      agree += best == ref.argmax[p];
      r.ppl.scored++;
      r.ppl.bytes += token_to_piece(vocab, window[j + 1], false).size();
    }
    r.ppl.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (progress) progress(c + 1, chunks, std::exp(nll / double(r.ppl.scored)));
  }
  ref.filled = true;
  const double n = double(r.ppl.scored);
  r.ppl.nll = nll / n;
  r.ppl.ppl = std::exp(r.ppl.nll);
  r.ppl.bpb = r.ppl.bytes ? nll / std::log(2.0) / double(r.ppl.bytes) : 0.0;
  const double var = nll2 / n - r.ppl.nll * r.ppl.nll;
  r.ppl.ppl_err = var > 0 && n > 1 ? std::sqrt(var / (n - 1)) * r.ppl.ppl : 0.0;
  r.dense_ppl = ref.ppl();
  r.kl = kl / n;
  r.top1 = double(agree) / n;
  r.stats = mlp.stats();
  return r;
}

}  // namespace dip
