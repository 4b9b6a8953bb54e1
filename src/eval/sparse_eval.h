// Accuracy of a pruned MLP against the dense model on the same windows (llama.cpp's
// perplexity protocol): perplexity, KL divergence of the next-token distribution from the
// dense one, top-1 agreement with dense, and the pruning statistics of the run.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include "eval/perplexity.h"
#include "sparsity/sparse_mlp.h"

namespace dip {

class Session;

// Dense log-probabilities of every scored position, computed once and reused by every
// configuration of a sweep.
struct DenseReference {
  bool filled = false;
  bool without_lora = false;  // computed with the session's adapters off
  size_t chunks = 0;
  std::vector<float> logprobs;  // [chunk][scored position][vocab]
  std::vector<int32_t> argmax;
  double nll = 0;
  size_t scored = 0;
  double ppl() const;
};

struct SparseEvalResult {
  PerplexityResult ppl;  // of the pruned model
  double dense_ppl = 0;
  double kl = 0;    // mean KL(dense || pruned), nats per token
  double top1 = 0;  // fraction of scored positions where both argmax agree
  MlpStats stats;
};

// Evaluates at most max_chunks windows (0: all). The session must have n_ctx >= n_ctx here.
SparseEvalResult evaluate_sparse(Session& s, SparseMlp& mlp, const std::vector<int32_t>& tokens,
                                 uint32_t n_ctx, size_t max_chunks, DenseReference& ref,
                                 const std::function<void(size_t, size_t, double)>& progress);

}  // namespace dip
