// The flash image: a model's MLP weights as column bundles laid out for direct reads, the part
// of the model that lives on flash. Up+gate columns are bundled (one read fetches both halves
// of an input coordinate, they share the DIP mask), down columns stand alone; each column starts
// at a multiple of the image's alignment so that O_DIRECT reads need no bounce buffer, and
// adjacent columns are adjacent in the file so one read can fetch a run of them.
//
// On disk (little-endian): a FlashHeader, then n_layer FlashLayerIndex entries, then the column
// checksums (per layer: n_embd up+gate bundles, then n_ff down columns; 32 bits each), then the
// column slots in the same shape (where in its region each column is stored: a permutation per
// region), zero padding to data_offset (a multiple of 4096), then per layer the up+gate region
// (n_embd slots of up_col_stride bytes) and the down region (n_ff slots of down_col_stride
// bytes), each region starting at a multiple of 4096. header_crc covers the header (with
// header_crc = 0), index_crc the index, sums_crc the checksums, slots_crc the slots.
//
// The slots are the image's layout. In model order column c is in slot c; a co-activation
// layout (flash/flash_layout.h) puts columns that are read together side by side, so that one
// request fetches several. Columns keep their model indices everywhere else (masks, traces,
// checksums, the order of sums): a layout changes which reads are made, never a result. Every
// checksum is bound to its place: a column's is XXH3 of its bytes seeded with (layer, matrix,
// column), a region's CRC32 starts from its (layer, matrix), so data moved to another layer or
// column fails as surely as damaged data. model_fingerprint hashes every byte of the model's MLP
// weights (and their names, types and shapes); the model file's identity (device, inode, size,
// change time) lets a run skip rehashing the file the image was written from while it is unchanged.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "ops/tensor_types.h"

namespace dip {

class Model;

constexpr char kFlashMagic[8] = {'D', 'I', 'P', 'F', 'L', 'A', 'S', 'H'};
constexpr uint32_t kFlashVersion = 3;

enum class FlashLayout : uint32_t {
  kModelOrder = 0,    // column c in slot c
  kCoActivation = 1,  // columns kept together on calibration text side by side
};

struct FlashHeader {
  char magic[8];
  uint32_t version;
  uint32_t n_layer, n_embd, n_ff;
  uint32_t up_type, down_type;           // ggml type ids of the column data
  uint32_t align;                        // column stride granularity (bytes, a power of two >= 512)
  uint32_t layout;                       // FlashLayout
  uint64_t up_col_bytes, up_col_stride;  // one up+gate bundle: [gate col; up col]
  uint64_t down_col_bytes, down_col_stride;  // one down column
  uint64_t data_offset, file_bytes;
  uint64_t model_fingerprint;  // mlp_fingerprint() of the model it was written from
  uint64_t model_dev, model_ino, model_size, model_ctime_ns;  // that model file's identity
  uint64_t sums_offset;  // the column checksums, then the column slots
  uint32_t index_crc, sums_crc, header_crc, slots_crc;
};
static_assert(sizeof(FlashHeader) == 152);

struct FlashLayerIndex {
  uint64_t up_offset, down_offset;
  uint32_t up_crc, down_crc;
};
static_assert(sizeof(FlashLayerIndex) == 24);

// Identifies a model's MLP weights: architecture, shapes, types and every byte (XXH3). Reads
// the weights a few MiB at a time and lets go of each piece, so that it adds next to nothing
// to the process's memory.
uint64_t mlp_fingerprint(const Model& m);

// The checksum of column `col` of layer `layer`'s up+gate (up) or down matrix: `bytes` at p.
uint32_t column_checksum(const uint8_t* p, size_t bytes, uint32_t layer, bool up, uint32_t col);

using FlashProgress = std::function<void(size_t done, size_t total)>;

// Where each column goes: per layer, slot_up[l][c] for the n_embd up+gate bundles and
// slot_down[l][c] for the n_ff down columns; each a permutation. Empty: model order.
struct ColumnSlots {
  FlashLayout layout = FlashLayout::kModelOrder;
  std::vector<std::vector<uint32_t>> up, down;
};

// Writes the flash image of m's MLP weights to path (columns in each layer's own types), in the
// layout `slots` gives (null: model order).
void write_flash_image(const Model& m, const std::string& path, uint32_t align,
                       const FlashProgress& progress, const ColumnSlots* slots = nullptr);

// A flash image's header and index, read and checked (magic, version, CRCs, sizes against the
// file, offsets and alignment); every problem is an Error naming the file.
class FlashImage {
 public:
  explicit FlashImage(const std::string& path);
  const std::string& path() const { return path_; }
  const FlashHeader& header() const { return h_; }
  const FlashLayerIndex& layer(uint32_t l) const { return index_[l]; }
  TensorType up_type() const { return TensorType(h_.up_type); }
  TensorType down_type() const { return TensorType(h_.down_type); }
  FlashLayout layout() const { return FlashLayout(h_.layout); }
  // Where column `col` (a model index) of layer l is stored.
  uint64_t up_offset(uint32_t l, size_t col) const {
    return index_[l].up_offset + uint64_t(slot(l, true, col)) * h_.up_col_stride;
  }
  uint64_t down_offset(uint32_t l, size_t col) const {
    return index_[l].down_offset + uint64_t(slot(l, false, col)) * h_.down_col_stride;
  }
  uint32_t slot(uint32_t layer, bool up, size_t col) const {
    return slots_[size_t(layer) * (h_.n_embd + h_.n_ff) + (up ? col : h_.n_embd + col)];
  }
  // Bytes of column data the image holds (with padding).
  uint64_t column_bytes() const;
  // Fails unless the image was written from a model with m's MLP weights (every byte: the
  // model file is hashed unless it is the very file, unchanged, the image was written from).
  void check_matches(const Model& m) const;
  // The stored checksum of a column (see column_checksum).
  uint32_t checksum(uint32_t layer, bool up, size_t col) const {
    return sums_[size_t(layer) * (h_.n_embd + h_.n_ff) + (up ? col : h_.n_embd + col)];
  }
  // Reads every region and checks its CRC32 (a corrupt byte names its layer and matrix).
  void verify_data(const FlashProgress& progress) const;

 private:
  std::string path_;
  FlashHeader h_{};
  std::vector<FlashLayerIndex> index_;
  std::vector<uint32_t> sums_, slots_;
};

}  // namespace dip
