// What a read request's memory layout costs the device: random O_DIRECT reads of a file (a
// flash image) through io_uring at a fixed queue depth, each request either into one buffer or
// split into k pieces that land in scattered places (as a vectored read into cache slots
// would). A virtual disk may serve each memory segment about like a request; this is why
// FlashStore reads a request of several segments into one bounce buffer and copies it out.
//
//   flash_segments_bench FILE [seconds per configuration=1] [rounds=3]
//
// Prints a table: request bytes, pieces, layout, requests/s, MB/s, segments/s, and the speed
// against the same requests into one buffer (medians of the rounds, configurations
// interleaved within each round).
#include <fcntl.h>
#include <fmt/format.h>
#include <liburing.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "util/huge_buffer.h"

namespace {

struct Config {
  uint32_t bytes, pieces;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Requests per second for `seconds` of reads of c.bytes at random aligned offsets, each into
// c.pieces iovecs (one buffer when 1; else pieces two piece-lengths apart, so no two are
// adjacent in memory).
double requests_per_s(int fd, uint64_t file_bytes, const Config& c, double seconds,
                      std::mt19937_64& rng) {
  constexpr uint32_t kDepth = 64;
  io_uring ring{};
  if (io_uring_queue_init(kDepth, &ring, 0) != 0) {
    std::fprintf(stderr, "flash_segments_bench: io_uring is not available\n");
    std::exit(1);
  }
  const uint32_t piece = c.bytes / c.pieces;
  dip::HugeBuffer buf(size_t(kDepth) * c.bytes * 2);
  std::vector<iovec> iov(size_t(kDepth) * c.pieces);
  for (uint32_t s = 0; s < kDepth; ++s) {
    for (uint32_t i = 0; i < c.pieces; ++i) {
      uint8_t* base = buf.data() + size_t(s) * c.bytes * 2;
      iov[s * c.pieces + i] = {base + size_t(i) * piece * (c.pieces > 1 ? 2 : 1), piece};
    }
  }
  const uint64_t slots = (file_bytes - c.bytes) / 4096;
  uint64_t done = 0;
  uint32_t in_flight = 0;
  std::vector<uint32_t> free_slots;
  for (uint32_t s = 0; s < kDepth; ++s) free_slots.push_back(s);
  const auto t0 = std::chrono::steady_clock::now();
  auto elapsed = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
  while (elapsed() < seconds || in_flight > 0) {
    while (!free_slots.empty() && elapsed() < seconds) {
      const uint32_t s = free_slots.back();
      free_slots.pop_back();
      io_uring_sqe* sqe = io_uring_get_sqe(&ring);
      io_uring_prep_readv(sqe, fd, &iov[s * c.pieces], c.pieces, (rng() % slots) * 4096);
      io_uring_sqe_set_data64(sqe, s);
      ++in_flight;
    }
    io_uring_submit(&ring);
    io_uring_cqe* cqe = nullptr;
    if (io_uring_wait_cqe(&ring, &cqe) != 0) break;
    if (cqe->res < 0) {
      std::fprintf(stderr, "flash_segments_bench: read failed: %s\n", std::strerror(-cqe->res));
      std::exit(1);
    }
    free_slots.push_back(uint32_t(io_uring_cqe_get_data64(cqe)));
    io_uring_cqe_seen(&ring, cqe);
    --in_flight;
    ++done;
  }
  const double s = elapsed();
  io_uring_queue_exit(&ring);
  return double(done) / s;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: flash_segments_bench FILE [seconds=1] [rounds=3]\n");
    return 2;
  }
  const double seconds = argc > 2 ? std::atof(argv[2]) : 1.0;
  const int rounds = argc > 3 ? std::atoi(argv[3]) : 3;
  if (!(seconds > 0 && seconds <= 60) || rounds < 1 || rounds > 100) {
    std::fprintf(stderr, "flash_segments_bench: seconds must be in (0, 60], rounds in [1, 100]\n");
    return 2;
  }
  const int fd = ::open(argv[1], O_RDONLY | O_DIRECT);
  if (fd < 0) {
    std::fprintf(stderr, "flash_segments_bench: %s: %s\n", argv[1], std::strerror(errno));
    return 1;
  }
  const uint64_t file_bytes = uint64_t(::lseek(fd, 0, SEEK_END));
  const std::vector<Config> configs = {{16384, 1},  {16384, 4},   {16384, 16},
                                       {65536, 1},  {65536, 16},  {65536, 64},
                                       {262144, 1}, {262144, 64}, {262144, 256}};
  if (file_bytes < 64u * 262144) {
    std::fprintf(stderr, "flash_segments_bench: %s: the file is too small (16 MiB at least)\n",
                 argv[1]);
    return 1;
  }
  std::mt19937_64 rng(1);
  std::vector<std::vector<double>> rate(configs.size());
  for (int r = 0; r < rounds; ++r) {
    for (size_t i = 0; i < configs.size(); ++i)
      rate[i].push_back(requests_per_s(fd, file_bytes, configs[i], seconds, rng));
    std::fprintf(stderr, "\rround %d/%d", r + 1, rounds);
  }
  std::fprintf(stderr, "\n");
  ::close(fd);
  fmt::print(
      "| request | pieces | layout | requests/s | MB/s | segments/s | vs one buffer |\n"
      "| --- | --- | --- | --- | --- | --- | --- |\n");
  double one_buffer = 0;
  for (size_t i = 0; i < configs.size(); ++i) {
    const Config& c = configs[i];
    const double rps = median(rate[i]);
    if (c.pieces == 1) one_buffer = rps;
    fmt::print("| {} KiB | {} | {} | {:.0f} | {:.0f} | {:.0f} | {:.2f}x |\n", c.bytes / 1024,
               c.pieces, c.pieces == 1 ? "one buffer" : "scattered", rps, rps * c.bytes / 1e6,
               rps * c.pieces, rps / one_buffer);
  }
  return 0;
}
