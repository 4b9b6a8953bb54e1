// The simulator against reality: for the default model and the 2.2 GB Llama-shaped model, run
// the engine with its MLP on flash through an emulated 1 GB/s flash at several budgets, recording
// the mask trace; then simulate the same configuration (same model shape, the same column cache
// per matrix, 1 GB/s flash, this machine's DRAM bandwidth measured in the same run, LRU) from
// that trace, and compare predicted against measured tokens/s and hit rate. Four predictions:
// the paper's model (bytes only); + the request term (--flash-iops, this disk's random-read rate)
// overlapping the transfer (max); + the request term added to it (--requests-serial); and that
// + a serial compute term (--compute-gflops --compute-serial) whose one parameter, the rate, is
// fitted on one run per model (dense streaming at the 50% cache predicted exactly) and then
// predicts the other eight; and last, that with the host CPU time each read request costs the
// engine (--request-cpu-us: system call, block layer, completion), measured by flash_io_bench
// on random 256-column batches of down columns (queue depth 64) of the same image before the runs,
// with the compute rate fitted again.
//
//   node bench/sim_crosscheck.mjs [--tokens 24] [--runs 5] [--only small|big] [--latency-us L] [--disk]
//
// --disk: the engine reads this machine's disk itself (no emulation) with --flash-gap auto, and
// every prediction takes the device from the image's `dip flash-probe` file (--flash-probe:
// bandwidth, request rate and host CPU per request, fitted on random reads) and the same joined
// reads (--flash-gap auto); the request rate and CPU columns use the probe's figures. Results
// go to sim_crosscheck-disk.json.
//
// --latency-us L: the emulated flash also charges L us per round of queue-depth (64) requests of a
// batch (the engine's --flash-latency), and every prediction adds the simulator's latency term
// (--flash-latency-us L --flash-qd 64); results go to sim_crosscheck-latencyL.{json}.
import {execFileSync, spawnSync} from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import {dip, root, parseArgs, largeFlashModel, flashImage, measureBw, cpuName, median} from "./lib.mjs";

const args = parseArgs(process.argv.slice(2));
const nGen = Number(args.tokens ?? 24);
// This disk's random-read request rate (fio, 4 KiB, queue depth 64: 77-83k/s), for the
// simulator's request term; the emulated flash adds none of its own.
let iops = Number(args.iops ?? 80000);
const work = path.join(root, "build/bench/sim_crosscheck");
const latencyUs = args["latency-us"] !== undefined ? Number(args["latency-us"]) : 0;
if (!(latencyUs >= 0)) throw new Error("--latency-us must not be negative");
const simLatency = latencyUs > 0 ? ["--flash-latency-us", String(latencyUs), "--flash-qd", "64"] : [];
const engineLatency = latencyUs > 0 ? ["--flash-latency", `${latencyUs}us`] : [];
const disk = Boolean(args.disk);
if (disk && latencyUs > 0) throw new Error("--disk and --latency-us exclude each other");
const outName = disk ? "sim_crosscheck-disk" : latencyUs > 0 ? `sim_crosscheck-latency${latencyUs}` : "sim_crosscheck";
fs.mkdirSync(work, {recursive: true});
const prompt = "The old lighthouse keeper climbed the stairs";
const models = [];
if (args.only !== "big") models.push({name: "default", gguf: path.join(root, "models/default.gguf")});
if (args.only !== "small") {
  models.push({name: "llama 2048x24 (2.2 GB)", gguf: largeFlashModel()});
}
const methods = {"dense": ["--method", "dense"], "dip 0.5": ["--method", "dip", "--mlp-density", "0.5"],
  "dip-ca 0.5": ["--method", "dip-ca", "--mlp-density", "0.5", "--gamma", "0.5"]};
const caches = [25, 50, 75];
const bw = measureBw(2, 5);
const dramBw = bw.gbps_median;
// Host CPU per read request, measured on each model's image (see the top).
function requestCpuUs(img) {
  if (disk) return probeOf(img).request_cpu_us;
  const out = execFileSync(path.join(root, "build/release/bench/flash_io_bench"), [img, "2", "--json"], {encoding: "utf8"});
  const recs = out.trim().split("\n").map((l) => JSON.parse(l));
  return recs.find((r) => r.kind === "down" && r.queue_depth === 64 && r.batch === 256).cpu_us_per_request;
}

// --disk: the device as `dip flash-probe` measured it (measured once per image, before the runs).
let probeFile = null;
function probeOf(img) {
  probeFile = `${img}.probe.json`;
  if (!fs.existsSync(probeFile)) execFileSync(dip, ["flash-probe", img, "--seconds", "3"], {stdio: "ignore"});
  return JSON.parse(fs.readFileSync(probeFile, "utf8"));
}
const flashDevice = () => (disk ? ["--flash-probe", probeFile, "--flash-gap", "auto"] : ["--flash-bw", "1"]);
function simulate(gguf, maskArgs, dramSize, extra = []) {
  const out = execFileSync(dip, ["simulate", "-m", gguf, ...maskArgs, "--dram-bw", String(dramBw), ...flashDevice(),
    "--dram-size", String(dramSize / 1e9), "--policy", "lru", "--prompt", "1", "--gen", String(nGen), "--json", ...simLatency, ...extra],
    {encoding: "utf8"});
  return JSON.parse(out.trim().split("\n").pop());
}

const rows = [];
const runsPer = Number(args.runs ?? 5);
if (!(runsPer >= 1)) throw new Error("--runs must be at least 1");
// The engine's flash runs, configurations interleaved round by round (this machine's disk and
// memory bandwidth drift within minutes); the trace comes from the first round (greedy decoding:
// every round has the same masks and hits).
function engineRuns(m, img) {
  const out = new Map();
  for (let round = 0; round < runsPer; round++) {
    for (const cache of caches) {
      for (const [k, flags] of Object.entries(methods)) {
        const key = `${k}|${cache}`;
        const trace = path.join(work, `${m.name.split(" ")[0]}-${k.replace(" ", "")}-${cache}.trace`);
        const r = spawnSync(dip, ["generate", "-m", m.gguf, "-p", prompt, "-n", String(nGen), "--temp", "0", "--ignore-eos",
          "-c", "1024", "--json", ...flags, "--flash", img, "--mlp-cache", `${cache}%`,
          ...(disk ? ["--flash-gap", "auto"] : ["--flash-bw", "1GB/s", "--flash-gap", "0"]), ...engineLatency,
          ...(k === "dense" || round > 0 ? [] : ["--trace", trace])], {encoding: "utf8"});
        if (r.status !== 0) throw new Error(r.stderr);
        const g = JSON.parse(r.stdout.trim().split("\n").pop());
        if (!out.has(key)) out.set(key, {k, cache, trace, g, all: []});
        out.get(key).all.push(g.flash);
        process.stderr.write(`\r${m.name}: round ${round + 1}/${runsPer}, ${k} at ${cache}%      `);
      }
    }
  }
  process.stderr.write("\n");
  return [...out.values()];
}

for (const m of models) {
  const img = flashImage(m.gguf);
  const reqCpu = requestCpuUs(img);
  if (disk) iops = probeOf(img).iops;
  const runs = [];
  for (const {k, cache, trace, g, all} of engineRuns(m, img)) {
    const f = all[0];
    const tps = all.map((x) => x.tokens_per_second);
    const measured = median(tps);
    // The simulator's DRAM: its static part (from a first call) plus our cache's bytes, so that
    // both hold the same columns per matrix. Dense streaming: synthetic masks of density 1.
    // The trace starts with the prompt's tokens: they warm the simulated caches, as in the engine,
    // whose report covers the generation steps only.
    const maskArgs = k === "dense" ? ["--density", "1", "--warm-tokens", "1"] : ["--trace", trace, "--warm-tokens", String(g.prompt_tokens)];
    const dramSize = simulate(m.gguf, maskArgs, 1000e9).static_bytes + f.cache_bytes + 1;
    // The paper's model: bytes only (with --disk, the probe's request terms switched off).
    const s = simulate(m.gguf, maskArgs, dramSize, disk ? ["--flash-iops", "0", "--request-cpu-us", "0"] : []);
    const si = simulate(m.gguf, maskArgs, dramSize, ["--flash-iops", String(iops)]);
    const ss = simulate(m.gguf, maskArgs, dramSize, ["--flash-iops", String(iops), "--requests-serial"]);
    // FLOPs per token (compute seconds at 1 GFLOP/s), for the compute term.
    const flops = simulate(m.gguf, maskArgs, dramSize, ["--compute-gflops", "1"]).compute_s_per_token * 1e9;
    const sr = simulate(m.gguf, maskArgs, dramSize, ["--flash-iops", String(iops), "--requests-serial", "--request-cpu-us", String(reqCpu)]);
    const smr = simulate(m.gguf, maskArgs, dramSize, ["--flash-iops", String(iops), "--request-cpu-us", String(reqCpu)]);
    runs.push({k, cache, maskArgs, dramSize, flops, memory_s: 1 / ss.tokens_per_s, memory_cpu_s: 1 / sr.tokens_per_s,
               memory_max_cpu_s: 1 / smr.tokens_per_s, measured_s: 1 / measured});
    rows.push({model: m.name, method: k, mlp_cache: cache, measured_tps: measured, measured_runs: tps,
      predicted_tps: s.tokens_per_s, predicted_iops_tps: si.tokens_per_s, predicted_serial_tps: ss.tokens_per_s,
      measured_requests: f.flash_requests_per_token, predicted_requests: si.flash_requests_per_token,
      measured_hit: f.hit_rate, predicted_hit: s.hit_rate, measured_flash_mib: f.flash_bytes_per_token / 2 ** 20,
      predicted_flash_mib: s.flash_bytes_per_token / 2 ** 20,
      wait_ms: median(all.map((x) => 1e3 * x.flash_wait_s / Math.max(1, x.tokens))),
      compute_ms: median(all.map((x) => 1e3 * (x.mlp_compute_s + x.other_s) / Math.max(1, x.tokens)))});
    process.stderr.write(`${m.name} ${k} ${cache}%: measured ${measured.toFixed(2)} t/s (${Math.min(...tps).toFixed(2)}..${Math.max(...tps).toFixed(2)}), predicted ${s.tokens_per_s.toFixed(2)}\n`);
  }
  // The compute rate that makes dense streaming at 50% come out exactly (its measured time per
  // token minus the predicted memory time is its compute), then every run predicted with it.
  const cal = runs.find((r) => r.k === "dense" && r.cache === 50);
  const gflops = cal.flops / Math.max(1e-6, cal.measured_s - cal.memory_s) / 1e9;
  const gflopsCpu = cal.flops / Math.max(1e-6, cal.measured_s - cal.memory_cpu_s) / 1e9;
  const gflopsMaxCpu = cal.flops / Math.max(1e-6, cal.measured_s - cal.memory_max_cpu_s) / 1e9;
  for (const r of runs) {
    const base = ["--flash-iops", String(iops), "--requests-serial"];
    const sc = simulate(m.gguf, r.maskArgs, r.dramSize, [...base, "--compute-gflops", String(gflops), "--compute-serial"]);
    const scc = simulate(m.gguf, r.maskArgs, r.dramSize, [...base, "--request-cpu-us", String(reqCpu),
      "--compute-gflops", String(gflopsCpu), "--compute-serial"]);
    const smc = simulate(m.gguf, r.maskArgs, r.dramSize, ["--flash-iops", String(iops), "--request-cpu-us", String(reqCpu),
      "--compute-gflops", String(gflopsMaxCpu), "--compute-serial"]);
    const row = rows.find((x) => x.model === m.name && x.method === r.k && x.mlp_cache === r.cache);
    Object.assign(row, {predicted_max_cpu_tps: smc.tokens_per_s, predicted_compute_tps: sc.tokens_per_s, compute_gflops: gflops, calibration_run: r === cal,
                        predicted_cpu_tps: scc.tokens_per_s, compute_gflops_cpu: gflopsCpu, request_cpu_us: reqCpu});
  }
}
fs.writeFileSync(path.join(work, `${outName}.json`), JSON.stringify({cpu: cpuName(), dram_bw_gbps: dramBw, latency_us: latencyUs, rows}, null, 1));
console.log(`Simulator vs engine, ${disk ? "this disk (dip flash-probe, --flash-gap auto)" : "emulated 1 GB/s flash"}${latencyUs > 0 ? ` + ${latencyUs} us per round of 64 requests` : ""}, LRU, ${nGen} generated tokens, median of ${runsPer} engine runs (interleaved), DRAM ${dramBw.toFixed(1)} GB/s (measured), ` +
  `request term ${disk ? "the probe's" : `${iops} reads/s`}, ${cpuName()}`);
console.log("Compute rates (fitted on dense streaming at 50%; without / with the request CPU term): " +
  [...new Set(rows.map((r) => `${r.model} ${r.compute_gflops.toFixed(1)} / ${r.compute_gflops_cpu.toFixed(1)} GFLOP/s`))].join(", "));
console.log(`Host CPU per read request (${disk ? "dip flash-probe" : "flash_io_bench, down columns, QD 64, 256-column batches"}): ` +
  [...new Set(rows.map((r) => `${r.model} ${r.request_cpu_us.toFixed(1)} us`))].join(", "));
console.log("| model | masks | MLP cache | measured t/s (min..max) | paper model | + requests (max) | + requests (serial) | + requests (serial) + compute | + requests (serial) + request CPU + compute | + requests (max) + request CPU + compute | hit measured / predicted | flash MiB/token measured / predicted | requests/token measured / predicted |");
console.log("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
for (const r of rows) {
  const cell = (p, note = "") => `${p.toFixed(2)} (${(p / r.measured_tps).toFixed(2)}x${note})`;
  console.log(`| ${r.model} | ${r.method} | ${r.mlp_cache}% | ${r.measured_tps.toFixed(2)} (${Math.min(...r.measured_runs).toFixed(1)}..${Math.max(...r.measured_runs).toFixed(1)}) | ${cell(r.predicted_tps)} | ` +
    `${cell(r.predicted_iops_tps)} | ${cell(r.predicted_serial_tps)} | ${cell(r.predicted_compute_tps, r.calibration_run ? ", fitted" : "")} | ` +
    `${cell(r.predicted_cpu_tps, r.calibration_run ? ", fitted" : "")} | ` +
    `${cell(r.predicted_max_cpu_tps, r.calibration_run ? ", fitted" : "")} | ` +
    `${r.measured_hit.toFixed(3)} / ${r.predicted_hit.toFixed(3)} | ${r.measured_flash_mib.toFixed(1)} / ${r.predicted_flash_mib.toFixed(1)} | ` +
    `${r.measured_requests.toFixed(0)} / ${r.predicted_requests.toFixed(0)} |`);
}
