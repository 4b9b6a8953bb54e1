#include "flash/flash_store.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <fstream>
#include <iostream>

#include "test_models.h"
#include "util/huge_buffer.h"

namespace dip {
namespace {

std::string random_file(size_t bytes, std::vector<uint8_t>& content) {
  content.resize(bytes);
  for (auto& b : content) b = uint8_t(rng()());
  const std::string p = temp_path("store.bin");
  std::ofstream(p, std::ios::binary)
      .write(reinterpret_cast<const char*>(content.data()), std::streamsize(bytes));
  return p;
}

// The back ends this kernel offers: pread always, io_uring where io_uring_setup works (not under
// qemu-user, nor where the kernel disables it). Where it does not, asking for it by name is a
// clear error naming the file, which is checked here instead.
std::vector<FlashIo> io_backends(const std::string& file) {
  io_uring ring{};
  if (io_uring_queue_init(4, &ring, 0) == 0) {
    io_uring_queue_exit(&ring);
    return {FlashIo::kUring, FlashIo::kPread};
  }
  FlashStoreOptions o;
  o.io = FlashIo::kUring;
  expect_error([&] { FlashStore store(file, o); }, "io_uring is not available here");
  std::cout << "io_uring is not available here: pread only\n";
  return {FlashIo::kPread};
}

// Random sets of aligned "columns" (some adjacent, some a gap apart, which coalesce), several
// batches in flight, through io_uring and pread: every destination holds the file's bytes.
// Destinations in another order than the file make requests of many segments, which go through
// the bounce buffer; with a deep queue and gaps, more bytes are in flight than it holds, so its
// ring wraps and requests wait for room. Destinations in the file's order make one segment.
TEST(FlashStore, ReadsLandWhereAskedAndNearOnesCoalesce) {
  std::vector<uint8_t> content;
  const size_t col = 1536, n_cols = 3000;  // 3 x 512
  const std::string p = random_file(col * n_cols, content);
  for (FlashIo io : io_backends(p)) {
    for (auto [gap, depth] : {std::pair<uint32_t, uint32_t>{0, 8}, {2 * 1536, 64}}) {
      FlashStoreOptions o;
      o.io = io;
      o.queue_depth = depth;  // 8: fewer than a batch's requests, the store must queue the rest
      o.max_gap = gap;
      FlashStore store(p, o);
      HugeBuffer dst(3 * n_cols * col);
      for (int round = 0; round < 6; ++round) {
        std::vector<uint32_t> tickets;
        std::vector<std::vector<std::pair<size_t, size_t>>> asked(3);  // (column, slot)
        for (int b = 0; b < 3; ++b) {
          const bool file_order = b == 1;
          std::vector<ColumnRead> reads;
          for (size_t c = 0; c < n_cols; ++c) {
            if (rng()() % 3 == 0) {
              const size_t slot = b * n_cols + (file_order ? c : n_cols - 1 - c);
              reads.push_back({uint64_t(c * col), uint32_t(col), dst.data() + slot * col});
              asked[b].push_back({c, slot});
            }
          }
          std::shuffle(reads.begin(), reads.end(), rng());
          tickets.push_back(store.submit(reads));
        }
        for (int b = 2; b >= 0; --b) {  // waited out of order
          store.wait(tickets[b]);
          for (auto [c, slot] : asked[b]) {
            ASSERT_EQ(std::memcmp(dst.data() + slot * col, &content[c * col], col), 0)
                << store.mode() << " gap " << gap << " column " << c;
          }
        }
      }
      const FlashStats& st = store.stats();
      EXPECT_LT(st.requests, gap ? st.columns / 2 : st.columns) << "near columns are coalesced";
      EXPECT_GT(st.bounced_requests, 0u);
      EXPECT_LT(st.bounced_requests, st.requests) << "file-order destinations: one segment";
      EXPECT_EQ(st.bytes, st.columns * col + st.gap_bytes);
      if (gap) {
        EXPECT_GT(st.gap_bytes, 0u);
      }
    }
  }
}

// Columns adjacent in the file and in memory are one segment: nothing is bounced, even when a
// run is longer than a bounced request may be.
TEST(FlashStore, ContiguousRunsAreReadInPlace) {
  std::vector<uint8_t> content;
  const std::string p = random_file(2 << 20, content);
  FlashStoreOptions o;
  o.max_gap = 4096;
  FlashStore store(p, o);
  HugeBuffer dst(2 << 20);
  std::vector<ColumnRead> reads;
  for (size_t i = 0; i < 512; ++i) reads.push_back({i * 4096, 4096, dst.data() + i * 4096});
  store.wait(store.submit(reads));
  EXPECT_EQ(std::memcmp(dst.data(), content.data(), 2 << 20), 0);
  EXPECT_EQ(store.stats().requests, 1u);
  EXPECT_EQ(store.stats().bounced_requests, 0u);
}

TEST(FlashStore, ThrottleHoldsTheEmulatedBandwidth) {
  std::vector<uint8_t> content;
  const std::string p = random_file(4 << 20, content);
  FlashStoreOptions o;
  o.bandwidth = 100e6;  // 4 MiB at 100 MB/s: >= 42 ms
  FlashStore store(p, o);
  HugeBuffer dst(4 << 20);
  std::vector<ColumnRead> reads;
  for (size_t i = 0; i < 64; ++i) reads.push_back({i * 65536, 65536, dst.data() + i * 65536});
  const auto t0 = std::chrono::steady_clock::now();
  store.wait(store.submit(reads));
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_GE(s, 0.0419);
  EXPECT_LT(s, 1.0);
  EXPECT_GT(store.stats().throttle_s, 0.0);
  EXPECT_EQ(std::memcmp(dst.data(), content.data(), 4 << 20), 0);
}

// A flash image that shrinks under a running store: a clear error naming file and offset.
TEST(FlashStore, ShortReadIsAnError) {
  std::vector<uint8_t> probe;
  for (FlashIo io : io_backends(random_file(4096, probe))) {
    std::vector<uint8_t> content;
    const std::string p = random_file(1 << 20, content);
    FlashStoreOptions o;
    o.io = io;
    FlashStore store(p, o);
    ASSERT_EQ(::truncate(p.c_str(), 1 << 19), 0);
    HugeBuffer dst(1 << 20);
    std::vector<ColumnRead> reads = {{(1 << 20) - 4096, 4096, dst.data()}};
    expect_error([&] { store.wait(store.submit(reads)); }, "truncated");
  }
}

TEST(FlashStore, UnitsParse) {
  EXPECT_DOUBLE_EQ(parse_bandwidth("1GB/s"), 1e9);
  EXPECT_DOUBLE_EQ(parse_bandwidth("500MB/s"), 5e8);
  EXPECT_DOUBLE_EQ(parse_bandwidth("1.5GiB/s"), 1.5 * 1073741824.0);
  EXPECT_DOUBLE_EQ(parse_duration("50us"), 50e-6);
  EXPECT_DOUBLE_EQ(parse_duration("0"), 0.0);
  expect_error([] { parse_bandwidth("0GB/s"); }, "not in");
  expect_error([] { parse_bandwidth("fast"); }, "bad bandwidth");
  expect_error([] { parse_bandwidth("1XB/s"); }, "bad bandwidth");
  expect_error([] { parse_duration("5 parsecs"); }, "bad duration");
  expect_error([] { parse_duration("-1ms"); }, "not in");
  expect_error([] { FlashStore s(temp_path("nope.bin"), FlashStoreOptions{}); }, "cannot open");
}

}  // namespace
}  // namespace dip
