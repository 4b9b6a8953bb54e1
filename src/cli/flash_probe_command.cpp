// dip flash-probe: what a read request costs on the device a flash image lives on.
#include <cstdio>

#include "api/dip.h"
#include "cli/commands.h"
#include "util/output_file.h"

namespace dip::cli {

void add_flash_probe(CLI::App& app) {
  auto* c = app.add_subcommand(
      "flash-probe",
      "measure the cost of a read request and the bandwidth of the device under a flash image "
      "(the gap --flash-gap auto uses; --flash-probe of dip simulate)");
  auto image = std::make_shared<std::string>();
  auto out = std::make_shared<std::string>();
  auto opts = std::make_shared<ProbeOptions>();
  auto json = std::make_shared<bool>(false);
  c->add_option("image", *image, "flash image (dip convert --flash)")->required();
  c->add_option("-o,--output", *out, "probe file to write (default: IMAGE.probe.json)");
  c->add_option("--seconds", opts->seconds, "measuring time in all (default 2)");
  c->add_option("--flash-qd", opts->queue_depth, "read requests in flight (default 64)")
      ->check(CLI::Range(1, 4096));
  c->add_flag("--json", *json, "print the probe as JSON instead of a table");
  c->callback([=] {
    const std::string target = out->empty() ? probe_path(*image) : *out;
    check_output_path(target, {*image});
    const FlashImage img(*image);
    const FlashProbe p = probe_flash(img, *opts, [](size_t done, size_t total) {
      print_progress("flash probe", done, total, "");
    });
    end_progress();
    write_probe(target, p);
    if (*json) {
      std::printf("%s", probe_to_json(p).c_str());
      return;
    }
    std::printf("device %s, queue depth %u, O_DIRECT reads of random places of %s\n",
                p.device.c_str(), p.queue_depth, image->c_str());
    std::printf("| request bytes | requests/s | MB/s | host CPU us/request | model requests/s |\n");
    std::printf("| --- | --- | --- | --- | --- |\n");
    for (const ProbePoint& q : p.points) {
      const double model = 1.0 / (p.request_s + double(q.bytes) / p.bandwidth);
      std::printf("| %u | %.0f | %.0f | %.1f | %.0f |\n", q.bytes, q.requests_per_s,
                  q.bytes_per_s / 1e6, q.cpu_s_per_request * 1e6, model);
    }
    std::printf(
        "fit: %.1f us per request (%.0f requests/s) + bytes at %.0f MB/s; host CPU %.1f us per "
        "request; break-even read gap %u bytes\n",
        p.request_s * 1e6, p.iops(), p.bandwidth / 1e6, p.request_cpu_s * 1e6, p.gap_bytes);
    std::printf("written to %s\n", target.c_str());
  });
}

}  // namespace dip::cli
