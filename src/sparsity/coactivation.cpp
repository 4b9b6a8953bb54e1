#include "sparsity/coactivation.h"

#include <cmath>

#include "flash/flash_layout.h"
#include "model/forward.h"
#include "model/model.h"
#include "sparsity/config.h"
#include "sparsity/select.h"
#include "util/error.h"
#include "util/threadpool.h"

namespace dip {

CoactivationLayout coactivation_layout(const Model& m, const std::vector<int32_t>& tokens,
                                       uint32_t n_ctx, double density, int threads,
                                       const std::function<void(size_t, size_t)>& progress) {
  const HParams& hp = m.hparams();
  if (!(density > 0 && density < 1))
    fail("--layout-density {} must be in (0, 1): a layout groups the columns a pruned run keeps",
         density);
  if (tokens.size() < 64)
    fail("the layout text is too short: {} tokens, at least 64 are needed", tokens.size());
  const LayerKeep keep = dip_optimized_split(density);
  const size_t k_up = keep_count(keep.up, hp.n_embd), k_down = keep_count(keep.down, hp.n_ff);
  std::vector<KeptColumns> up(hp.n_layer), down(hp.n_layer);
  for (uint32_t l = 0; l < hp.n_layer; ++l) {
    up[l].resize(hp.n_embd, tokens.size());
    down[l].resize(hp.n_ff, tokens.size());
  }
  std::vector<size_t> seen(hp.n_layer, 0);  // tokens observed per layer
  std::vector<float> score(std::max(hp.n_embd, hp.n_ff));
  std::vector<int32_t> idx;
  std::vector<uint32_t> scratch;
  Session s(m, n_ctx, threads);
  s.set_mlp_observer([&](uint32_t l, const float* x, const float*, const float* h) {
    const size_t t = seen[l]++;
    for (size_t i = 0; i < hp.n_embd; ++i) score[i] = std::fabs(x[i]);
    select_topk(score.data(), hp.n_embd, k_up, idx, scratch);
    for (int32_t c : idx) up[l].set(size_t(c), t);
    for (size_t i = 0; i < hp.n_ff; ++i) score[i] = std::fabs(h[i]);
    select_topk(score.data(), hp.n_ff, k_down, idx, scratch);
    for (int32_t c : idx) down[l].set(size_t(c), t);
  });
  std::vector<float> logits;
  const size_t n_win = (tokens.size() + n_ctx - 1) / n_ctx;
  const size_t total = n_win + hp.n_layer;
  for (size_t w = 0; w < n_win; ++w) {
    const size_t b = w * n_ctx, e = std::min(tokens.size(), b + n_ctx);
    s.reset();
    s.eval(std::span<const int32_t>(tokens.data() + b, e - b), false, logits);
    if (progress) progress(w + 1, total);
  }
  s.set_mlp_observer(nullptr);
  CoactivationLayout r;
  r.slots.layout = FlashLayout::kCoActivation;
  ThreadPool pool(threads);
  auto identity = [](size_t n) {
    std::vector<uint32_t> v(n);
    for (size_t i = 0; i < n; ++i) v[i] = uint32_t(i);
    return v;
  };
  for (uint32_t l = 0; l < hp.n_layer; ++l) {
    r.slots.up.push_back(coactivation_slots(up[l], pool));
    r.slots.down.push_back(coactivation_slots(down[l], pool));
    r.up_before.push_back(adjacency(up[l], identity(hp.n_embd)));
    r.up_after.push_back(adjacency(up[l], r.slots.up.back()));
    r.down_before.push_back(adjacency(down[l], identity(hp.n_ff)));
    r.down_after.push_back(adjacency(down[l], r.slots.down.back()));
    if (progress) progress(n_win + l + 1, total);
  }
  return r;
}

}  // namespace dip
