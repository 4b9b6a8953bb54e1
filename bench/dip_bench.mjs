// End-to-end token generation with DIP against dense, all weights in DRAM: our dense engine,
// our engine with DIP (and DIP-CA) at one MLP density, and llama.cpp dense (node-llama-cpp) on
// the same GGUF file, same threads, runs interleaved; medians. Bytes read per token come from
// the engine's own accounting (MLP columns actually read).
//
//   node bench/dip_bench.mjs [--runs 5] [--threads 2] [--gen 64] [--density 0.5]
//                            [--large f16] [--out build/bench]
//
// Models: the default model, and a Llama-shaped model with random weights (d 2048, 16 layers,
// d_ff 5632, 16 heads, 4 KV heads; GQA makes the MLP ~74% of the weights as in Llama-3) of type
// --large (f16: 1.5 GB). Prints a Markdown table; writes OUT/dip.json.
import fs from "node:fs";
import path from "node:path";

import {cpuName, median, parseArgs, requireTools, root, runDip, runLlama, testModel} from "./lib.mjs";

const args = parseArgs(process.argv.slice(2));
const runs = Number(args.runs ?? 5);
const threads = Number(args.threads ?? 2);
const nGen = Number(args.gen ?? 64);
const density = Number(args.density ?? 0.5);
const out = path.resolve(args.out ?? path.join(root, "build/bench"));
requireTools();
if (!(runs >= 1) || !(threads >= 1) || !(nGen >= 2) || !(density > 0 && density <= 1)) {
  console.error("dip_bench: bad --runs/--threads/--gen/--density");
  process.exit(1);
}
const opts = {threads, nGen, workDir: out};
const models = [
  {name: "default (29M, F16)", file: path.join(root, "models/default.gguf")},
  {name: `Llama-shaped 2048x16 (${(args.large ?? "f16").toUpperCase()}, random)`,
   file: testModel(path.join(out, "models"), args.large ?? "f16", {nEmbd: 2048, nLayer: 16, nFf: 5632, nHead: 16, nHeadKv: 4})},
];
const variants = [
  {name: "dense", extra: []},
  {name: `DIP ${density}`, extra: ["--method", "dip", "--mlp-density", String(density)]},
  {name: `DIP-CA ${density} (gamma 0.2)`, extra: ["--method", "dip-ca", "--mlp-density", String(density), "--gamma", "0.2"]},
];
const results = [];
for (const m of models) {
  const res = Object.fromEntries(variants.map((v) => [v.name, []]));
  const llama = [];
  runDip(m.file, opts);  // warm the page cache
  for (let r = 0; r < runs; r++) {
    process.stderr.write(`\r${m.name}: run ${r + 1}/${runs}   `);
    for (const v of variants) res[v.name].push(runDip(m.file, {...opts, extra: v.extra}));
    llama.push(runLlama(m.file, opts));
  }
  process.stderr.write("\n");
  const llamaTg = median(llama.map((x) => x.tg));
  const denseTg = median(res.dense.map((x) => x.tg));
  for (const v of variants) {
    const xs = res[v.name];
    const tg = median(xs.map((x) => x.tg));
    results.push({model: m.name, file: m.file, variant: v.name, tg, tg_runs: xs.map((x) => x.tg),
                  bytes_per_token: median(xs.map((x) => x.bytes)), mlp_density: median(xs.map((x) => x.density)),
                  vs_dense: tg / denseTg, vs_llama: tg / llamaTg, llama_tg: llamaTg, llama_runs: llama.map((x) => x.tg)});
  }
}
const f1 = (x) => x.toFixed(1), f2 = (x) => x.toFixed(2);
console.log(`\nToken generation, all weights in DRAM, ${threads} threads, ${nGen} tokens, median of ${runs} interleaved runs; CPU: ${cpuName()}\n`);
console.log("| model | engine | MLP density | MB read/token | gen t/s | vs our dense | vs llama.cpp dense | bytes bound vs dense |");
console.log("| --- | --- | --- | --- | --- | --- | --- | --- |");
for (const m of models) {
  const rows = results.filter((r) => r.model === m.name);
  const dense = rows.find((r) => r.variant === "dense");
  console.log(`| ${m.name} | llama.cpp dense | 1.00 | ${f1(dense.bytes_per_token / 1e6)} | ${f1(dense.llama_tg)} | ${f2(dense.llama_tg / dense.tg)} | 1.00 | |`);
  for (const r of rows) {
    console.log(`| ${m.name} | dip ${r.variant} | ${f2(r.mlp_density)} | ${f1(r.bytes_per_token / 1e6)} | ${f1(r.tg)} | ${f2(r.vs_dense)} | ${f2(r.vs_llama)} | ${f2(dense.bytes_per_token / r.bytes_per_token)} |`);
  }
}
console.log("\nbytes bound vs dense: dense bytes per token / this run's bytes per token (the speed-up if time were bytes).");
fs.mkdirSync(out, {recursive: true});
fs.writeFileSync(path.join(out, "dip.json"), JSON.stringify({cpu: cpuName(), threads, runs, gen: nGen, density, results}, null, 1));
console.log(`wrote ${path.join(out, "dip.json")}`);
