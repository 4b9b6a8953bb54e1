// Dense token generation: our engine against llama.cpp (node-llama-cpp's prebuilt CPU
// library, and a native build for this CPU when tools/build_native_llama.sh has made one) on the
// same GGUF files, same threads, in the same run, runs interleaved so that machine noise hits
// all of them. Also measures memory read bandwidth (bench/membw) to say how close
// generation is to the limit (bytes read per token x tokens/s).
//
//   node bench/dense_bench.mjs [--runs 5] [--threads 2] [--gen 64] [--types f16,bf16,q8_0,q4_0]
//                              [--shape 2048,16,5632,16] [--prompt-repeat 1] [--out build/bench]
//
// --prompt-repeat R: the prompt is the bench prose R times (about 138 tokens each; 4 for a
// prompt of about 550 tokens, as llama.cpp's pp512).
//
// Models: Llama-shaped, random weights, written once by `dip make-test-model` into OUT/models.
// Prints a Markdown table; writes OUT/dense.json.
import fs from "node:fs";
import path from "node:path";

import {cpuName, haveNativeLlama, llamaBench, measureBw, median, parseArgs, prompt, requireTools, root, runDip, runLlama, runLlamaNative,
  membw, testModel} from "./lib.mjs";

const args = parseArgs(process.argv.slice(2));
const runs = Number(args.runs ?? 5);
const threads = Number(args.threads ?? 2);
const nGen = Number(args.gen ?? 64);
const types = (args.types ?? "f16,bf16,q8_0,q4_0").split(",");
const [nEmbd, nLayer, nFf, nHead] = (args.shape ?? "2048,16,5632,16").split(",").map(Number);
const out = path.resolve(args.out ?? path.join(root, "build/bench"));
requireTools(membw);
if (!(runs >= 1) || !(threads >= 1) || !(nGen >= 2)) { console.error("dense_bench: bad --runs/--threads/--gen"); process.exit(1); }
const shape = {nEmbd, nLayer, nFf, nHead, nHeadKv: nHead};
const repeat = Number(args["prompt-repeat"] ?? 1);
if (!(Number.isInteger(repeat) && repeat >= 1)) { console.error("dense_bench: --prompt-repeat needs a whole number >= 1"); process.exit(1); }
const opts = {threads, nGen, workDir: out, text: Array(repeat).fill(prompt).join(" ")};
const native = haveNativeLlama();
if (!native) console.error(`dense_bench: no native llama.cpp build (${llamaBench}); tools/build_native_llama.sh makes one`);

// The machine's memory bandwidth drifts with its neighbours' load: it is measured once up
// front (table header) and again right before every run of ours, and each run's share of
// the bandwidth is computed against its own measurement.
const bw = measureBw(threads, 7);
const files = Object.fromEntries(types.map((t) => [t, testModel(path.join(out, "models"), t, shape)]));
const results = [];
for (const t of types) {
  const d = [], l = [], nat = [];
  runDip(files[t], opts);  // warm the page cache
  for (let r = 0; r < runs; r++) {
    process.stderr.write(`\r${t}: run ${r + 1}/${runs}   `);
    const before = measureBw(threads, 3).gbps_median;
    d.push({...runDip(files[t], opts), bw: before});
    l.push(runLlama(files[t], opts));
    if (native) nat.push(runLlamaNative(files[t], {...opts, promptTokens: d[d.length - 1].prompt_tokens}));
  }
  process.stderr.write("\n");
  const row = {
    type: t, file_bytes: fs.statSync(files[t]).size, bytes_per_token: d[0].bytes, prompt_tokens: d[0].prompt_tokens,
    dip_pp: median(d.map((x) => x.pp)), llama_pp: median(l.map((x) => x.pp)),
    dip_tg: median(d.map((x) => x.tg)), llama_tg: median(l.map((x) => x.tg)),
    dip_tg_runs: d.map((x) => x.tg), llama_tg_runs: l.map((x) => x.tg),
  };
  if (native) {
    row.native_pp = median(nat.map((x) => x.pp));
    row.native_tg = median(nat.map((x) => x.tg));
    row.pp_ratio_native = row.dip_pp / row.native_pp;
    row.tg_ratio_native = row.dip_tg / row.native_tg;
  }
  row.pp_ratio = row.dip_pp / row.llama_pp;
  row.tg_ratio = row.dip_tg / row.llama_tg;
  row.dip_gbps = row.dip_tg * row.bytes_per_token / 1e9;
  row.llama_gbps = row.llama_tg * row.bytes_per_token / 1e9;
  row.bw_share = median(d.map((x) => x.tg * row.bytes_per_token / 1e9 / x.bw));
  row.bw_runs = d.map((x) => x.bw);
  row.limit_tg = bw.gbps_median * 1e9 / row.bytes_per_token;
  results.push(row);
}

const cpu = cpuName();
const f2 = (x) => x.toFixed(2), f1 = (x) => x.toFixed(1);
console.log(`\nDense generation, ${nEmbd}x${nLayer} Llama (d_ff ${nFf}, ${nHead} heads), ${threads} threads, ` +
  `prompt ${results[0].prompt_tokens} tokens, ${nGen} generated, median of ${runs} interleaved runs`);
console.log(`CPU: ${cpu}; memory read bandwidth (bench/membw, ${threads} threads): ${f1(bw.gbps_median)} GB/s\n`);
console.log("| type | MB read/token | prompt t/s dip | prompt t/s llama.cpp | ratio | gen t/s dip | gen t/s llama.cpp | ratio | dip GB/s | share of read BW | bound t/s |");
console.log("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
for (const r of results) {
  console.log(`| ${r.type.toUpperCase()} | ${f1(r.bytes_per_token / 1e6)} | ${f1(r.dip_pp)} | ${f1(r.llama_pp)} | ${f2(r.pp_ratio)} | ` +
    `${f1(r.dip_tg)} | ${f1(r.llama_tg)} | ${f2(r.tg_ratio)} | ${f1(r.dip_gbps)} | ${(100 * r.bw_share).toFixed(0)}% | ${f1(r.limit_tg)} |`);
}
if (native) {
  console.log(`\nAgainst native llama.cpp (${path.relative(root, llamaBench)}, -march=native; its pp test: the prompt ` +
    `from an empty context; its tg test: ${nGen} tokens after as many tokens of context as the prompt (-d), where dip ` +
    `generates them), same runs:\n`);
  console.log("| type | prompt t/s dip | prompt t/s native | ratio | gen t/s dip | gen t/s native | ratio | native GB/s |");
  console.log("| --- | --- | --- | --- | --- | --- | --- | --- |");
  for (const r of results) {
    console.log(`| ${r.type.toUpperCase()} | ${f1(r.dip_pp)} | ${f1(r.native_pp)} | ${f2(r.pp_ratio_native)} | ${f1(r.dip_tg)} | ` +
      `${f1(r.native_tg)} | ${f2(r.tg_ratio_native)} | ${f1(r.native_tg * r.bytes_per_token / 1e9)} |`);
  }
}
fs.writeFileSync(path.join(out, "dense.json"), JSON.stringify({cpu, threads, runs, gen: nGen, prompt_repeat: repeat, shape: {nEmbd, nLayer, nFf, nHead}, membw: bw, results}, null, 1));
console.log("\nratio = dip / llama.cpp (medians). share of read BW: median over runs of (dip GB/s / bench/membw measured just before that run).");
console.log("bound t/s: bandwidth measured up front / bytes read per token.");
console.log(`\nwrote ${path.join(out, "dense.json")}`);
