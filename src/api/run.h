// One run of a loaded model: its session (context, threads, batch), its pruned MLP and flash
// image if any, generation with a streaming token callback, and scoring of a text. What `dip
// generate` and `dip perplexity` do, for any program.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "api/flash_setup.h"
#include "api/sparsity_setup.h"
#include "eval/sparse_eval.h"
#include "model/forward.h"
#include "sampling/sampler.h"

namespace dip {

class Model;

struct RunOptions {
  int threads = 0;     // 0: the cores this process may use
  uint32_t batch = 0;  // tokens per internal batch; 0: 512, or kFlashMaxBatch with a flash image
  SparsityOptions sparsity;
  FlashOptions flash;
};

struct GenerateOptions {
  SamplingParams sampling;
  int n_predict = 128;
  bool ignore_eos = false;  // keep going after end-of-generation tokens
};

// Each generated token and its text, as soon as it is sampled; return false to stop.
using TokenCallback = std::function<bool(int32_t token, const std::string& piece)>;

struct GenerateResult {
  std::vector<int32_t> tokens;  // generated
  bool stopped_by_callback = false;
  size_t prompt_tokens = 0;
  double prompt_s = 0, gen_s = 0;
  // The run as `dip generate --json` prints it: timings, bytes per token, MLP density and hit
  // rate of pruned runs, the flash report of flash runs.
  nlohmann::json report;
};

struct ScoreResult {
  PerplexityResult ppl;
  // Pruned MLPs in DRAM are also scored against the dense model on the same windows.
  bool against_dense = false;
  SparseEvalResult vs_dense;
  nlohmann::json report;  // as `dip perplexity --json` prints it
};

// The checks score() makes before any work (at least two windows of `window` tokens; a limit of
// one window is an error), for a caller that reports the plan first.
void check_score_windows(size_t n_tokens, uint32_t window, size_t max_windows);

class Runner {
 public:
  // n_ctx: the context; n_logits: tokens whose logits are kept at once (1 for generation, the
  // window for scoring; it sizes a flash run's DRAM plan).
  Runner(const Model& m, const RunOptions& o, uint32_t n_ctx, uint32_t n_logits);
  ~Runner();

  const Model& model() const { return model_; }
  Session& session() { return *session_; }
  SparseMlp* mlp() const { return sparsity_.mlp.get(); }  // null for dense in DRAM
  const FlashRun* flash() const { return flash_.get(); }
  const SparsityConfig& sparsity_config() const { return sparsity_.cfg; }
  int threads() const { return threads_; }

  // Dense runs in DRAM: evaluates one token and clears the context again, so that the weights'
  // pages are mapped and their CPU layouts (repacked copies, model.h) made before the first
  // prompt, as llama.cpp's tools do at load. Returns the seconds it took; 0 and nothing done
  // for pruned and flash runs (a pruned run would read its MLP densely).
  double warm_up();

  // Evaluates the prompt (tokens, e.g. from tokenize()) and samples up to n_predict tokens after
  // it; the context must hold both. A flash run's report covers the generated tokens only (the
  // prompt has warmed its caches).
  GenerateResult generate(const std::vector<int32_t>& prompt, const GenerateOptions& o,
                          const TokenCallback& on_token);

  // Perplexity of tokens in windows of the run's context (llama.cpp's protocol), at most
  // max_windows of them (0: all). progress(done, total, perplexity so far) after each window.
  ScoreResult score(const std::vector<int32_t>& tokens, size_t max_windows,
                    const std::function<void(size_t, size_t, double)>& progress = {});

 private:
  const Model& model_;
  int threads_;
  uint32_t n_ctx_;
  std::unique_ptr<FlashRun> flash_;
  Sparsity sparsity_;
  std::unique_ptr<Session> session_;
  bool row_weights_released_ = false;  // the pruned MLP's row-major pages, let go once
  bool reference_without_lora_ = false;
};

}  // namespace dip
