#include "flash/flash_probe.h"

#include <gtest/gtest.h>

#include <fstream>

#include "flash/flash_image.h"
#include "test_models.h"

namespace dip {
namespace {

// Points that follow time = a + bytes / B exactly give back a and B, and the break-even gap
// a * B rounded down to the alignment.
TEST(FlashProbe, FitRecoversTheRequestCostAndBandwidth) {
  const double a = 12e-6, B = 1.5e9;
  FlashProbe p;
  p.align = 4096;
  for (uint32_t bytes : {4096u, 16384u, 65536u, 1048576u}) {
    const double t = a + double(bytes) / B;
    p.points.push_back({bytes, 1.0 / t, double(bytes) / t, 5e-6 + bytes * 1e-12});
  }
  fit_probe(p);
  EXPECT_NEAR(p.request_s, a, a * 1e-6);
  EXPECT_NEAR(p.bandwidth, B, B * 1e-6);
  EXPECT_EQ(p.gap_bytes, uint32_t(a * B / 4096) * 4096);  // 18000 -> 16384
  EXPECT_EQ(p.gap_bytes, 16384u);
  EXPECT_NEAR(p.request_cpu_s, 5e-6, 1e-7);  // the median of the points'
  EXPECT_NEAR(p.iops(), 1.0 / a, 1.0);
}

// A device whose request rate does not depend on the size (a cache in front of it): no fixed
// cost can be fitted (negative); the bandwidth falls back to the largest size's, the gap to 0.
TEST(FlashProbe, FitWithoutATransferTermFallsBack) {
  FlashProbe p;
  p.align = 512;
  p.points = {{4096, 1000, 4096e3, 1e-6}, {65536, 100, 6553.6e3, 1e-6}};  // larger is *faster*
  p.points[1].requests_per_s = 2000;
  p.points[1].bytes_per_s = 65536 * 2000.0;
  fit_probe(p);
  EXPECT_EQ(p.request_s, 0.0);
  EXPECT_NEAR(p.bandwidth, 65536 * 2000.0, 1.0);
  EXPECT_EQ(p.gap_bytes, 0u);
}

TEST(FlashProbe, FileRoundTripsAndBadFilesAreOneLineErrors) {
  FlashProbe p;
  p.device = "8:1";
  p.queue_depth = 64;
  p.align = 512;
  p.request_s = 10e-6;
  p.bandwidth = 2e9;
  p.request_cpu_s = 4e-6;
  p.gap_bytes = 19968;
  p.points = {{4096, 90000, 90000 * 4096.0, 4e-6}};
  const std::string f = temp_path("probe.json");
  write_probe(f, p);
  const FlashProbe q = read_probe(f);
  EXPECT_EQ(q.device, p.device);
  EXPECT_EQ(q.queue_depth, 64u);
  EXPECT_EQ(q.align, 512u);
  EXPECT_DOUBLE_EQ(q.request_s, p.request_s);
  EXPECT_DOUBLE_EQ(q.bandwidth, p.bandwidth);
  EXPECT_NEAR(q.request_cpu_s, p.request_cpu_s, 1e-15);
  EXPECT_EQ(q.gap_bytes, p.gap_bytes);
  ASSERT_EQ(q.points.size(), 1u);
  EXPECT_EQ(q.points[0].bytes, 4096u);

  auto write = [&](const std::string& text) { std::ofstream(f) << text; };
  const std::string good = probe_to_json(p);
  auto replaced = [&](const std::string& from, const std::string& to) {
    std::string s = good;
    const size_t at = s.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    return s.replace(at, from.size(), to);
  };
  write("not json");
  expect_error([&] { read_probe(f); }, f + ": not a probe file");
  write(good.substr(0, good.size() / 2));  // truncated
  expect_error([&] { read_probe(f); }, f + ": not a probe file");
  write(replaced("\"bandwidth_bytes_per_s\"", "\"bandwidth\""));
  expect_error([&] { read_probe(f); }, "without a number 'bandwidth_bytes_per_s'");
  write(replaced("\"request_us\": 10.0", "\"request_us\": -1"));
  expect_error([&] { read_probe(f); }, "'request_us' = -1 is not in");
  write(replaced("\"format\": 1", "\"format\": 7"));
  expect_error([&] { read_probe(f); }, "probe file format 7");
  write(replaced("\"gap_bytes\": 19968", "\"gap_bytes\": 20000"));
  expect_error([&] { read_probe(f); }, "not a multiple of its alignment");
  expect_error([&] { read_probe(temp_path("no-such-probe.json")); }, "cannot read the probe file");
  // The measured points are informative: a malformed one is left out, never an error.
  write(replaced("\"bytes\": 4096", "\"bytes\": \"4 KiB\""));
  EXPECT_TRUE(read_probe(f).points.empty());
}

// A probe of a real image: a point per size that fits, a fit with a positive bandwidth, and a
// cache beside the image that the next call reads instead of measuring again (buffered reads:
// the test folder may be on a file system without O_DIRECT).
TEST(FlashProbe, ProbesAnImageAndCachesTheResult) {
  auto m = synth_model(TensorType::F16, Arch::kLlama, 128, 256, 2);
  const std::string img_path = temp_path("probe.dipflash");
  write_flash_image(*m, img_path, 512, nullptr);
  const FlashImage img(img_path);
  ProbeOptions o;
  o.seconds = 0.2;
  o.direct = false;
  o.sizes = {512, 4096, 16384, 1u << 30};  // the last does not fit the image: skipped
  const FlashProbe p = probe_flash(img, o);
  ASSERT_EQ(p.points.size(), 3u);
  for (const ProbePoint& q : p.points) {
    EXPECT_GT(q.requests_per_s, 0);
    EXPECT_NEAR(q.bytes_per_s, q.requests_per_s * q.bytes, q.bytes_per_s * 0.05);
  }
  EXPECT_GT(p.bandwidth, 0);
  EXPECT_EQ(p.gap_bytes % 512, 0u);
  EXPECT_EQ(p.device, device_of(img_path));

  std::remove(probe_path(img_path).c_str());
  FlashProbe cached = p;
  cached.gap_bytes = 1024;  // a value no measurement is likely to give: proves it was read
  write_probe(probe_path(img_path), cached);
  std::string note;
  EXPECT_EQ(cached_probe(img, 64, 0.2, [&](const std::string& s) { note = s; }).gap_bytes, 1024u);
  EXPECT_NE(note.find("flash probe from"), std::string::npos) << note;
  // Another queue depth: measured again (here through O_DIRECT, so it may fail on tmpfs; the
  // note says which); a corrupt cache is replaced, never an error.
  std::ofstream(probe_path(img_path)) << "{";
  try {
    cached_probe(img, 64, 0.2, [&](const std::string& s) {
      if (s.find("measuring again") != std::string::npos) note = s;
    });
    EXPECT_NE(note.find("not a probe file"), std::string::npos) << note;
    EXPECT_NO_THROW(read_probe(probe_path(img_path)));  // rewritten
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("O_DIRECT"), std::string::npos) << e.what();
  }
  std::remove(probe_path(img_path).c_str());
}

}  // namespace
}  // namespace dip
