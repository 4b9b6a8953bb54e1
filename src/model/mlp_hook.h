// The hook through which a layer's MLP is replaced. The model defines it and calls it; the layers
// above implement it (the pruned MLP of sparsity/, reading its columns from DRAM or from flash),
// so that the model depends on none of them. One virtual call per layer and token, never per
// element.
#pragma once
#include <cstdint>

namespace dip {

class ThreadPool;

class MlpHook {
 public:
  virtual ~MlpHook() = default;
  // False: the model runs its own dense MLP (the hook only observes, e.g. dense in DRAM).
  virtual bool active() const = 0;
  // out = MLP(x) of `layer` for the token at sequence position `pos` (x is the normed input);
  // out may alias x.
  virtual void forward(uint32_t layer, const float* x, float* out, uint32_t pos,
                       ThreadPool& pool) = 0;
  // Called with the residual stream after `layer - 1`, before `layer`'s attention: a chance to
  // start reading what `layer`'s MLP will need.
  virtual void prefetch_next(uint32_t layer, const float* x_resid, uint32_t pos) = 0;
};

}  // namespace dip
