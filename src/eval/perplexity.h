// Perplexity with llama.cpp's protocol: non-overlapping windows of n_ctx tokens, BOS first in
// each window where the model adds one, only the second half of every window scored.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace dip {

class Session;

struct PerplexityResult {
  double ppl = 0, ppl_err = 0;  // estimate and its standard error
  double nll = 0;               // mean negative log-likelihood (nats)
  size_t scored = 0;            // tokens scored
  size_t tokens = 0;            // tokens in the text
  size_t chunks = 0;
  size_t bytes = 0;  // bytes of the scored tokens' text
  double bpb = 0;    // bits per byte of the scored text
  double seconds = 0;
};

// The protocol's preconditions: n_ctx >= 4 and at least two windows of text (clear errors).
void check_perplexity_input(size_t n_tokens, uint32_t n_ctx);

// tokens: the text tokenized with the model's special tokens. Calls progress(done, total).
PerplexityResult perplexity(Session& s, const std::vector<int32_t>& tokens, uint32_t n_ctx,
                            const std::function<void(size_t, size_t, double)>& progress);

}  // namespace dip
