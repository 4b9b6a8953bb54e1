"""The engine's MLP masks in PyTorch: DIP (top-k of |x| for the up+gate columns, top-k of |h| for
the down columns, one MLP density split by the optimized formula) and DIP-CA (the same scores,
an uncached column's scaled by gamma, against a modelled per-layer LRU column cache).

Each function mirrors one in src/sparsity or src/cache, named in its docstring;
tools/train/test_masks.py checks them against the engine's own code on the same scores.
"""
import math

import torch


def dip_optimized_split(density):
    """sparsity/config.cpp dip_optimized_split: (up keep, down keep) for an MLP density."""
    if density >= 1.0:
        return 1.0, 1.0
    logit = math.log(density / (1.0 - density))
    up = 1.0 / (1.0 + math.exp(-(0.98499 * logit + 0.29976)))
    down = 3.0 * (density - 2.0 / 3.0 * up)
    return up, min(max(down, 1e-6), 1.0)


def keep_count(keep, n):
    """sparsity/select.cpp keep_count: round half away from zero, at least 1, at most n."""
    return min(max(int(math.floor(keep * n + 0.5)), 1), n)


def topk_mask(scores, k):
    """select_topk over the last dimension: a boolean mask of the k largest scores."""
    idx = scores.topk(k, dim=-1).indices
    return torch.zeros_like(scores, dtype=torch.bool).scatter_(-1, idx, True)


def block_topk_mask(scores, k, block):
    """sparsity/select.cpp select_topk_blocks (model order): the mask chosen over groups of
    `block` adjacent columns, each scoring the mean of its columns (the last group may be
    shorter), the best round(k / block) groups (at least one) kept whole."""
    if block <= 1:
        return topk_mask(scores, k)
    n = scores.shape[-1]
    n_blocks = (n + block - 1) // block
    padded = torch.nn.functional.pad(scores, (0, n_blocks * block - n))
    groups = padded.reshape(*scores.shape[:-1], n_blocks, block)
    total = groups[..., 0]
    for j in range(1, block):  # the engine's order of the float sum (adding a pad's 0 is exact)
        total = total + groups[..., j]
    counts = torch.full((n_blocks,), float(block), dtype=scores.dtype, device=scores.device)
    counts[-1] = n - (n_blocks - 1) * block
    kb = min(max((k + block // 2) // block, 1), n_blocks)
    kept = topk_mask(total / counts, kb)
    return kept.repeat_interleave(block, dim=-1)[..., :n]


class LruCache:
    """cache/column_cache.cpp ColumnCache (LRU policy) for a batch of independent sequences:
    the columns each sequence's cache holds after each token's access."""

    def __init__(self, batch, n, capacity, device=None):
        self.n, self.capacity = n, min(capacity, n)
        self.cached = torch.zeros(batch, n, dtype=torch.bool, device=device)
        self.last_use = torch.zeros(batch, n, dtype=torch.long, device=device)
        self.index = torch.arange(n, device=device)
        self.clock = 0

    def access(self, used):
        """used: (batch, n) bool, the columns one token reads. Updates the cache as the engine:
        misses are admitted in column order while there is room; room is made by evicting the
        least recently used columns this token does not use (ties: the lower index first)."""
        self.clock += 1
        if self.capacity == 0:
            return
        miss = used & ~self.cached
        n_miss = miss.sum(1)
        size = self.cached.sum(1)
        need = (size + torch.clamp(n_miss, max=self.capacity) - self.capacity).clamp(min=0)
        candidates = self.cached & ~used
        big = torch.iinfo(torch.long).max
        key = torch.where(candidates, self.last_use * self.n + self.index, torch.full_like(self.last_use, big))
        rank = key.argsort(1).argsort(1)
        self.cached &= ~(candidates & (rank < need[:, None]))
        n_admit = torch.minimum(self.capacity - self.cached.sum(1), n_miss)
        self.cached |= miss & (miss.cumsum(1) <= n_admit[:, None])
        self.last_use = torch.where(used, torch.full_like(self.last_use, self.clock), self.last_use)


def cache_aware_scores(scores, cached, gamma):
    """sparsity/select.cpp cache_aware_scores (fixed_top_n 0, no blending): an uncached
    column's score times gamma."""
    return torch.where(cached, scores, scores * gamma)


def sequential_masks(scores, k, cache=None, gamma=1.0, block=1):
    """Masks of a (batch, T, n) score tensor, token by token: top-k of the scores (DIP), or with
    a cache, of the scores rescored against the cache as it is before each token (DIP-CA), the
    cache then updated with the token's columns. block > 1: kept in groups (block_topk_mask)."""
    if cache is None:
        return block_topk_mask(scores, k, block)
    masks = torch.empty(scores.shape, dtype=torch.bool, device=scores.device)
    for t in range(scores.shape[1]):
        s = cache_aware_scores(scores[:, t], cache.cached, gamma) if cache.capacity > 0 else scores[:, t]
        m = block_topk_mask(s, k, block)
        masks[:, t] = m
        cache.access(m)
    return masks
