// What the simulator's options past the paper's model change, on recorded masks: bundles of
// adjacent columns (read and cached whole) and the cache split by traffic against the uniform
// split, on the default model's DIP traces (perplexity windows of the held-out text), for the
// A18-like device with and without a per-request cost (this disk's ~80k random reads/s). The
// compute term and the per-batch latency are measured against real runs in sim_crosscheck.mjs.
//
//   node bench/sim_options.mjs [--chunks 2] [--caches 25,50]
import {execFileSync} from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import {dip, root, parseArgs} from "./lib.mjs";

const args = parseArgs(process.argv.slice(2));
const chunks = String(args.chunks ?? 2);
const caches = (args.caches ?? "25,50").split(",").map(Number);
const work = path.join(root, "build/bench/sim_options");
fs.mkdirSync(work, {recursive: true});
const model = path.join(root, "models/default.gguf");
const text = path.join(root, "models/heldout-test.txt");

const traces = {};
for (const d of ["0.5", "0.7"]) {
  const t = path.join(work, `dip${d}.trace`);
  execFileSync(dip, ["perplexity", "-m", model, "-f", text, "--chunks", chunks, "--method", "dip", "--mlp-density", d,
    "--cache-fraction", "0", "--trace", t], {stdio: ["ignore", "ignore", "ignore"]});
  traces[`DIP ${d}`] = t;
}
function sim(trace, extra) {
  const out = execFileSync(dip, ["simulate", "-m", model, "--trace", trace, "--device", "a18", "--warm-tokens", "64",
    "--json", ...extra], {encoding: "utf8", stdio: ["ignore", "pipe", "ignore"]});
  return JSON.parse(out.trim().split("\n").pop());
}
const staticBytes = sim(Object.values(traces)[0], ["--dram-size", "1000"]).static_bytes;
const mlpBytes = 512 * 1536 * 3 * 8 * 2;
const rows = [];
for (const [name, trace] of Object.entries(traces)) {
  for (const cache of caches) {
    const dram = String((staticBytes + cache / 100 * mlpBytes) / 1e9);
    for (const iops of [0, 80000]) {
      const base = ["--dram-size", dram, "--flash-iops", String(iops)];
      const ref = sim(trace, base);
      for (const bundle of [1, 2, 4, 8, 16]) {
        const r = sim(trace, [...base, "--bundle", String(bundle)]);
        rows.push({masks: name, cache, iops, option: `bundle ${bundle}`, r, ratio: r.tokens_per_s / ref.tokens_per_s});
      }
      for (const policy of ["lru", "belady"]) {
        const u = sim(trace, [...base, "--policy", policy]);
        const t = sim(trace, [...base, "--policy", policy, "--split", "traffic"]);
        rows.push({masks: name, cache, iops, option: `split by traffic (${policy})`, r: t, ratio: t.tokens_per_s / u.tokens_per_s,
          uniform_hit: u.hit_rate});
      }
    }
  }
}
fs.writeFileSync(path.join(work, "sim_options.json"), JSON.stringify(rows, null, 1));
console.log(`Simulator options on the default model's DIP traces (${chunks} windows of 512 of the held-out text), A18-like ` +
  "device (60 GB/s DRAM, 1 GB/s flash), LRU unless named; tokens/s against the paper's setting (bundle 1, uniform split)");
console.log("| masks | MLP cache | request cost | option | tokens/s | vs paper's setting | hit rate | flash MB/token | requests/token |");
console.log("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
for (const x of rows) {
  const hit = x.uniform_hit !== undefined ? `${x.uniform_hit.toFixed(3)} -> ${x.r.hit_rate.toFixed(3)}` : x.r.hit_rate.toFixed(3);
  console.log(`| ${x.masks} | ${x.cache}% | ${x.iops ? `${x.iops / 1000}k reads/s` : "none"} | ${x.option} | ` +
    `${x.r.tokens_per_s.toFixed(1)} | ${x.ratio.toFixed(3)}x | ${hit} | ${(x.r.flash_bytes_per_token / 1e6).toFixed(2)} | ` +
    `${x.r.flash_requests_per_token.toFixed(0)} |`);
}
