// llama.cpp where memory is really short for it, against our flash runs, same file, same run.
// The model is a Llama-shaped GGUF with random weights that is larger than this machine's
// memory: Q8_0, d 8192, 31 layers, d_ff 28672, GQA 64/8 (28.3 GB); --type q4_0: 60 layers
// (28.9 GB); --type f16: d 5120, 48 layers, d_ff 13824, GQA 40/8 (26.4 GB); --layers changes the
// size. llama.cpp (node-llama-cpp, prebuilt) mmaps it with the whole machine to itself: what the
// page cache cannot hold is read again from disk through page faults, as on a device whose DRAM
// cannot hold the model. (On x86 with AVX2 its CPU backend repacks Q4_0 weights into anonymous
// memory at load, so a Q4_0 model larger than memory does not load at all; the script records
// the error. Q8_0 and F16 weights stay mapped.) Our engine runs the same GGUF with its MLP from the flash
// image under a DRAM budget (the resident part plus --mlp-cache of the MLP): dense streaming,
// DIP and DIP-CA at MLP density 0.5. Before every run the files' pages are dropped from the
// page cache (posix_fadvise DONTNEED). Reported: generation tokens/s and peak resident memory
// of each. Nothing here changes cgroups, locks memory or limits other processes.
//
// The model and its flash image are written first (5-15 minutes) and deleted at the end unless
// --keep; the script checks free disk first.
//
//   node bench/flash_peer.mjs [--type q8_0|q4_0|f16] [--tokens 4] [--rounds 2] [--mlp-cache 25] [--layers N] [--keep 1]
import {execFileSync, spawnSync} from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import {dip, root, parseArgs, requireTools, testModel, flashImage, median, cpuName} from "./lib.mjs";

requireTools();
const args = parseArgs(process.argv.slice(2));
const share = Number(args["mlp-cache"] ?? 25), nGen = Number(args.tokens ?? 4), rounds = Number(args.rounds ?? 2);
const type = args.type ?? "q8_0";
if (!["q8_0", "q4_0", "f16"].includes(type)) { console.error("flash_peer: --type is q8_0, q4_0 or f16"); process.exit(2); }
const keep = args.keep !== undefined;
const shape = type === "f16" ? {nEmbd: 5120, nLayer: Number(args.layers ?? 48), nFf: 13824, nHead: 40, nHeadKv: 8, fast: true}
  : {nEmbd: 8192, nLayer: Number(args.layers ?? (type === "q8_0" ? 31 : 60)), nFf: 28672, nHead: 64, nHeadKv: 8, fast: true};
const nLayer = shape.nLayer;
// A short prompt: with the MLP on flash each prompt token streams its columns (one pass each).
const prompt = "The lighthouse";
const oracle = path.join(root, "tests/oracle/llama_oracle.mjs");
const work = path.join(root, "build/bench/flash_peer");
const modelDir = path.join(root, "build/bench/models");
fs.mkdirSync(work, {recursive: true});
fs.mkdirSync(modelDir, {recursive: true});

// Sizes from the shape (F16: 2 bytes per weight; Q8_0: 34 bytes per 32; Q4_0: 18), to check the disk first.
const E = shape.nEmbd, kvDim = E / shape.nHead * shape.nHeadKv;
const perLayer = 2 * E * E + 2 * E * kvDim, mlpPerLayer = 3 * E * shape.nFf;
const bytesOf = (n) => (type === "f16" ? 2 * n : (n / 32) * (type === "q8_0" ? 34 : 18));
const modelBytes = bytesOf(nLayer * (perLayer + mlpPerLayer)), imageBytes = bytesOf(nLayer * mlpPerLayer);
const memTotal = os.totalmem();
const freeDisk = () => { const s = fs.statfsSync(modelDir); return s.bavail * s.bsize; };
const gguf = path.join(modelDir, `llama-${E}x${nLayer}-ff${shape.nFf}-h${shape.nHead}-kv${shape.nHeadKv}-${type}-fastw.gguf`);
const need = (fs.existsSync(gguf) ? 0 : modelBytes) + (fs.existsSync(gguf.replace(/\.gguf$/, ".dipflash")) ? 0 : imageBytes) + 4e9;
if (freeDisk() < need) {
  console.error(`flash_peer: needs ${(need / 1e9).toFixed(1)} GB free in ${modelDir}, has ${(freeDisk() / 1e9).toFixed(1)} GB`);
  process.exit(1);
}
if (modelBytes <= memTotal) console.error(`flash_peer: warning: the model (${(modelBytes / 1e9).toFixed(1)} GB) fits this machine's memory (${(memTotal / 1e9).toFixed(1)} GB)`);
testModel(modelDir, type, shape);
const img = flashImage(gguf);

function dropCache(file) {
  execFileSync("python3", ["-c", "import os,sys; fd=os.open(sys.argv[1], os.O_RDONLY); os.posix_fadvise(fd,0,0,os.POSIX_FADV_DONTNEED)", file]);
}

function runDip(method) {
  dropCache(gguf);
  dropCache(img);
  const r = spawnSync(dip, ["generate", "-m", gguf, "-p", prompt, "-n", String(nGen), "--temp", "0", "--ignore-eos", "--json",
    "-t", "2", ...method, "--flash", img, "--mlp-cache", `${share}%`], {encoding: "utf8", maxBuffer: 1 << 26});
  if (r.status !== 0) throw new Error(`dip failed (status ${r.status}): ${r.stderr.slice(-400)}`);
  const j = JSON.parse(r.stdout.trim().split("\n").pop());
  return {tg: j.flash.tokens_per_second, rss: j.flash.peak_rss, budget: j.flash.budget, overhead: j.flash.overhead_rss,
          within: j.flash.within_budget, flashMB: j.flash.flash_bytes_per_token / 2 ** 20};
}

function runLlama() {
  dropCache(gguf);
  const req = path.join(work, "speed-request.json");
  fs.writeFileSync(req, JSON.stringify({model: gguf, threads: 2, ignore_memory_checks: true, speed: {text: prompt, n: nGen, runs: 1}}));
  const r = spawnSync("node", [oracle, req], {encoding: "utf8", maxBuffer: 1 << 26});
  if (r.status !== 0) {
    // A model llama.cpp cannot load (e.g. repacked weights larger than memory): its own message.
    const why = r.stderr.split("\n").find((l) => /insufficient memory|failed to allocate/.test(l)) ?? r.stderr.slice(-300);
    process.stderr.write(`llama.cpp failed (status ${r.status}): ${why}\n`);
    return {tg: NaN, rss: NaN, error: why.replace(/^\[node-llama-cpp\]\s*/, "").trim()};
  }
  const res = JSON.parse(r.stdout.trim().split("\n").pop());
  const s = res.speed[0];
  return {tg: s.gen_tokens / s.gen_s, rss: res.max_rss_bytes};
}

const methods = {"dip dense streaming (LRU)": ["--method", "dense"], "dip DIP 0.5": ["--method", "dip", "--mlp-density", "0.5"],
  "dip DIP-CA 0.5 (gamma 0.2)": ["--method", "dip-ca", "--mlp-density", "0.5", "--gamma", "0.2"]};
const llamaKey = "llama.cpp (mmap, whole machine)";
const samples = {[llamaKey]: []};
for (const k of Object.keys(methods)) samples[k] = [];
let budget = 0, overhead = 0, within = true;
try {
  for (let r = 0; r < rounds; r++) {
    process.stderr.write(`round ${r + 1}: llama.cpp\n`);
    samples[llamaKey].push(runLlama());
    for (const [k, m] of Object.entries(methods)) {
      process.stderr.write(`round ${r + 1}: ${k}\n`);
      const x = runDip(m);
      samples[k].push(x);
      budget = x.budget;
      overhead = x.overhead;
      within &&= x.within;
    }
  }
} finally {
  if (!keep) {
    for (const f of [gguf, img]) fs.rmSync(f, {force: true});
    process.stderr.write(`deleted ${gguf} and ${img} (--keep 1 keeps them)\n`);
  }
}
const tg = (k) => median(samples[k].map((x) => x.tg));
const llamaError = samples[llamaKey].find((x) => x.error)?.error;
const ll = llamaError ? NaN : tg(llamaKey);
const gib = (b) => (b / 2 ** 30).toFixed(2);
console.log(`${path.basename(gguf)} (${(modelBytes / 1e9).toFixed(1)} GB; MLP ${(imageBytes / 1e9).toFixed(1)} GB), ` +
  `machine memory ${gib(memTotal)} GiB, ${cpuName()}, 2 threads, ${nGen} generated tokens after a ${prompt.split(" ").length}-word prompt, ` +
  `medians of ${rounds} rounds, page cache dropped before every run`);
console.log(`dip: --mlp-cache ${share}% = budget ${gib(budget)} GiB (peak RSS within budget + ${(overhead / 2 ** 20).toFixed(0)} MiB overhead: ${within})\n`);
console.log("| engine | generation tokens/s | vs llama.cpp | peak RSS GiB | flash MiB/token |");
console.log("| --- | --- | --- | --- | --- |");
for (const [k, v] of Object.entries(samples)) {
  if (k === llamaKey && llamaError) {
    console.log(`| ${k} | does not load: ${llamaError} | | | |`);
    continue;
  }
  const rss = Math.max(...v.map((x) => x.rss));
  const fm = v[0].flashMB !== undefined ? median(v.map((x) => x.flashMB)).toFixed(0) : "";
  console.log(`| ${k} | ${tg(k).toFixed(3)} | ${llamaError ? "" : (tg(k) / ll).toFixed(2) + "x"} | ${gib(rss)} | ${fm} |`);
}
fs.writeFileSync(path.join(work, `flash_peer-${type}.json`), JSON.stringify({model: path.basename(gguf), modelBytes, memTotal, budget,
  overhead, share, nGen, rounds, llamaError, samples}, null, 1));
