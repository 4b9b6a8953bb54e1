#include "flash/flash_probe.h"

#include <fmt/format.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "flash/flash_image.h"
#include "flash/flash_store.h"
#include "util/error.h"
#include "util/huge_buffer.h"
#include "util/output_file.h"

namespace dip {

namespace {

constexpr int kProbeFormat = 1;

double process_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

// Batches of `size`-byte reads at random aligned places of [begin, end) for `seconds`.
ProbePoint measure(FlashStore& store, uint32_t queue_depth, uint32_t size, uint64_t begin,
                   uint64_t end, double seconds, std::mt19937_64& rng) {
  store.reset_stats();
  // Enough requests per batch to keep the queue full. They all read into one buffer (the data is
  // not looked at): the probe runs inside a flash run, whose DRAM budget has no room for more.
  const size_t batch = std::max<size_t>(queue_depth, 256);
  // Every other place only: two reads of one batch are never adjacent (the store would join them).
  const uint64_t places = (end - begin) / size / 2;
  HugeBuffer dst(size, false);
  std::vector<ColumnRead> reads;
  const auto t0 = std::chrono::steady_clock::now();
  const double cpu0 = process_cpu_seconds();
  double waited = 0;
  do {
    reads.clear();
    for (size_t i = 0; i < batch; ++i)
      reads.push_back({begin + 2 * (rng() % places) * size, size, dst.data()});
    const auto t1 = std::chrono::steady_clock::now();
    store.wait(store.submit(reads));
    waited += std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
  } while (std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() < seconds);
  const double cpu = process_cpu_seconds() - cpu0;
  const FlashStats& s = store.stats();
  ProbePoint p;
  p.bytes = size;
  p.requests_per_s = double(s.requests) / waited;
  p.bytes_per_s = double(s.bytes) / waited;
  p.cpu_s_per_request = cpu / double(std::max<uint64_t>(1, s.requests));
  return p;
}

}  // namespace

uint32_t break_even_gap(double request_s, double bandwidth, uint32_t align) {
  align = std::max<uint32_t>(1, align);
  return uint32_t(std::min(request_s * bandwidth, double(16u << 20)) / align) * align;
}

void fit_probe(FlashProbe& p) {
  // Weighted least squares of y = a + b x (y: seconds per request, x: bytes) with weights 1/y^2.
  double sw = 0, sx = 0, sy = 0, sxx = 0, sxy = 0;
  for (const ProbePoint& q : p.points) {
    if (!(q.requests_per_s > 0)) continue;
    const double y = 1.0 / q.requests_per_s, x = double(q.bytes), w = 1.0 / (y * y);
    sw += w;
    sx += w * x;
    sy += w * y;
    sxx += w * x * x;
    sxy += w * x * y;
  }
  const double det = sw * sxx - sx * sx;
  double a = 0, b = 0;
  if (det > 0) {
    b = (sw * sxy - sx * sy) / det;
    a = (sy - b * sx) / sw;
  }
  if (!(b >
        0)) {  // rates that do not fall with the size: no fixed cost, bandwidth from the largest
    a = 0;
    const auto big =
        std::max_element(p.points.begin(), p.points.end(),
                         [](const auto& l, const auto& r) { return l.bytes < r.bytes; });
    b = big == p.points.end() || !(big->bytes_per_s > 0) ? 0 : 1.0 / big->bytes_per_s;
  }
  p.request_s = std::max(0.0, a);
  p.bandwidth = b > 0 ? 1.0 / b : 0;
  p.gap_bytes = break_even_gap(p.request_s, p.bandwidth, p.align);
  std::vector<double> cpu;
  for (const ProbePoint& q : p.points) cpu.push_back(q.cpu_s_per_request);
  std::sort(cpu.begin(), cpu.end());
  p.request_cpu_s = cpu.empty() ? 0 : cpu[cpu.size() / 2];
}

FlashProbe probe_flash(const FlashImage& img, const ProbeOptions& opts,
                       const std::function<void(size_t, size_t)>& progress) {
  if (!(opts.seconds > 0) || !std::isfinite(opts.seconds) || opts.seconds > 600)
    fail("{}: probe time {} s is not in (0, 600]", img.path(), opts.seconds);
  const FlashHeader& h = img.header();
  FlashProbe p;
  p.device = device_of(img.path());
  p.queue_depth = opts.queue_depth;
  p.align = h.align;
  FlashStoreOptions so;
  so.queue_depth = opts.queue_depth;
  so.align = h.align;
  so.verify_columns = false;
  so.direct = opts.direct;
  FlashStore store(img.path(), so);
  std::mt19937_64 rng(0x5eed);
  const uint64_t begin = h.data_offset, end = h.file_bytes;
  for (size_t i = 0; i < opts.sizes.size(); ++i) {
    const uint32_t size = opts.sizes[i];
    if (size % h.align || 2 * uint64_t(size) > end - begin) continue;  // too large for this image
    p.points.push_back(measure(store, so.queue_depth, size, begin, end,
                               opts.seconds / double(opts.sizes.size()), rng));
    if (progress) progress(i + 1, opts.sizes.size());
  }
  if (p.points.size() < 2)
    fail("{}: the image's column data ({} bytes) is too small to measure the device", img.path(),
         end - begin);
  fit_probe(p);
  return p;
}

std::string probe_path(const std::string& image_path) { return image_path + ".probe.json"; }

std::string device_of(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) fail("{}: {}", path, std::strerror(errno));
  return fmt::format("{}:{}", major(st.st_dev), minor(st.st_dev));
}

std::string probe_to_json(const FlashProbe& p) {
  nlohmann::json pts = nlohmann::json::array();
  for (const ProbePoint& q : p.points) {
    pts.push_back({{"bytes", q.bytes},
                   {"requests_per_s", q.requests_per_s},
                   {"bytes_per_s", q.bytes_per_s},
                   {"cpu_us_per_request", q.cpu_s_per_request * 1e6}});
  }
  const nlohmann::json j = {{"format", kProbeFormat},
                            {"device", p.device},
                            {"queue_depth", p.queue_depth},
                            {"align", p.align},
                            {"points", pts},
                            {"request_us", p.request_s * 1e6},
                            {"iops", p.iops()},
                            {"bandwidth_bytes_per_s", p.bandwidth},
                            {"request_cpu_us", p.request_cpu_s * 1e6},
                            {"gap_bytes", p.gap_bytes}};
  return j.dump(1) + "\n";
}

FlashProbe read_probe(const std::string& path) {
  std::ifstream f(path);
  if (!f) fail("{}: cannot read the probe file: {}", path, std::strerror(errno));
  std::stringstream ss;
  ss << f.rdbuf();
  return parse_probe(ss.str(), path);
}

FlashProbe parse_probe(const std::string& text, const std::string& path) {
  const nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) fail("{}: not a probe file (not a JSON object)", path);
  auto num = [&](const char* key, double lo, double hi) {
    if (!j.contains(key) || !j[key].is_number())
      fail("{}: probe file without a number '{}'", path, key);
    const double v = j[key].get<double>();
    if (!std::isfinite(v) || v < lo || v > hi)
      fail("{}: probe field '{}' = {} is not in [{}, {}]", path, key, v, lo, hi);
    return v;
  };
  if (num("format", 0, 1e9) != kProbeFormat)
    fail("{}: probe file format {} (this version reads {}): run dip flash-probe again", path,
         j["format"].dump(), kProbeFormat);
  if (!j.contains("device") || !j["device"].is_string())
    fail("{}: probe file without a 'device'", path);
  FlashProbe p;
  p.device = j["device"].get<std::string>();
  p.queue_depth = uint32_t(num("queue_depth", 1, 4096));
  p.align = uint32_t(num("align", 1, 1u << 30));
  p.request_s = num("request_us", 0, 1e7) * 1e-6;
  p.bandwidth = num("bandwidth_bytes_per_s", 1, 1e13);
  p.request_cpu_s = num("request_cpu_us", 0, 1e7) * 1e-6;
  p.gap_bytes = uint32_t(num("gap_bytes", 0, 16u << 20));
  if (p.gap_bytes % p.align)
    fail("{}: probe gap {} is not a multiple of its alignment {}", path, p.gap_bytes, p.align);
  if (j.contains("points") && j["points"].is_array()) {  // informative: kept when well formed
    for (const auto& q : j["points"]) {
      auto field = [&](const char* key) {
        return q.contains(key) && q[key].is_number() ? q[key].get<double>() : 0.0;
      };
      if (!q.is_object() || !(field("bytes") > 0 && field("bytes") <= double(1u << 30))) continue;
      p.points.push_back({uint32_t(field("bytes")), field("requests_per_s"), field("bytes_per_s"),
                          field("cpu_us_per_request") * 1e-6});
    }
  }
  return p;
}

void write_probe(const std::string& path, const FlashProbe& p) {
  write_file_atomically(path, probe_to_json(p));
}

FlashProbe cached_probe(const FlashImage& img, uint32_t queue_depth, double seconds,
                        const std::function<void(const std::string&)>& note) {
  const std::string cache = probe_path(img.path());
  const std::string dev = device_of(img.path());
  struct stat st {};
  if (::stat(cache.c_str(), &st) == 0) {
    try {
      FlashProbe p = read_probe(cache);
      if (p.device == dev && p.queue_depth == queue_depth && p.align == img.header().align) {
        if (note) note(fmt::format("flash probe from {}", cache));
        return p;
      }
      if (note)
        note(fmt::format("{} was measured for another device or queue depth: measuring again",
                         cache));
    } catch (const Error& e) {
      if (note) note(fmt::format("{}; measuring again", e.what()));
    }
  }
  ProbeOptions o;
  o.seconds = seconds;
  o.queue_depth = queue_depth;
  FlashProbe p = probe_flash(img, o);
  try {
    write_probe(cache, p);
    if (note) note(fmt::format("flash probe measured ({:.1f} s), cached in {}", seconds, cache));
  } catch (const Error& e) {
    if (note)
      note(fmt::format("flash probe measured ({:.1f} s), not cached: {}", seconds, e.what()));
  }
  return p;
}

}  // namespace dip
