// Reads of weight columns from the flash image: O_DIRECT (the page cache would hold the model
// outside the DRAM budget and hide the flash cost), through io_uring with a whole batch of a
// layer's missing columns submitted at once and columns near each other in the file coalesced
// into one read; pread where io_uring is not available (then reads happen at submit time).
// A coalesced read whose columns go to scattered buffers (cache slots) lands in one contiguous
// bounce buffer and is copied out when it completes: a virtual disk pays for every separate
// memory segment of a request about as much as for a request (FlashStore::kBounceBytes).
// An optional throttle makes this disk behave like a slower flash: a batch completes no earlier
// than its bytes at the emulated bandwidth (batches queue behind each other) plus a latency per
// round of queue-depth requests.
#pragma once
#include <liburing.h>
#include <sys/uio.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "util/huge_buffer.h"

namespace dip {

enum class FlashIo { kAuto, kUring, kPread };

struct FlashStoreOptions {
  FlashIo io = FlashIo::kAuto;
  bool direct = true;         // O_DIRECT; false reads through the page cache (not a real flash run)
  double bandwidth = 0;       // emulated flash read bandwidth in bytes/s; 0: the device's own
  double latency_s = 0;       // emulated per-request latency
  uint32_t queue_depth = 64;  // requests in flight
  uint32_t align = 512;       // the image's column alignment (checked against the device's)
  // Two reads whose gap in the file is at most this many bytes become one request that reads
  // the gap too (into the bounce buffer): on flash a request costs about as much as tens of KiB
  // of transfer, so reading a small gap is cheaper than a second request. 0: exact reads only.
  uint32_t max_gap = 0;
  // Check every column read against the image's checksum before it is used (FlashColumns).
  bool verify_columns = true;
};

// One column (or any aligned range) to read: `bytes` at file `offset` into `dst`.
struct ColumnRead {
  uint64_t offset;
  uint32_t bytes;
  uint8_t* dst;
};

struct FlashStats {
  uint64_t bytes = 0;             // bytes read (gaps included)
  uint64_t gap_bytes = 0;         // bytes read only to join two requests
  uint64_t columns = 0;           // column reads asked for
  uint64_t requests = 0;          // read requests after coalescing
  uint64_t bounced_requests = 0;  // of them, read into the bounce buffer and copied out
  uint64_t batches = 0;
  double wait_s = 0;       // time blocked in wait() (including the throttle)
  double throttle_s = 0;   // part of wait_s spent only because of the emulated bandwidth/latency
  double read_busy_s = 0;  // sum over batches of (completion - submission), real I/O
};

class FlashStore {
 public:
  FlashStore(const std::string& path, const FlashStoreOptions& opts);
  ~FlashStore();
  FlashStore(const FlashStore&) = delete;
  FlashStore& operator=(const FlashStore&) = delete;

  // Starts reading `reads` (any order; sorted here). Offsets, lengths and destinations must be
  // multiples of the alignment for O_DIRECT. Returns a ticket for wait().
  uint32_t submit(std::vector<ColumnRead>& reads);
  // Blocks until every read of the ticket is in its destination (and the emulated flash would
  // have delivered it). An I/O error or short read is an Error naming the file and offset.
  void wait(uint32_t ticket);
  // Without blocking: handles the reads that have completed and queues more of the outstanding
  // batches in their place, so the device stays busy while the caller computes between waits.
  void poll();

  const FlashStats& stats() const { return stats_; }
  void reset_stats() { stats_ = {}; }
  const char* mode() const;
  const std::string& path() const { return path_; }

  // The bounce buffer: requests whose columns go to more than one memory segment are read into
  // it whole (gaps included) and copied out, so the device sees one segment per request. A
  // virtio disk here served about 150k segments/s whatever their grouping: 64 KiB as 64
  // scattered 1 KiB segments read at an eighth of the speed of one 64 KiB segment.
  static constexpr uint64_t kBounceBytes = 2u << 20;
  // The largest request with more than one segment (it must fit the bounce buffer with room
  // for others in flight).
  static constexpr uint64_t kMaxBouncedRequestBytes = 256u << 10;

 private:
  using Clock = std::chrono::steady_clock;
  struct Request {
    uint64_t offset;
    uint32_t bytes;
    uint32_t iov_begin, iov_count;  // iovecs with a null base are gaps (not copied out)
    bool bounced = false;           // more than one segment: read via the bounce buffer
    uint32_t bounce_at = 0;         // its place there while in flight
  };
  struct Batch {
    uint32_t ticket = 0;
    uint32_t remaining = 0;
    Clock::time_point submitted, emulated_done;
    bool real_done_noted = false;
    std::vector<Request> requests;
    std::vector<iovec> iovs;
    size_t next_to_queue = 0;  // requests not yet in the submission queue
  };
  Batch* find(uint32_t ticket);
  void queue_requests();
  // Handles every completion that is there; with `block`, waits for at least one first.
  void reap(bool block = true);
  void run_pread(Batch& b);
  // Bounce buffer regions of the requests in flight, in the order they were taken (a ring).
  struct BounceRegion {
    uint32_t at, bytes;
    bool done;
  };
  bool take_bounce(uint32_t bytes, uint32_t& at);
  void release_bounce(uint32_t at);
  void copy_out(const Batch& b, const Request& r, const uint8_t* src) const;

  std::string path_;
  FlashStoreOptions opts_;
  int fd_ = -1;
  bool uring_ = false;
  io_uring ring_{};
  uint32_t in_flight_ = 0;
  uint32_t next_ticket_ = 1;
  std::vector<Batch> batches_;  // outstanding, in submission order
  HugeBuffer bounce_;
  std::deque<BounceRegion> bounce_regions_;  // oldest first
  uint32_t bounce_head_ = 0;                 // where the next region starts
  Clock::time_point busy_until_{};
  FlashStats stats_;
};

// Bytes per unit: B, KB/kB/MB/GB (SI), KiB/MiB/GiB (binary), the bare letters K/M/G as SI or
// (bare_binary) binary, "" as 1; 0 for anything else.
double byte_unit(const std::string& unit, bool bare_binary);
// Parses "1GB/s", "500MB/s", "1.5GiB/s", "800M" (bytes per second; SI and binary units).
double parse_bandwidth(const std::string& s);
// Parses "50us", "0.1ms", "0" (seconds).
double parse_duration(const std::string& s);

}  // namespace dip
