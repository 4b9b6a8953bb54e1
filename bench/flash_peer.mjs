// llama.cpp where memory is really short for it, against our flash runs at the same DRAM.
// llama.cpp (node-llama-cpp, prebuilt) runs the GGUF mmap'd, inside a memory cgroup (v1 or v2)
// whose limit is our DRAM budget plus 64 MiB for node's own runtime: the page cache that holds
// its mapped weights is charged to the cgroup, so what does not fit is re-read from disk through
// page faults, as on a phone whose DRAM cannot hold the model. The file's pages are dropped from
// the page cache before every run (posix_fadvise DONTNEED). Our engine runs the same GGUF with the
// MLP from its flash image under --dram-budget: dense streaming, DIP and DIP-CA at density 0.5.
//
//   node bench/flash_peer.mjs [--mlp-cache 50] [--tokens 8] [--rounds 2]   (root: creates a cgroup)
import {execFileSync, spawnSync} from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import {dip, root, parseArgs, largeFlashModel, flashImage, median, cpuName} from "./lib.mjs";

const args = parseArgs(process.argv.slice(2));
const share = Number(args["mlp-cache"] ?? 50), nGen = Number(args.tokens ?? 8), rounds = Number(args.rounds ?? 2);
const gguf = largeFlashModel();
const img = flashImage(gguf);
const prompt = "The old lighthouse keeper climbed the stairs";
const oracle = path.join(root, "tests/oracle/llama_oracle.mjs");
const work = path.join(root, "build/bench/flash_peer");
fs.mkdirSync(work, {recursive: true});

function dropCache(file) {
  execFileSync("python3", ["-c", "import os,sys; fd=os.open(sys.argv[1], os.O_RDONLY); os.posix_fadvise(fd,0,0,os.POSIX_FADV_DONTNEED)", file]);
}

function runDip(method) {
  dropCache(gguf);
  const r = spawnSync(dip, ["generate", "-m", gguf, "-p", prompt, "-n", String(nGen), "--temp", "0", "--ignore-eos", "--json",
    "-t", "2", ...method, "--flash", img, "--mlp-cache", `${share}%`], {encoding: "utf8"});
  if (r.status !== 0) throw new Error(r.stderr);
  const j = JSON.parse(r.stdout.trim().split("\n").pop());
  return {tg: j.flash.tokens_per_second, budget: j.flash.budget, peak: j.flash.peak_rss, overhead: j.flash.overhead_rss,
          within: j.flash.within_budget};
}

// A memory cgroup with the given limit (v2 memory.max, else v1 memory.limit_in_bytes).
function cgroup(limit) {
  const v2 = "/sys/fs/cgroup/dip_peer", v1 = "/sys/fs/cgroup/memory/dip_peer";
  if (fs.existsSync("/sys/fs/cgroup/cgroup.controllers") && fs.readFileSync("/sys/fs/cgroup/cgroup.controllers", "utf8").includes("memory")) {
    fs.mkdirSync(v2, {recursive: true});
    fs.writeFileSync(path.join(v2, "memory.max"), String(limit));
    return v2;
  }
  fs.mkdirSync(v1, {recursive: true});
  fs.writeFileSync(path.join(v1, "memory.limit_in_bytes"), String(limit));
  return v1;
}

function runLlama(cg) {
  dropCache(gguf);
  const req = path.join(work, "speed-request.json");
  fs.writeFileSync(req, JSON.stringify({model: gguf, threads: 2, speed: {text: prompt, n: nGen, runs: 1}}));
  const r = spawnSync("sh", ["-c", `echo $$ > ${cg}/cgroup.procs && exec node ${oracle} ${req}`], {encoding: "utf8"});
  if (r.status !== 0) throw new Error(`llama.cpp failed (status ${r.status}): ${r.stderr.slice(-400)}`);
  const s = JSON.parse(r.stdout.trim().split("\n").pop()).speed[0];
  return {tg: s.gen_tokens / s.gen_s};
}

const methods = {"dip dense streaming": ["--method", "dense"], "dip DIP 0.5": ["--method", "dip", "--mlp-density", "0.5"],
  "dip DIP-CA 0.5": ["--method", "dip-ca", "--mlp-density", "0.5", "--gamma", "0.2"]};
const samples = {"llama.cpp (mmap, cgroup)": []};
for (const k of Object.keys(methods)) samples[k] = [];
let budget = 0, overhead = 0, within = true;
let cg = null;
for (let r = 0; r < rounds; r++) {
  for (const [k, m] of Object.entries(methods)) {
    process.stderr.write(`round ${r + 1}: ${k}\n`);
    const x = runDip(m);
    samples[k].push(x.tg);
    budget = x.budget;
    overhead = x.overhead;
    within &&= x.within;
  }
  cg ??= cgroup(budget + overhead + 64 * 2 ** 20);
  process.stderr.write(`round ${r + 1}: llama.cpp\n`);
  samples["llama.cpp (mmap, cgroup)"].push(runLlama(cg).tg);
}
const ll = median(samples["llama.cpp (mmap, cgroup)"]);
console.log(`${path.basename(gguf)} (${(fs.statSync(gguf).size / 1e9).toFixed(2)} GB), ${cpuName()}, 2 threads, ` +
  `${nGen} generated tokens, medians of ${rounds} rounds, page cache dropped before every run`);
console.log(`DRAM: dip --mlp-cache ${share}% = budget ${(budget / 2 ** 20).toFixed(0)} MiB (peak RSS within budget + ` +
  `${(overhead / 2 ** 20).toFixed(0)} MiB overhead: ${within}); llama.cpp's cgroup limit ${((budget + overhead) / 2 ** 20 + 64).toFixed(0)} MiB\n`);
console.log("| engine | generation tokens/s | vs llama.cpp |");
console.log("| --- | --- | --- |");
for (const [k, v] of Object.entries(samples)) console.log(`| ${k} | ${median(v).toFixed(2)} | ${(median(v) / ll).toFixed(2)}x |`);
fs.writeFileSync(path.join(work, "flash_peer.json"), JSON.stringify({budget, overhead, share, nGen, rounds, samples}, null, 1));
try { fs.rmdirSync(cg); } catch { /* processes may still be leaving it */ }
