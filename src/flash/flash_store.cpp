#include "flash/flash_store.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "util/error.h"
#include "util/progress.h"

namespace dip {

namespace {
// A request of one memory segment (columns adjacent in the file and in memory).
constexpr uint64_t kMaxRequestBytes = 4u << 20;

double secs(std::chrono::steady_clock::duration d) {
  return std::chrono::duration<double>(d).count();
}
}  // namespace

FlashStore::FlashStore(const std::string& path, const FlashStoreOptions& opts)
    : path_(path), opts_(opts) {
  if (opts_.bandwidth < 0 || !std::isfinite(opts_.bandwidth))
    fail("flash bandwidth must be positive");
  if (opts_.latency_s < 0 || !std::isfinite(opts_.latency_s))
    fail("flash latency must not be negative");
  if (opts_.queue_depth == 0 || opts_.queue_depth > 4096)
    fail("flash queue depth {} is not in [1, 4096]", opts_.queue_depth);
  if (opts_.max_gap % opts_.align != 0 || opts_.max_gap > (16u << 20)) {
    fail("flash read gap {} must be a multiple of the alignment {} and at most 16 MiB",
         opts_.max_gap, opts_.align);
  }
  bounce_ = HugeBuffer(kBounceBytes);
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | (opts_.direct ? O_DIRECT : 0));
  if (fd_ < 0 && opts_.direct && errno == EINVAL) {
    fail(
        "{}: the file system does not support direct I/O (O_DIRECT); put the flash image on a "
        "disk, or pass "
        "--flash-buffered to read through the page cache (then repeated reads are not real flash "
        "reads)",
        path);
  }
  if (fd_ < 0) fail("{}: cannot open the flash image: {}", path, std::strerror(errno));
#ifdef STATX_DIOALIGN
  if (opts_.direct) {
    struct statx sx {};
    if (::statx(fd_, "", AT_EMPTY_PATH, STATX_DIOALIGN, &sx) == 0 &&
        (sx.stx_mask & STATX_DIOALIGN) && sx.stx_dio_offset_align > opts_.align) {
      const uint32_t need = sx.stx_dio_offset_align;
      ::close(fd_);
      fail(
          "{}: the device needs {}-byte aligned direct reads but the image's columns are {}-byte "
          "aligned: "
          "convert again with --flash-align {}",
          path, need, opts_.align, need);
    }
  }
#endif
  if (opts_.io != FlashIo::kPread) {
    const int r = io_uring_queue_init(opts_.queue_depth, &ring_, 0);
    if (r == 0) {
      uring_ = true;
    } else if (opts_.io == FlashIo::kUring) {
      ::close(fd_);
      fail("{}: io_uring is not available here: {}", path, std::strerror(-r));
    } else {
      print_note(
          fmt::format("dip: io_uring is not available ({}); reading the flash image with pread",
                      std::strerror(-r)));
    }
  }
}

FlashStore::~FlashStore() {
  // Outstanding reads target buffers the caller may free: drain them first.
  try {
    while (uring_ && in_flight_ > 0) reap();
  } catch (...) {
  }
  if (uring_) io_uring_queue_exit(&ring_);
  if (fd_ >= 0) ::close(fd_);
}

const char* FlashStore::mode() const {
  if (uring_) return opts_.direct ? "io_uring, O_DIRECT" : "io_uring, buffered";
  return opts_.direct ? "pread, O_DIRECT" : "pread, buffered";
}

FlashStore::Batch* FlashStore::find(uint32_t ticket) {
  for (auto& b : batches_) {
    if (b.ticket == ticket) return &b;
  }
  return nullptr;
}

uint32_t FlashStore::submit(std::vector<ColumnRead>& reads) {
  std::sort(reads.begin(), reads.end(),
            [](const ColumnRead& a, const ColumnRead& b) { return a.offset < b.offset; });
  Batch b;
  b.ticket = next_ticket_++;
  if (next_ticket_ == 0) next_ticket_ = 1;
  b.iovs.reserve(reads.size());
  uint64_t bytes = 0;
  for (const ColumnRead& r : reads) {
    if (opts_.direct && ((r.offset | r.bytes | uintptr_t(r.dst)) % opts_.align) != 0) {
      fail("internal: unaligned direct read of {} bytes at offset {}", r.bytes, r.offset);
    }
    Request* last = b.requests.empty() ? nullptr : &b.requests.back();
    const uint64_t end = last ? last->offset + last->bytes : 0;
    const uint64_t gap = last && r.offset >= end ? r.offset - end : UINT64_MAX;
    if (last && gap <= opts_.max_gap) {
      // Joined: one segment while the columns follow each other in memory too, else bounced.
      const iovec& tail = b.iovs.back();
      const bool same_segment = gap == 0 && !last->bounced &&
                                static_cast<uint8_t*>(tail.iov_base) + tail.iov_len == r.dst;
      const uint64_t limit = same_segment ? kMaxRequestBytes : kMaxBouncedRequestBytes;
      if (last->bytes + gap + uint64_t(r.bytes) <= limit) {
        if (gap > 0) {
          b.iovs.push_back({nullptr, size_t(gap)});
          ++last->iov_count;
          last->bytes += uint32_t(gap);
          bytes += gap;
          stats_.gap_bytes += gap;
        }
        if (same_segment) {
          b.iovs.back().iov_len += r.bytes;
        } else {
          b.iovs.push_back({r.dst, r.bytes});
          ++last->iov_count;
          last->bounced = true;
        }
        last->bytes += r.bytes;
        bytes += r.bytes;
        continue;
      }
    }
    b.requests.push_back({r.offset, r.bytes, uint32_t(b.iovs.size()), 1});
    b.iovs.push_back({r.dst, r.bytes});
    bytes += r.bytes;
  }
  for (const Request& r : b.requests) stats_.bounced_requests += r.bounced;
  b.remaining = uint32_t(b.requests.size());
  b.submitted = Clock::now();
  // The emulated flash: bandwidth is shared by consecutive batches, latency is paid once per
  // round of queue_depth requests.
  const auto start = std::max(b.submitted, busy_until_);
  if (opts_.bandwidth > 0) {
    busy_until_ = start + std::chrono::duration_cast<Clock::duration>(
                              std::chrono::duration<double>(double(bytes) / opts_.bandwidth));
  }
  const double rounds = std::ceil(double(b.requests.size()) / double(opts_.queue_depth));
  b.emulated_done = (opts_.bandwidth > 0 ? busy_until_ : b.submitted) +
                    std::chrono::duration_cast<Clock::duration>(
                        std::chrono::duration<double>(rounds * opts_.latency_s));
  stats_.bytes += bytes;
  stats_.columns += reads.size();
  stats_.requests += b.requests.size();
  stats_.batches++;
  const uint32_t ticket = b.ticket;
  if (b.remaining == 0) {
    b.real_done_noted = true;
    batches_.push_back(std::move(b));
    return ticket;
  }
  if (!uring_) {
    run_pread(b);
    batches_.push_back(std::move(b));
    return ticket;
  }
  batches_.push_back(std::move(b));
  queue_requests();
  return ticket;
}

void FlashStore::run_pread(Batch& b) {
  for (const Request& r : b.requests) {
    uint8_t* dst = r.bounced ? bounce_.data() : static_cast<uint8_t*>(b.iovs[r.iov_begin].iov_base);
    uint64_t done = 0;
    while (done < r.bytes) {
      const ssize_t n = ::pread(fd_, dst + done, r.bytes - done, off_t(r.offset + done));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0)
        fail("{}: read of {} bytes at offset {} failed: {}", path_, r.bytes, r.offset,
             std::strerror(errno));
      if (n == 0)
        fail("{}: read of {} bytes at offset {} ended early: the file is truncated", path_, r.bytes,
             r.offset);
      done += uint64_t(n);
    }
    if (r.bounced) copy_out(b, r, dst);
  }
  b.remaining = 0;
  b.real_done_noted = true;
  stats_.read_busy_s += secs(Clock::now() - b.submitted);
}

void FlashStore::copy_out(const Batch& b, const Request& r, const uint8_t* src) const {
  for (uint32_t i = r.iov_begin; i < r.iov_begin + r.iov_count; ++i) {
    const iovec& v = b.iovs[i];
    if (v.iov_base) std::memcpy(v.iov_base, src, v.iov_len);
    src += v.iov_len;
  }
}

bool FlashStore::take_bounce(uint32_t bytes, uint32_t& at) {
  const uint32_t unit = std::max<uint32_t>(4096, opts_.align);
  const uint32_t need = (bytes + unit - 1) / unit * unit;
  const uint32_t cap = uint32_t(bounce_.size());
  if (bounce_regions_.empty()) {
    bounce_head_ = 0;
    at = 0;
  } else {
    const uint32_t tail = bounce_regions_.front().at;  // the oldest region in flight
    if (bounce_head_ > tail) {                         // free: [head, cap) and [0, tail)
      if (bounce_head_ + uint64_t(need) <= cap)
        at = bounce_head_;
      else if (need <= tail)
        at = 0;
      else
        return false;
    } else if (bounce_head_ + uint64_t(need) <= tail) {  // wrapped: free [head, tail)
      at = bounce_head_;
    } else {
      return false;
    }
  }
  if (need > cap) fail("internal: a bounced read of {} bytes is larger than the buffer", bytes);
  bounce_regions_.push_back({at, need, false});
  bounce_head_ = at + need;
  return true;
}

void FlashStore::release_bounce(uint32_t at) {
  for (auto& region : bounce_regions_) {
    if (region.at == at && !region.done) {
      region.done = true;
      break;
    }
  }
  while (!bounce_regions_.empty() && bounce_regions_.front().done) bounce_regions_.pop_front();
}

void FlashStore::queue_requests() {
  bool queued = false, room = true;
  for (auto it = batches_.begin(); room && it != batches_.end(); ++it) {
    Batch& b = *it;
    while (b.next_to_queue < b.requests.size() && in_flight_ < opts_.queue_depth &&
           io_uring_sq_space_left(&ring_) > 0) {
      Request& r = b.requests[b.next_to_queue];
      // In order: a bounced request waits for room rather than letting later ones pass it.
      if (r.bounced && !take_bounce(r.bytes, r.bounce_at)) {
        room = false;
        break;
      }
      uint8_t* dst = r.bounced ? bounce_.data() + r.bounce_at
                               : static_cast<uint8_t*>(b.iovs[r.iov_begin].iov_base);
      io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
      io_uring_prep_read(sqe, fd_, dst, r.bytes, r.offset);
      io_uring_sqe_set_data64(sqe, (uint64_t(b.ticket) << 32) | b.next_to_queue);
      ++b.next_to_queue;
      ++in_flight_;
      queued = true;
    }
  }
  if (queued) {
    const int r = io_uring_submit(&ring_);
    if (r < 0) fail("{}: io_uring submit failed: {}", path_, std::strerror(-r));
  }
}

void FlashStore::reap(bool block) {
  io_uring_cqe* cqe = nullptr;
  if (block) {
    int r = io_uring_wait_cqe(&ring_, &cqe);
    while (r == -EINTR) r = io_uring_wait_cqe(&ring_, &cqe);
    if (r < 0) fail("{}: io_uring wait failed: {}", path_, std::strerror(-r));
  }
  unsigned n = 0, head = 0;
  io_uring_for_each_cqe(&ring_, head, cqe) {
    ++n;
    const uint64_t ud = io_uring_cqe_get_data64(cqe);
    Batch* b = find(uint32_t(ud >> 32));
    --in_flight_;
    if (!b) continue;
    const Request& req = b->requests[uint32_t(ud)];
    if (cqe->res < 0) {
      io_uring_cq_advance(&ring_, n);
      fail("{}: read of {} bytes at offset {} failed: {}", path_, req.bytes, req.offset,
           std::strerror(-cqe->res));
    }
    if (uint32_t(cqe->res) != req.bytes) {
      // A short read: the file ends inside it (a regular file's O_DIRECT reads are not short
      // otherwise).
      io_uring_cq_advance(&ring_, n);
      fail("{}: read of {} bytes at offset {} returned {}: the file is truncated", path_, req.bytes,
           req.offset, cqe->res);
    }
    if (req.bounced) {
      copy_out(*b, req, bounce_.data() + req.bounce_at);
      release_bounce(req.bounce_at);
    }
    if (--b->remaining == 0) {
      b->real_done_noted = true;
      stats_.read_busy_s += secs(Clock::now() - b->submitted);
    }
  }
  io_uring_cq_advance(&ring_, n);
}

void FlashStore::poll() {
  if (!uring_ || in_flight_ == 0) return;
  reap(false);
  queue_requests();
}

void FlashStore::wait(uint32_t ticket) {
  const auto t0 = Clock::now();
  Batch* b = find(ticket);
  if (!b) fail("internal: unknown flash read ticket {}", ticket);
  while (b->remaining > 0) {
    queue_requests();
    reap();
    b = find(ticket);
  }
  const auto real = Clock::now();
  if (real < b->emulated_done) {
    std::this_thread::sleep_until(b->emulated_done);
    stats_.throttle_s += secs(Clock::now() - real);
  }
  batches_.erase(batches_.begin() + (b - batches_.data()));
  stats_.wait_s += secs(Clock::now() - t0);
}

namespace {
// Splits "12.5GB/s" into 12.5 and "GB/s".
double number_and_unit(const std::string& s, std::string& unit, const char* what) {
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (end == s.c_str() || !std::isfinite(v)) fail("bad {} '{}'", what, s);
  unit = std::string(end);
  return v;
}
}  // namespace

double byte_unit(const std::string& u, bool bare_binary) {
  if (u.empty() || u == "B") return 1;
  if (u == "K") return bare_binary ? 1024.0 : 1e3;
  if (u == "M") return bare_binary ? 1048576.0 : 1e6;
  if (u == "G") return bare_binary ? 1073741824.0 : 1e9;
  if (u == "KB" || u == "kB") return 1e3;
  if (u == "MB") return 1e6;
  if (u == "GB") return 1e9;
  if (u == "KiB") return 1024.0;
  if (u == "MiB") return 1048576.0;
  if (u == "GiB") return 1073741824.0;
  return 0;
}

double parse_bandwidth(const std::string& s) {
  std::string u;
  double v = number_and_unit(s, u, "bandwidth");
  if (u.size() >= 2 && u.substr(u.size() - 2) == "/s") u.resize(u.size() - 2);
  const double mul = byte_unit(u, false);
  if (mul == 0) fail("bad bandwidth '{}': use e.g. 1GB/s, 500MB/s, 1.5GiB/s", s);
  v *= mul;
  // Below 1 MB/s a run of even a small model would take hours: a typo, not a device.
  if (!(v >= 1e6) || v > 1e13) fail("bandwidth '{}' is not in [1 MB/s, 10 TB/s]", s);
  return v;
}

double parse_duration(const std::string& s) {
  std::string u;
  double v = number_and_unit(s, u, "duration");
  double mul = 0;
  if (u == "s" || (u.empty() && v == 0))
    mul = 1;
  else if (u == "ms")
    mul = 1e-3;
  else if (u == "us")
    mul = 1e-6;
  else if (u == "ns")
    mul = 1e-9;
  else
    fail("bad duration '{}': use e.g. 50us, 0.2ms", s);
  v *= mul;
  if (v < 0 || v > 10) fail("duration '{}' is not in [0, 10 s]", s);
  return v;
}

}  // namespace dip
