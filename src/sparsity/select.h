// Mask selection: per-token top-k, threshold, and DIP-CA's cache-aware rescoring.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace dip {

// The indices of the k largest scores, ascending (ties broken towards lower indices).
// O(n): a radix select of the k-th value (2-3 histogram passes), one scan. `scratch` avoids
// allocations. NaN scores rank above +inf (their order among themselves is unspecified).
void select_topk(const float* score, size_t n, size_t k, std::vector<int32_t>& out,
                 std::vector<uint32_t>& scratch);

// I/O-aware top-k: the columns, ascending, of the round(k / block) blocks of `block` adjacent
// columns with the largest mean score (the last block may be shorter; ties towards lower
// blocks). A kept block is a run of adjacent columns in the weights, so its misses are one
// read instead of `block`. block = 1 is select_topk. `block_score` and `block_idx` are scratch.
// `order` (null: model order) lists the columns in the order they are stored (a flash image's
// layout): blocks are then runs of that order.
void select_topk_blocks(const float* score, size_t n, size_t k, uint32_t block,
                        std::vector<int32_t>& out, std::vector<float>& block_score,
                        std::vector<int32_t>& block_idx, std::vector<uint32_t>& scratch,
                        const uint32_t* order = nullptr);

// The indices whose score is >= threshold, ascending.
void select_threshold(const float* score, size_t n, float threshold, std::vector<int32_t>& out);

// DIP-CA rescoring in place: s_i stays when cached[i] or i is among the fixed_top_n largest,
// else s_i *= gamma; with alpha_blend, s_i = gamma * s_i + (1 - gamma) * cached[i].
void cache_aware_scores(float* score, size_t n, const uint8_t* cached, double gamma,
                        uint32_t fixed_top_n, bool alpha_blend, std::vector<float>& scratch);

// DIP-CA warm-up: gamma_t = 1 - (1 - gamma)(1 - gamma^(t/4)) (t = position; t = 0 -> 1).
double warmup_gamma(double gamma, uint32_t t);

// Rounds keep * n to a count in [1, n] (a kept fraction never empties a mask).
size_t keep_count(double keep, size_t n);

}  // namespace dip
