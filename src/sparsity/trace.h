// Mask traces: per token and layer, which MLP columns a run used (and, for cache-aware runs,
// which of them were cache hits). Read by the hardware simulator. Format (little-endian),
// documented in docs/trace-format.md:
//   header (64 bytes): magic "DIPTRACE", u32 version (1), u32 n_layer, u32 n_embd, u32 n_ff,
//     u32 flags (bit 0: hit masks present), u32 method (sparsity/config.h ids),
//     f32 target MLP density, f32 gamma, f32 cache fraction, u32 reserved, u64 n_tokens,
//     u64 reserved.
//   n_tokens records, each: for every layer: up mask (ceil(n_embd/8) bytes, bit i = input i of
//     up/gate kept), down mask (ceil(n_ff/8) bytes, bit j = column j of down kept); with hit
//     masks, after them: up hits, down hits (same sizes; bit set = kept and was cached).
#pragma once
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "sparsity/config.h"

namespace dip {

class OutputFile;

struct TraceHeader {
  uint32_t version = 1;
  uint32_t n_layer = 0, n_embd = 0, n_ff = 0;
  uint32_t flags = 0;
  Method method = Method::kDense;
  float mlp_density = 1.0f, gamma = 1.0f, cache_fraction = 0.0f;
  uint64_t n_tokens = 0;
  bool has_hits() const { return flags & 1u; }
  size_t up_bytes() const { return (n_embd + 7) / 8; }
  size_t down_bytes() const { return (n_ff + 7) / 8; }
  size_t record_bytes() const {
    return size_t(n_layer) * (up_bytes() + down_bytes()) * (has_hits() ? 2 : 1);
  }
};

class TraceWriter {
 public:
  TraceWriter(const std::string& path, const TraceHeader& h);
  ~TraceWriter();
  TraceWriter(const TraceWriter&) = delete;
  TraceWriter& operator=(const TraceWriter&) = delete;

  // Layer `layer` of the token at sequence position `pos`; up_hits/down_hits: per kept index
  // (parallel to the index lists), ignored without hit masks. A batch of tokens arrives layer by
  // layer (every token's layer 0, then layer 1, ...): records are kept per position and each is
  // written when its last layer arrives, so records stay in token order.
  void add_layer(uint32_t pos, uint32_t layer, const std::vector<int32_t>& up,
                 const std::vector<int32_t>& down, const uint8_t* up_hits,
                 const uint8_t* down_hits);
  // Writes the token count into the header and puts the file in place. Without close() (an
  // error midway) the trace is discarded and a file already at the path stays as it was.
  void close();

 private:
  std::string path_;
  TraceHeader h_;
  std::unique_ptr<OutputFile> out_;
  std::map<uint32_t, std::vector<uint8_t>> pending_;  // by position
};

struct Trace {
  TraceHeader header;
  std::vector<uint8_t> records;  // n_tokens * record_bytes
  const uint8_t* record(uint64_t t) const { return records.data() + t * header.record_bytes(); }
};

// Reads and validates a trace (bad magic, version, sizes, truncation: clear errors).
Trace read_trace(const std::string& path);

}  // namespace dip
