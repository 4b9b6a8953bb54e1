// Simulator throughput: column accesses replayed per second by `dip simulate` for each eviction
// policy, on synthetic DIP masks of a Llama-3-8B shape (the paper's size) and the default model's
// shape. Median of --runs runs; the wall time of each whole simulate call alongside.
//
//   node bench/sim_bench.mjs [--tokens 256] [--runs 3]
import {spawnSync} from "node:child_process";
import {dip, parseArgs, median, cpuName} from "./lib.mjs";

const args = parseArgs(process.argv.slice(2));
const tokens = Number(args.tokens ?? 256), runs = Number(args.runs ?? 3);
console.log(`dip simulate, synthetic DIP masks (density 0.5), ${tokens} tokens, ${cpuName()}, median of ${runs} runs`);
console.log("| shape | policy | column accesses | M accesses/s (masks synthesized + replayed) | wall s of the call |");
console.log("| --- | --- | --- | --- | --- |");
for (const shape of ["llama-3-8b", "default"]) {
  for (const policy of ["none", "lru", "lfu", "belady"]) {
    const rate = [], wall = [];
    let events = 0;
    for (let r = 0; r < runs; r++) {
      const t0 = performance.now();
      const p = spawnSync(dip, ["simulate", "--shape", shape, "--density", "0.5", "--gen", String(tokens), "--policy", policy,
        "--dram-size", shape === "default" ? "0.04" : "12", "--json"], {encoding: "utf8"});
      if (p.status !== 0) throw new Error(p.stderr);
      wall.push((performance.now() - t0) / 1000);
      const j = JSON.parse(p.stdout.trim().split("\n").pop());
      events = j.events;
      rate.push(j.events / j.seconds / 1e6);
    }
    console.log(`| ${shape} | ${policy} | ${events} | ${median(rate).toFixed(1)} | ${median(wall).toFixed(2)} |`);
  }
}
