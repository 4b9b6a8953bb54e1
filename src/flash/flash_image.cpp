#include "flash/flash_image.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>
#include <zlib.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "io/mapped_file.h"
#include "model/mlp_columns.h"
#include "model/model.h"
#include "ops/colsparse.h"
#include "util/error.h"
#include "util/output_file.h"
#include "util/threadpool.h"

namespace dip {

namespace {

constexpr uint64_t kRegionAlign = 4096;

uint64_t round_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

uint32_t crc(const void* p, size_t n, uint32_t c = 0) {
  const auto* b = static_cast<const uint8_t*>(p);
  while (n > 0) {  // zlib takes 32-bit lengths
    const uInt k = uInt(std::min<size_t>(n, 1u << 30));
    c = uint32_t(crc32(c, b, k));
    b += k;
    n -= k;
  }
  return c;
}

uint32_t header_crc(FlashHeader h) {
  h.header_crc = 0;
  return crc(&h, sizeof(h));
}

// The CRC32 a region's bytes start from: bound to the layer and matrix it belongs to.
uint32_t region_seed(uint32_t layer, bool up) {
  const uint32_t id[2] = {layer, up ? 1u : 2u};
  return crc(id, sizeof(id));
}

// Writes the columns of cm with the given stride into the region at off, column c into slot
// slot[c] (null: slot c), and their checksums (by column) to sums; returns the region's CRC32.
uint32_t write_region(OutputFile& f, const ColumnMatrix& cm, uint64_t stride, uint64_t off,
                      uint32_t layer, bool up, const uint32_t* slot, uint32_t* sums) {
  std::vector<uint32_t> column_in(cm.n_cols);  // the column stored in each slot
  for (size_t c = 0; c < cm.n_cols; ++c) column_in[slot ? slot[c] : c] = uint32_t(c);
  std::vector<uint8_t> buf;
  uint32_t c = region_seed(layer, up);
  constexpr size_t kChunkSlots = 256;
  for (size_t s0 = 0; s0 < cm.n_cols; s0 += kChunkSlots) {
    const size_t ns = std::min(kChunkSlots, cm.n_cols - s0);
    buf.assign(ns * stride, 0);
    for (size_t i = 0; i < ns; ++i) {
      const uint32_t col = column_in[s0 + i];
      std::memcpy(&buf[i * stride], cm.col(col), cm.col_bytes);
      sums[col] = column_checksum(cm.col(col), cm.col_bytes, layer, up, col);
    }
    c = crc(buf.data(), buf.size(), c);
    f.pwrite_all(buf.data(), buf.size(), off + s0 * stride);
  }
  return c;
}

// True when v holds every value of [0, n) once.
bool is_permutation_of(const uint32_t* v, size_t n) {
  std::vector<uint8_t> seen(n, 0);
  for (size_t i = 0; i < n; ++i) {
    if (v[i] >= n || seen[v[i]]) return false;
    seen[v[i]] = 1;
  }
  return true;
}

// The identity of the model file, or zeros when it is not one regular file (a folder).
void model_identity(const Model& m, uint64_t& dev, uint64_t& ino, uint64_t& size,
                    uint64_t& ctime_ns) {
  dev = ino = size = ctime_ns = 0;
  struct stat st {};
  if (!m.gguf() || ::stat(m.path().c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return;
  dev = uint64_t(st.st_dev);
  ino = uint64_t(st.st_ino);
  size = uint64_t(st.st_size);
  ctime_ns = uint64_t(st.st_ctim.tv_sec) * 1000000000ull + uint64_t(st.st_ctim.tv_nsec);
}

}  // namespace

#if defined(__x86_64__)
uint64_t xxh3_seeded_avx2(const void* p, size_t bytes, uint64_t seed);  // column_checksum_avx2.cpp
#endif

uint32_t column_checksum(const uint8_t* p, size_t bytes, uint32_t layer, bool up, uint32_t col) {
  const uint64_t seed = (uint64_t(layer) << 33) | (uint64_t(up ? 1 : 0) << 32) | col;
#if defined(__x86_64__)
  static const bool avx2 = __builtin_cpu_supports("avx2");
  if (avx2) return uint32_t(xxh3_seeded_avx2(p, bytes, seed));
#endif
  return uint32_t(XXH3_64bits_withSeed(p, bytes, seed));
}

uint64_t mlp_fingerprint(const Model& m) {
  const HParams& hp = m.hparams();
  XXH3_state_t* st = XXH3_createState();
  if (!st) fail("out of memory");
  XXH3_64bits_reset(st);
  auto add = [&](const void* p, size_t n) { XXH3_64bits_update(st, p, n); };
  add(hp.arch_name.data(), hp.arch_name.size());
  add(&hp.n_layer, sizeof(hp.n_layer));
  add(&hp.n_embd, sizeof(hp.n_embd));
  add(&hp.n_ff, sizeof(hp.n_ff));
  for (const Layer& L : m.layers) {
    for (const Weight* w : {&L.ffn_gate, &L.ffn_up, &L.ffn_down}) {
      if (!w->data) continue;
      add(w->name.data(), w->name.size());
      const uint64_t shape[3] = {uint64_t(w->type), uint64_t(w->rows), uint64_t(w->cols)};
      add(shape, sizeof(shape));
      constexpr size_t kPiece = 4u << 20;
      for (size_t o = 0; o < w->bytes(); o += kPiece) {
        const size_t n = std::min(kPiece, w->bytes() - o);
        add(w->data + o, n);
        if (m.gguf()) release_mapped_pages(w->data + o, n);  // read again if touched
      }
    }
  }
  const uint64_t h = XXH3_64bits_digest(st);
  XXH3_freeState(st);
  return h;
}

void write_flash_image(const Model& m, const std::string& path, uint32_t align,
                       const FlashProgress& progress, const ColumnSlots* slots) {
  if (align < 512 || (align & (align - 1)) != 0 || align > (1u << 20)) {
    fail("flash image alignment {} is not a power of two in [512, 1 MiB]", align);
  }
  const HParams& hp = m.hparams();
  if (hp.n_layer == 0 || m.layers.empty()) fail("{}: the model has no layers", m.path());
  FlashHeader h{};
  std::memcpy(h.magic, kFlashMagic, 8);
  h.version = kFlashVersion;
  h.n_layer = hp.n_layer;
  h.n_embd = hp.n_embd;
  h.n_ff = hp.n_ff;
  // One column type per matrix kind in every layer (Q4_K_M's Q6_K down projections among Q4_K
  // ones take Q4_0 as the others do).
  const TensorType up_type = model_column_type(m, true), down_type = model_column_type(m, false);
  h.up_type = uint32_t(up_type);
  h.down_type = uint32_t(down_type);
  h.align = align;
  h.up_col_bytes = row_bytes(up_type, 2 * size_t(hp.n_ff));
  h.up_col_stride = round_up(h.up_col_bytes, align);
  h.down_col_bytes = row_bytes(down_type, hp.n_embd);
  h.down_col_stride = round_up(h.down_col_bytes, align);
  h.sums_offset = sizeof(FlashHeader) + hp.n_layer * sizeof(FlashLayerIndex);
  const size_t per_layer = size_t(hp.n_embd) + hp.n_ff;
  std::vector<uint32_t> sums(hp.n_layer * per_layer), slot_table(hp.n_layer * per_layer);
  h.layout = uint32_t(slots ? slots->layout : FlashLayout::kModelOrder);
  for (uint32_t l = 0; l < hp.n_layer; ++l) {
    uint32_t* t = slot_table.data() + l * per_layer;
    if (!slots) {
      for (size_t c = 0; c < per_layer; ++c) t[c] = uint32_t(c < hp.n_embd ? c : c - hp.n_embd);
      continue;
    }
    if (slots->up.size() != hp.n_layer || slots->down.size() != hp.n_layer ||
        slots->up[l].size() != hp.n_embd || slots->down[l].size() != hp.n_ff ||
        !is_permutation_of(slots->up[l].data(), hp.n_embd) ||
        !is_permutation_of(slots->down[l].data(), hp.n_ff)) {
      fail("{}: layer {}: the column layout is not a permutation of the model's columns", path, l);
    }
    std::copy(slots->up[l].begin(), slots->up[l].end(), t);
    std::copy(slots->down[l].begin(), slots->down[l].end(), t + hp.n_embd);
  }
  h.data_offset = round_up(h.sums_offset + 2 * sums.size() * sizeof(uint32_t), kRegionAlign);
  model_identity(m, h.model_dev, h.model_ino, h.model_size, h.model_ctime_ns);
  h.model_fingerprint = mlp_fingerprint(m);
  std::vector<FlashLayerIndex> index(hp.n_layer);
  uint64_t off = h.data_offset;
  for (auto& e : index) {
    e.up_offset = off;
    off = round_up(off + hp.n_embd * h.up_col_stride, kRegionAlign);
    e.down_offset = off;
    off = round_up(off + hp.n_ff * h.down_col_stride, kRegionAlign);
  }
  h.file_bytes = off;
  OutputFile f(path);
  // Layers in parallel on up to four threads (each holds its layer's column matrices:
  // hundreds of MB for large models). Regions are written at fixed offsets, so the
  // file does not depend on the order; the first error stops the rest and is rethrown here.
  const unsigned n_threads = std::clamp(unsigned(available_cores()), 1u, std::min(4u, hp.n_layer));
  std::atomic<uint32_t> next{0};
  uint32_t done = 0;  // under mu
  std::mutex mu;
  std::exception_ptr error;
  auto worker = [&] {
    for (uint32_t l; (l = next.fetch_add(1)) < hp.n_layer;) {
      try {
        const ColumnMatrix up_gate = up_gate_column_matrix(m, l, up_type),
                           down = down_column_matrix(m, l, down_type);
        if (up_gate.col_bytes != h.up_col_bytes || down.col_bytes != h.down_col_bytes) {
          fail("internal: layer {} column sizes differ from the header", l);
        }
        uint32_t* layer_sums = sums.data() + l * per_layer;
        const uint32_t* layer_slots = slot_table.data() + l * per_layer;
        index[l].up_crc = write_region(f, up_gate, h.up_col_stride, index[l].up_offset, l, true,
                                       layer_slots, layer_sums);
        index[l].down_crc = write_region(f, down, h.down_col_stride, index[l].down_offset, l, false,
                                         layer_slots + hp.n_embd, layer_sums + hp.n_embd);
        const std::lock_guard<std::mutex> lock(mu);
        if (progress && !error) progress(++done, hp.n_layer);
      } catch (...) {
        const std::lock_guard<std::mutex> lock(mu);
        if (!error) error = std::current_exception();
        next = hp.n_layer;
      }
    }
  };
  std::vector<std::thread> threads;
  for (unsigned t = 1; t < n_threads; ++t) threads.emplace_back(worker);
  worker();
  for (auto& t : threads) t.join();
  if (error) std::rethrow_exception(error);
  h.index_crc = crc(index.data(), index.size() * sizeof(FlashLayerIndex));
  h.sums_crc = crc(sums.data(), sums.size() * sizeof(uint32_t));
  h.slots_crc = crc(slot_table.data(), slot_table.size() * sizeof(uint32_t));
  h.header_crc = header_crc(h);
  f.pwrite_all(&h, sizeof(h), 0);
  f.pwrite_all(index.data(), index.size() * sizeof(FlashLayerIndex), sizeof(h));
  f.pwrite_all(sums.data(), sums.size() * sizeof(uint32_t), h.sums_offset);
  f.pwrite_all(slot_table.data(), slot_table.size() * sizeof(uint32_t),
               h.sums_offset + sums.size() * sizeof(uint32_t));
  f.commit(int64_t(h.file_bytes));
}

namespace {

void pread_all(int fd, const std::string& path, void* p, size_t n, uint64_t off, const char* what) {
  auto* b = static_cast<uint8_t*>(p);
  while (n > 0) {
    const ssize_t r = ::pread(fd, b, n, off_t(off));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) fail("{}: cannot read the {}: {}", path, what, std::strerror(errno));
    if (r == 0) fail("{}: truncated: the file ends inside the {}", path, what);
    b += r;
    off += uint64_t(r);
    n -= size_t(r);
  }
}

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

FlashImage::FlashImage(const std::string& path) : path_(path) {
  Fd f;
  f.fd = open_regular_file(path);
  struct stat st {};
  if (::fstat(f.fd, &st) != 0) fail("{}: cannot stat: {}", path, std::strerror(errno));
  if (!S_ISREG(st.st_mode)) fail("{}: not a regular file", path);
  if (uint64_t(st.st_size) < sizeof(FlashHeader))
    fail("{}: truncated: {} bytes, too short for a flash image header", path, st.st_size);
  pread_all(f.fd, path, &h_, sizeof(h_), 0, "header");
  if (std::memcmp(h_.magic, kFlashMagic, 8) != 0)
    fail("{}: not a dip flash image (bad magic)", path);
  if (h_.version != kFlashVersion)
    fail(
        "{}: flash image version {} is not supported (this build reads {}); write it again with "
        "`dip "
        "convert MODEL {} --flash`",
        path, h_.version, kFlashVersion, path);
  if (header_crc(h_) != h_.header_crc) fail("{}: corrupt flash image header (CRC mismatch)", path);
  if (h_.n_layer == 0 || h_.n_layer > 4096 || h_.n_embd == 0 || h_.n_ff == 0 ||
      h_.n_embd > (1u << 20) || h_.n_ff > (1u << 22)) {
    fail("{}: implausible shape in the flash image header ({} layers, n_embd {}, n_ff {})", path,
         h_.n_layer, h_.n_embd, h_.n_ff);
  }
  for (uint32_t t : {h_.up_type, h_.down_type}) {
    if (!is_supported_type(t)) fail("{}: flash image column type {} is not supported", path, t);
  }
  if (h_.align < 512 || (h_.align & (h_.align - 1)) != 0)
    fail("{}: bad column alignment {}", path, h_.align);
  if (h_.up_col_bytes != row_bytes(up_type(), 2 * size_t(h_.n_ff)) ||
      h_.down_col_bytes != row_bytes(down_type(), h_.n_embd) ||
      h_.up_col_stride < h_.up_col_bytes || h_.down_col_stride < h_.down_col_bytes ||
      h_.up_col_stride % h_.align || h_.down_col_stride % h_.align) {
    fail("{}: column sizes in the header do not match the shape and types", path);
  }
  if (h_.file_bytes != uint64_t(st.st_size)) {
    fail("{}: truncated or extended: the header says {} bytes, the file has {}", path,
         h_.file_bytes, st.st_size);
  }
  const uint64_t index_end = sizeof(FlashHeader) + uint64_t(h_.n_layer) * sizeof(FlashLayerIndex);
  const uint64_t n_sums = uint64_t(h_.n_layer) * (uint64_t(h_.n_embd) + h_.n_ff);
  if (h_.sums_offset != index_end || h_.data_offset < index_end + 2 * n_sums * sizeof(uint32_t) ||
      h_.data_offset > h_.file_bytes)
    fail("{}: bad checksum or data offset", path);
  if (h_.layout > uint32_t(FlashLayout::kCoActivation))
    fail("{}: unknown column layout {}", path, h_.layout);
  index_.resize(h_.n_layer);
  pread_all(f.fd, path, index_.data(), index_.size() * sizeof(FlashLayerIndex), sizeof(FlashHeader),
            "index");
  if (crc(index_.data(), index_.size() * sizeof(FlashLayerIndex)) != h_.index_crc) {
    fail("{}: corrupt flash image index (CRC mismatch)", path);
  }
  sums_.resize(n_sums);
  pread_all(f.fd, path, sums_.data(), sums_.size() * sizeof(uint32_t), h_.sums_offset,
            "column checksums");
  if (crc(sums_.data(), sums_.size() * sizeof(uint32_t)) != h_.sums_crc) {
    fail("{}: corrupt flash image column checksums (CRC mismatch)", path);
  }
  slots_.resize(n_sums);
  pread_all(f.fd, path, slots_.data(), slots_.size() * sizeof(uint32_t),
            h_.sums_offset + n_sums * sizeof(uint32_t), "column slots");
  if (crc(slots_.data(), slots_.size() * sizeof(uint32_t)) != h_.slots_crc) {
    fail("{}: corrupt flash image column slots (CRC mismatch)", path);
  }
  for (uint32_t l = 0; l < h_.n_layer; ++l) {
    const uint32_t* t = slots_.data() + size_t(l) * (h_.n_embd + h_.n_ff);
    if (!is_permutation_of(t, h_.n_embd) || !is_permutation_of(t + h_.n_embd, h_.n_ff))
      fail("{}: layer {}: the column slots are not a permutation", path, l);
  }
  const uint64_t up_region = uint64_t(h_.n_embd) * h_.up_col_stride,
                 down_region = uint64_t(h_.n_ff) * h_.down_col_stride;
  for (uint32_t l = 0; l < h_.n_layer; ++l) {
    const FlashLayerIndex& e = index_[l];
    if (e.up_offset < h_.data_offset || e.up_offset % kRegionAlign ||
        e.up_offset + up_region > h_.file_bytes || e.down_offset < h_.data_offset ||
        e.down_offset % kRegionAlign || e.down_offset + down_region > h_.file_bytes) {
      fail("{}: layer {}: column region outside the file or misaligned", path, l);
    }
  }
}

uint64_t FlashImage::column_bytes() const {
  return uint64_t(h_.n_layer) *
         (uint64_t(h_.n_embd) * h_.up_col_stride + uint64_t(h_.n_ff) * h_.down_col_stride);
}

void FlashImage::check_matches(const Model& m) const {
  const HParams& hp = m.hparams();
  if (hp.n_layer != h_.n_layer || hp.n_embd != h_.n_embd || hp.n_ff != h_.n_ff) {
    fail(
        "{}: flash image of another model shape ({} layers, n_embd {}, n_ff {}; {} has {}, {}, {})",
        path_, h_.n_layer, h_.n_embd, h_.n_ff, m.path(), hp.n_layer, hp.n_embd, hp.n_ff);
  }
  uint64_t dev, ino, size, ctime_ns;
  model_identity(m, dev, ino, size, ctime_ns);
  const bool same_file = ino != 0 && dev == h_.model_dev && ino == h_.model_ino &&
                         size == h_.model_size && ctime_ns == h_.model_ctime_ns;
  if (!same_file && mlp_fingerprint(m) != h_.model_fingerprint) {
    fail(
        "{}: flash image written from other MLP weights than {}'s; write it again with `dip "
        "convert {} {} --flash`",
        path_, m.path(), m.path(), path_);
  }
}

void FlashImage::verify_data(const FlashProgress& progress) const {
  Fd f;
  f.fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (f.fd < 0) fail("{}: cannot open: {}", path_, std::strerror(errno));
  std::vector<uint8_t> buf(8u << 20);
  auto region_crc = [&](uint64_t off, uint64_t n, uint32_t c) {
    while (n > 0) {
      const size_t k = size_t(std::min<uint64_t>(n, buf.size()));
      pread_all(f.fd, path_, buf.data(), k, off, "column data");
      c = crc(buf.data(), k, c);
      off += k;
      n -= k;
    }
    return c;
  };
  for (uint32_t l = 0; l < h_.n_layer; ++l) {
    if (region_crc(index_[l].up_offset, uint64_t(h_.n_embd) * h_.up_col_stride,
                   region_seed(l, true)) != index_[l].up_crc) {
      fail("{}: corrupt column data in layer {} (up+gate, CRC mismatch)", path_, l);
    }
    if (region_crc(index_[l].down_offset, uint64_t(h_.n_ff) * h_.down_col_stride,
                   region_seed(l, false)) != index_[l].down_crc) {
      fail("{}: corrupt column data in layer {} (down, CRC mismatch)", path_, l);
    }
    if (progress) progress(l + 1, h_.n_layer);
  }
}

}  // namespace dip
