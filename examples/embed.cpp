// A program that embeds dip the way an application would: it loads a model (the default one, or
// the GGUF file given as the first argument), generates with DIP at half the MLP's density while
// streaming the tokens and stopping at the end of the first sentence, then scores a text against
// the dense model. Built with the project and run by its tests.
#include <cstdio>
#include <string>

#include "api/dip.h"

int main(int argc, char** argv) {
  try {
    auto model = dip::Model::load(dip::resolve_model(argc > 1 ? argv[1] : ""));
    dip::set_progress_sink({});  // this program reports for itself

    dip::RunOptions options;
    options.sparsity.method = "dip";
    options.sparsity.mlp_density = 0.5;

    // Generation: greedy, streamed, ended by the callback at the first full stop.
    const std::vector<int32_t> prompt =
        dip::tokenize(model->vocab(), "Once upon a time", true, true);
    dip::GenerateOptions gen;
    gen.n_predict = 48;
    gen.sampling.temperature = 0;
    dip::Runner run(*model, options, dip::pick_ctx(*model, 0, prompt.size() + 48), 1);
    std::fputs("Once upon a time", stdout);
    std::string text;
    const dip::GenerateResult g = run.generate(prompt, gen, [&](int32_t, const std::string& piece) {
      text += piece;
      std::fputs(piece.c_str(), stdout);
      std::fflush(stdout);
      return piece.find('.') == std::string::npos;
    });
    std::printf("\n%zu tokens%s, MLP density %.3f\n", g.tokens.size(),
                g.stopped_by_callback ? " (stopped at a full stop)" : "",
                g.report["mlp_density"].get<double>());

    // Scoring: perplexity of the pruned model and its distance from the dense one.
    std::string sample;
    for (int i = 0; i < 40; ++i) sample += "The little cat sat by the warm fire and slept. ";
    const std::vector<int32_t> tokens = dip::tokenize(model->vocab(), sample, true, false);
    dip::Runner scorer(*model, options, 64, 64);
    const dip::ScoreResult s = scorer.score(tokens, 2);
    std::printf("perplexity %.4f (dense %.4f), KL to dense %.5f nats/token, top-1 agreement %.3f\n",
                s.ppl.ppl, s.vs_dense.dense_ppl, s.vs_dense.kl, s.vs_dense.top1);
    return 0;
  } catch (const dip::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
