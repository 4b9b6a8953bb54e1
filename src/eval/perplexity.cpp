#include "eval/perplexity.h"

#include <chrono>
#include <cmath>

#include "model/forward.h"
#include "ops/elementwise.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"

namespace dip {

void check_perplexity_input(size_t n_tokens, uint32_t n_ctx) {
  if (n_ctx < 4) fail("--ctx must be at least 4 (got {})", n_ctx);
  if (n_tokens < 2 * size_t(n_ctx)) {
    fail("the text has {} tokens; perplexity needs at least 2 * ctx = {}", n_tokens,
         2 * size_t(n_ctx));
  }
}

PerplexityResult perplexity(Session& s, const std::vector<int32_t>& tokens, uint32_t n_ctx,
                            const std::function<void(size_t, size_t, double)>& progress) {
  const Vocab& vocab = s.model().vocab();
  const size_t V = s.model().hparams().n_vocab;
  check_perplexity_input(tokens.size(), n_ctx);
  PerplexityResult r;
  r.tokens = tokens.size();
  r.chunks = tokens.size() / n_ctx;
  const size_t first = n_ctx / 2;
  const auto t0 = std::chrono::steady_clock::now();
  double nll = 0, nll2 = 0;
  std::vector<float> logits;
  std::vector<int32_t> window(n_ctx);
  for (size_t c = 0; c < r.chunks; ++c) {
    std::copy(tokens.begin() + c * n_ctx, tokens.begin() + (c + 1) * n_ctx, window.begin());
    if (vocab.add_bos) window[0] = vocab.bos;
    s.reset();
    s.eval(window, true, logits);
    for (size_t j = first; j + 1 < n_ctx; ++j) {
      const double lp = log_softmax_at(&logits[j * V], V, size_t(window[j + 1]));
      nll -= lp;
      nll2 += lp * lp;
      r.scored++;
      r.bytes += token_to_piece(vocab, window[j + 1], false).size();
    }
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (progress) progress(c + 1, r.chunks, std::exp(nll / double(r.scored)));
    r.seconds = secs;
  }
  r.nll = nll / double(r.scored);
  r.bpb = r.bytes ? nll / std::log(2.0) / double(r.bytes) : 0.0;
  r.ppl = std::exp(r.nll);
  const double var = nll2 / double(r.scored) - r.nll * r.nll;
  r.ppl_err = var > 0 && r.scored > 1 ? std::sqrt(var / double(r.scored - 1)) * r.ppl : 0.0;
  return r;
}

}  // namespace dip
