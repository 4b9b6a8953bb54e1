// What one read request costs on the device a flash image lives on, measured the way the engine
// reads: batches of random O_DIRECT reads of one size through FlashStore (io_uring, the run's
// queue depth), for several sizes. At a full queue a request of b bytes takes, on average,
//     request_s + b / bandwidth
// of the device's time (a fixed cost per request plus the transfer); the probe fits the two
// from the sizes' rates. A gap between two wanted reads is worth reading (joining them into one
// request) when it costs less than a request: at most request_s * bandwidth bytes, the gap
// `--flash-gap auto` uses. The host CPU per request (system call, block layer, completion,
// spent by the thread that computes) is measured beside it for the simulator.
//
// The result is cached beside the image (IMAGE.probe.json) for the device it was measured on.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace dip {

class FlashImage;

struct ProbePoint {
  uint32_t bytes = 0;         // request size
  double requests_per_s = 0;  // completed requests per second of waiting
  double bytes_per_s = 0;
  double cpu_s_per_request = 0;  // the process's CPU time (user + system) per request
};

struct FlashProbe {
  std::string device;  // the file system's device ("major:minor") the image is on
  uint32_t queue_depth = 0, align = 0;
  std::vector<ProbePoint> points;
  double request_s = 0;      // fitted fixed device time per request at a full queue
  double bandwidth = 0;      // fitted transfer rate, bytes/s
  double request_cpu_s = 0;  // host CPU per request (median over the sizes)
  uint32_t gap_bytes = 0;    // request_s * bandwidth, down to the image's alignment

  double iops() const { return request_s > 0 ? 1.0 / request_s : 0.0; }
};

struct ProbeOptions {
  double seconds = 2.0;  // in all, shared by the sizes
  uint32_t queue_depth = 64;
  bool direct =
      true;  // false: through the page cache (where O_DIRECT is not supported; not a device figure)
  std::vector<uint32_t> sizes = {4096, 8192, 16384, 32768, 65536, 262144, 1048576};
};

// Measures the device under `img`'s file (reads only its column data).
FlashProbe probe_flash(const FlashImage& img, const ProbeOptions& opts,
                       const std::function<void(size_t done, size_t total)>& progress = {});

// Least squares of 1 / requests_per_s = request_s + bytes / bandwidth, weighted for relative
// error (a small request's time counts as much as a large one's); sets request_s, bandwidth and
// gap_bytes (rounded down to `align`), request_cpu_s from the points.
void fit_probe(FlashProbe& p);
// The gap worth reading instead of a second request: request_s * bandwidth bytes, at most 16 MiB,
// down to a multiple of align.
uint32_t break_even_gap(double request_s, double bandwidth, uint32_t align);

// The cache file of an image: IMAGE.probe.json.
std::string probe_path(const std::string& image_path);
// The device ("major:minor") a file is on; fails naming the file.
std::string device_of(const std::string& path);

std::string probe_to_json(const FlashProbe& p);
// Parses a probe file; any problem (not JSON, a field missing or out of range) is an Error
// naming the file.
FlashProbe read_probe(const std::string& path);
// The same for a probe file's text; `path` names it in errors.
FlashProbe parse_probe(const std::string& text, const std::string& path);
// Writes a probe file atomically (an interrupted write leaves no file that parses).
void write_probe(const std::string& path, const FlashProbe& p);

// The probe of img's device: from its cache file when that exists, parses and was measured on
// the same device; else measured (`seconds`, the queue depth given) and cached (a cache that
// cannot be written is only noted). `note` receives one line about what happened.
FlashProbe cached_probe(const FlashImage& img, uint32_t queue_depth, double seconds,
                        const std::function<void(const std::string&)>& note);

}  // namespace dip
