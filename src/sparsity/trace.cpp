#include "sparsity/trace.h"

#include <cstring>

#include "io/mapped_file.h"
#include "util/error.h"
#include "util/output_file.h"

namespace dip {

namespace {
constexpr char kMagic[8] = {'D', 'I', 'P', 'T', 'R', 'A', 'C', 'E'};
constexpr size_t kHeaderBytes = 64;

void put32(uint8_t* p, uint32_t v) { std::memcpy(p, &v, 4); }
void put64(uint8_t* p, uint64_t v) { std::memcpy(p, &v, 8); }
uint32_t get32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
uint64_t get64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}
float getf(const uint8_t* p) {
  float v;
  std::memcpy(&v, p, 4);
  return v;
}

void encode_header(const TraceHeader& h, uint8_t* b) {
  std::memset(b, 0, kHeaderBytes);
  std::memcpy(b, kMagic, 8);
  put32(b + 8, h.version);
  put32(b + 12, h.n_layer);
  put32(b + 16, h.n_embd);
  put32(b + 20, h.n_ff);
  put32(b + 24, h.flags);
  put32(b + 28, uint32_t(h.method));
  std::memcpy(b + 32, &h.mlp_density, 4);
  std::memcpy(b + 36, &h.gamma, 4);
  std::memcpy(b + 40, &h.cache_fraction, 4);
  put64(b + 48, h.n_tokens);
}

void set_bits(uint8_t* bits, const std::vector<int32_t>& idx, const uint8_t* select) {
  for (size_t i = 0; i < idx.size(); ++i) {
    if (!select || select[i]) bits[size_t(idx[i]) / 8] |= uint8_t(1u << (size_t(idx[i]) % 8));
  }
}
}  // namespace

TraceWriter::TraceWriter(const std::string& path, const TraceHeader& h) : path_(path), h_(h) {
  out_ = std::make_unique<OutputFile>(path);
  uint8_t b[kHeaderBytes];
  h_.n_tokens = 0;
  encode_header(h_, b);
  out_->write(b, kHeaderBytes);
}

TraceWriter::~TraceWriter() = default;

void TraceWriter::add_layer(uint32_t pos, uint32_t layer, const std::vector<int32_t>& up,
                            const std::vector<int32_t>& down, const uint8_t* up_hits,
                            const uint8_t* down_hits) {
  const size_t ub = h_.up_bytes(), db = h_.down_bytes();
  std::vector<uint8_t>& record = pending_[pos];
  if (record.empty()) record.assign(h_.record_bytes(), 0);
  uint8_t* p = record.data() + size_t(layer) * (ub + db);
  set_bits(p, up, nullptr);
  set_bits(p + ub, down, nullptr);
  if (h_.has_hits()) {
    uint8_t* q = record.data() + size_t(h_.n_layer) * (ub + db) + size_t(layer) * (ub + db);
    if (up_hits) set_bits(q, up, up_hits);
    if (down_hits) set_bits(q + ub, down, down_hits);
  }
  if (layer + 1 == h_.n_layer) {
    out_->write(record.data(), record.size());
    ++h_.n_tokens;
    pending_.erase(pos);
  }
}

void TraceWriter::close() {
  if (!out_) return;
  uint8_t b[kHeaderBytes];
  encode_header(h_, b);
  if (std::fflush(out_->stream()) != 0) fail("{}: write failed", path_);
  out_->pwrite_all(b, kHeaderBytes, 0);
  out_->commit();
  out_.reset();
}

Trace read_trace(const std::string& path) {
  std::FILE* f = ::fdopen(open_regular_file(path), "rb");
  if (!f) fail("{}: cannot open the trace file", path);
  uint8_t b[kHeaderBytes];
  const size_t got = std::fread(b, 1, kHeaderBytes, f);
  auto bad = [&](const std::string& why) {
    std::fclose(f);
    fail("{}: {}", path, why);
  };
  if (got != kHeaderBytes) bad("too short for a trace header (truncated?)");
  if (std::memcmp(b, kMagic, 8) != 0) bad("not a dip trace (bad magic)");
  Trace t;
  TraceHeader& h = t.header;
  h.version = get32(b + 8);
  if (h.version != 1) bad("trace version " + std::to_string(h.version) + " is not supported (1)");
  h.n_layer = get32(b + 12);
  h.n_embd = get32(b + 16);
  h.n_ff = get32(b + 20);
  h.flags = get32(b + 24);
  const uint32_t m = get32(b + 28);
  if (m > 5) bad("unknown method id " + std::to_string(m));
  h.method = Method(m);
  h.mlp_density = getf(b + 32);
  h.gamma = getf(b + 36);
  h.cache_fraction = getf(b + 40);
  h.n_tokens = get64(b + 48);
  if (h.n_layer == 0 || h.n_layer > 4096 || h.n_embd == 0 || h.n_embd > (1u << 20) || h.n_ff == 0 ||
      h.n_ff > (1u << 22)) {
    bad("absurd shape in the trace header");
  }
  std::fseek(f, 0, SEEK_END);
  const long size = std::ftell(f);
  const uint64_t body = uint64_t(size) - kHeaderBytes;
  if (h.n_tokens > body / h.record_bytes() || body != h.n_tokens * h.record_bytes()) {
    bad("size " + std::to_string(size) + " does not match " + std::to_string(h.n_tokens) +
        " token records (truncated or corrupt)");
  }
  t.records.resize(body);
  std::fseek(f, long(kHeaderBytes), SEEK_SET);
  if (body && std::fread(t.records.data(), 1, body, f) != body) bad("read failed");
  std::fclose(f);
  return t;
}

}  // namespace dip
