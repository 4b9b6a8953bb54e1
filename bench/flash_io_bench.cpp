// Flash store throughput on the engine's read pattern: batches of random columns of one kind
// (a layer's misses), submitted as one batch and waited for, through FlashStore (O_DIRECT,
// io_uring, coalescing), and the same file read by fio with the same block size and queue
// depth (random reads, O_DIRECT, io_uring) as the device's reference.
//
//   flash_io_bench IMAGE [seconds=3] [--json]
//
// Prints a table: kind, column bytes, queue depth, columns per batch, our MB/s and IOPS, the
// host CPU time per read request (user + system time of the process over its requests: the
// system calls, block layer and completions a request costs the engine), fio's MB/s and IOPS,
// and the ratio (bytes read per second of waiting, ours / fio's). --json: one JSON object per
// configuration instead (for the simulator cross-check's request term).
#include <fmt/format.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "flash/flash_image.h"
#include "flash/flash_store.h"
#include "util/huge_buffer.h"

namespace {

struct Rate {
  double mbps = 0, iops = 0, cpu_us_per_request = 0;
};

double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         1e-6 * double(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

Rate ours(const dip::FlashImage& img, bool up, uint32_t qd, size_t batch, double seconds,
          std::mt19937_64& rng) {
  dip::FlashStoreOptions o;
  o.queue_depth = qd;
  o.align = img.header().align;
  dip::FlashStore store(img.path(), o);
  const auto& h = img.header();
  const size_t n_cols = up ? h.n_embd : h.n_ff;
  const uint64_t stride = up ? h.up_col_stride : h.down_col_stride;
  dip::HugeBuffer dst(batch * stride);
  std::vector<uint32_t> cols(n_cols);
  for (size_t i = 0; i < n_cols; ++i) cols[i] = uint32_t(i);
  std::vector<dip::ColumnRead> reads;
  const auto t0 = std::chrono::steady_clock::now();
  const double cpu0 = cpu_seconds();
  double waited = 0;
  while (std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() < seconds) {
    const uint32_t layer = uint32_t(rng() % h.n_layer);
    std::shuffle(cols.begin(), cols.end(), rng);  // a random subset, as a layer's misses
    reads.clear();
    for (size_t i = 0; i < batch; ++i) {
      const uint64_t off = up ? img.up_offset(layer, cols[i]) : img.down_offset(layer, cols[i]);
      reads.push_back({off, uint32_t(stride), dst.data() + i * stride});
    }
    const auto t1 = std::chrono::steady_clock::now();
    store.wait(store.submit(reads));
    waited += std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
  }
  const double cpu = cpu_seconds() - cpu0;
  const auto& s = store.stats();
  return {double(s.bytes) / waited / 1e6, double(s.requests) / waited,
          1e6 * cpu / double(std::max<uint64_t>(1, s.requests))};
}

Rate fio(const std::string& path, uint64_t bs, uint32_t qd, double seconds) {
  const std::string cmd = fmt::format(
      "fio --name=r --filename='{}' --rw=randread --bs={} --iodepth={} --ioengine=io_uring "
      "--direct=1 "
      "--runtime={} --time_based --output-format=json 2>/dev/null",
      path, bs, qd, seconds);
  std::unique_ptr<FILE, int (*)(FILE*)> p(popen(cmd.c_str(), "r"), pclose);
  if (!p) return {};
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p.get())) > 0) out.append(buf, n);
  const auto j = nlohmann::json::parse(out, nullptr, false);
  if (j.is_discarded() || !j.contains("jobs")) return {};
  const auto& r = j["jobs"][0]["read"];
  return {r["bw_bytes"].get<double>() / 1e6, r["iops"].get<double>()};
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: flash_io_bench IMAGE [seconds=3] [--json]\n");
    return 2;
  }
  try {
    const dip::FlashImage img(argv[1]);
    const bool json = argc > 3 && std::string(argv[3]) == "--json";
    const double seconds = argc > 2 ? std::atof(argv[2]) : 3.0;
    if (!(seconds > 0) || (argc > 3 && !json)) {
      std::fprintf(stderr, "usage: flash_io_bench IMAGE [seconds=3] [--json]\n");
      return 2;
    }
    const bool have_fio = !json && std::system("command -v fio >/dev/null 2>&1") == 0;
    if (!have_fio && !json)
      std::fprintf(stderr, "fio is not installed (apt install fio): its columns stay empty\n");
    std::mt19937_64 rng(7);
    if (!json) {
      std::printf(
          "| kind | column bytes | queue depth | columns per batch | dip MB/s | dip IOPS | dip CPU "
          "us/request | fio MB/s | fio IOPS | dip / fio |\n");
      std::printf("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n");
    }
    for (bool up : {true, false}) {
      const uint64_t stride = up ? img.header().up_col_stride : img.header().down_col_stride;
      for (uint32_t qd : {32u, 64u, 128u}) {
        for (size_t batch : {size_t(256), size_t(1024)}) {
          const Rate a = ours(img, up, qd,
                              std::min<size_t>(batch, up ? img.header().n_embd : img.header().n_ff),
                              seconds, rng);
          if (json) {
            std::printf("%s\n", nlohmann::json({{"kind", up ? "up+gate" : "down"},
                                                {"column_bytes", stride},
                                                {"queue_depth", qd},
                                                {"batch", batch},
                                                {"mbps", a.mbps},
                                                {"iops", a.iops},
                                                {"cpu_us_per_request", a.cpu_us_per_request}})
                                    .dump()
                                    .c_str());
            std::fflush(stdout);
            continue;
          }
          const Rate f = have_fio ? fio(img.path(), stride, qd, seconds) : Rate{};
          std::printf("| %s | %llu | %u | %zu | %.0f | %.0f | %.1f | %.0f | %.0f | %s |\n",
                      up ? "up+gate" : "down", (unsigned long long)stride, qd, batch, a.mbps,
                      a.iops, a.cpu_us_per_request, f.mbps, f.iops,
                      f.mbps > 0 ? fmt::format("{:.2f}", a.mbps / f.mbps).c_str() : "-");
          std::fflush(stdout);
        }
      }
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "flash_io_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
