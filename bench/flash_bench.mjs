// Flash-resident MLP, end to end: tokens/s of dense streaming (every column through an LRU
// cache), DIP and DIP-CA at the same DRAM budgets, on this disk and on an emulated 1 GB/s phone
// flash, for the default model and a 2.2 GB Llama-shaped model with random weights. Runs are
// interleaved (every configuration once per round), medians over rounds.
//
//   node bench/flash_bench.mjs [--rounds 2] [--big-tokens 16] [--small-tokens 64] [--out DIR] [--only small|big]
//                              [--caches 10,25,50,75] [--big-embd 2048|4096] [--flashes disk,1GB/s]
//                              [--layout TEXT] [--mask-blocks 4,8] [--methods dense,dip-ca-0.7,...]
//                              [--gaps 0,auto,32KiB]  (default auto, as the engine) [--prefetch off,on]
//                              [--lora METHOD=ADAPTER,...] [--also-small MODEL.gguf,...]
//
// --layout TEXT also runs every configuration from an image in the co-activation layout learned
// from TEXT (`dip convert --flash --layout-from TEXT`), in the same rounds, and prints requests
// per token and tokens/s of both layouts side by side.
//
// --big-embd 4096 replaces the large model by one with Llama-3-8B's layer shape (d 4096, 8
// layers, d_ff 14336, GQA 32/8, F16, 3.6 GB): its columns are 2.5x longer, so a pruned token's
// misses are fewer, larger reads.
//
// --mask-blocks B,... adds DIP-CA 0.7 and 0.5 with `--mask-block B` (columns kept in groups of B
// adjacent ones: fewer, larger reads) and prints the cut in requests per token. --methods keeps
// only the named configurations (dense, dip-0.7, dip-ca-0.7, dip-0.5, dip-ca-0.5, dip-ca-0.7-bB, ...).
//
// --gaps G,... runs every configuration with each --flash-gap (reads joined across gaps of at most
// G bytes; auto: the device's break-even gap from `dip flash-probe`, cached beside the image), in
// the same rounds, and prints a table per gap against the first (the main tables show the first).
//
// --prefetch off,on runs every configuration with and without `--flash-prefetch on` (the next
// layer's up+gate bundles predicted from the residual stream and read during its attention), in
// the same rounds, and prints what prefetching read ahead, how much of it was used, and tokens/s
// against the first setting.
//
// --lora METHOD=ADAPTER,... adds METHOD with a recovery adapter (`--lora ADAPTER`, kept in DRAM
// and counted in the budget) as METHOD+lora, on the default model only: what an adapter trained
// under those masks costs in tokens/s. --also-small MODEL,... runs more models of the default's
// size in the same rounds (the default with an adapter merged by `dip convert --lora`).
//
// Budgets are given as --mlp-cache X%: the resident part (attention, embeddings, a KV cache of
// 1024 tokens, buffers) plus X% of the MLP column bytes; the table shows the total DRAM that makes.
import {spawnSync} from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import {dip, root, parseArgs, largeFlashModel, flashImage, median, cpuName} from "./lib.mjs";

const args = parseArgs(process.argv.slice(2));
const rounds = Number(args.rounds ?? 2);
const out = path.resolve(args.out ?? path.join(root, "build/bench/flash"));
fs.mkdirSync(out, {recursive: true});
// A short prompt: on the large model every prompt token streams its columns too.
const prompt = "The old lighthouse keeper climbed the stairs";

const models = [];
if (args.only !== "big") {
  models.push({name: "default (29M, F16)", gguf: path.join(root, "models/default.gguf"), nGen: Number(args["small-tokens"] ?? 64), isDefault: true});
  // --also-small FILE,...: more models of the default's size in the same rounds (a merged adapter).
  for (const f of args["also-small"] ? String(args["also-small"]).split(",") : []) {
    models.push({name: path.basename(f), gguf: path.resolve(f), nGen: Number(args["small-tokens"] ?? 64)});
  }
}
if (args.only !== "small") {
  const big = Number(args["big-embd"] ?? 2048);
  const name = big === 4096 ? "llama 4096x8 ff14336 (1.8B, F16, 3.6 GB)" : "llama 2048x24 ff5632 (1.1B, F16, 2.2 GB)";
  models.push({name, gguf: largeFlashModel(big), nGen: Number(args["big-tokens"] ?? 16)});
}
// DIP-CA at gamma 0.5: on the default model's held-out text (docs/results/sweep.csv, 50% cache)
// density 0.7 costs +1.0% perplexity (DIP alone +0.7%), density 0.5 +9.0% (DIP +6.2%).
const dipCa = (d) => ["--method", "dip-ca", "--mlp-density", d, "--gamma", "0.5"];
const blocks = args["mask-blocks"] ? String(args["mask-blocks"]).split(",").map(Number) : [];
const allMethods = [
  {key: "dense", flags: ["--method", "dense"]},
  {key: "dip-0.7", flags: ["--method", "dip", "--mlp-density", "0.7"]},
  {key: "dip-ca-0.7", flags: dipCa("0.7")},
  {key: "dip-0.5", flags: ["--method", "dip", "--mlp-density", "0.5"]},
  {key: "dip-ca-0.5", flags: dipCa("0.5")},
  ...blocks.flatMap((b) => ["0.7", "0.5"].map((d) => ({key: `dip-ca-${d}-b${b}`, flags: [...dipCa(d), "--mask-block", String(b)]}))),
];
// --lora METHOD=FILE,...: METHOD again with a recovery adapter (default model only), as METHOD+lora.
for (const spec of args.lora ? String(args.lora).split(",") : []) {
  const [key, file] = spec.split("=");
  const base = allMethods.find((x) => x.key === key);
  if (!base || !file) throw new Error(`--lora ${spec}: give METHOD=FILE with one of ${allMethods.map((x) => x.key).join(", ")}`);
  allMethods.push({key: `${key}+lora`, flags: [...base.flags, "--lora", path.resolve(file)], smallOnly: true});
}
const methods = allMethods.filter((x) => !args.methods || String(args.methods).split(",").includes(x.key));
const caches = (args.caches ?? "10,25,50,75").split(",").map(Number);
const flashes = [{key: "disk", flags: []}, {key: "1GB/s", flags: ["--flash-bw", "1GB/s"]}]
  .filter((f) => (args.flashes ?? "disk,1GB/s").split(",").includes(f.key));
const layouts = args.layout ? ["model", "coact"] : ["model"];
const gaps = String(args.gaps ?? "auto").split(",");
const prefetches = String(args.prefetch ?? "off").split(",");
for (const p of prefetches) if (p !== "on" && p !== "off") throw new Error(`--prefetch takes on and off, not '${p}'`);
// The results the main tables show: the first gap and prefetch setting (older JSON lacks them).
const first = (r) => (r.gap ?? "0") === gaps[0] && (r.prefetch ?? "off") === prefetches[0];

function run(m, img, method, cache, fl, gap, prefetch) {
  const r = spawnSync(dip, ["generate", "-m", m.gguf, "-p", prompt, "-n", String(m.nGen), "--temp", "0", "--ignore-eos", "-c", "1024",
    "--json", "-t", "2", ...method.flags, "--flash", img, "--mlp-cache", `${cache}%`, "--flash-gap", gap, "--flash-prefetch", prefetch, ...fl.flags], {encoding: "utf8"});
  if (r.status !== 0) throw new Error(`dip generate failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split("\n").pop()).flash;
}

const results = [];
if (args.report) {  // print the tables of an earlier run
  const prev = JSON.parse(fs.readFileSync(args.report, "utf8"));
  results.push(...prev.results);
  models.splice(0, models.length, ...[...new Set(prev.results.map((r) => r.model))].map((name) => ({name})));
}
for (const m of args.report ? [] : models) {
  const imgs = {model: flashImage(m.gguf), coact: args.layout ? flashImage(m.gguf, path.resolve(args.layout)) : null};
  const configs = [];
  for (const prefetch of prefetches) for (const gap of gaps) for (const layout of layouts) for (const fl of flashes) for (const cache of caches) {
    for (const method of methods) {
      if (cache === 10 && !method.key.startsWith("dip-ca")) continue;  // the smallest budget: only to find equal throughput
      if (method.smallOnly && !m.isDefault) continue;  // an adapter is made for one model
      configs.push({method, cache, fl, layout, gap, prefetch});
    }
  }
  const samples = configs.map(() => []);
  for (let r = 0; r < rounds; r++) {
    configs.forEach((c, i) => {
      process.stderr.write(`\r${m.name}: round ${r + 1}/${rounds}, run ${i + 1}/${configs.length}   `);
      samples[i].push(run(m, imgs[c.layout], c.method, c.cache, c.fl, c.gap, c.prefetch));
    });
  }
  process.stderr.write("\n");
  configs.forEach((c, i) => {
    const s = samples[i];
    const pick = (k) => median(s.map((x) => x[k]));
    results.push({model: m.name, layout: c.layout, gap: c.gap, prefetch: c.prefetch,
      prefetch_mib_per_token: pick("prefetch_bytes_per_token") / 2 ** 20, prefetch_used: pick("prefetch_used"), gap_bytes: s[0].flash_gap, flash: c.fl.key, mlp_cache: c.cache, method: c.method.key,
      tokens_per_second: pick("tokens_per_second"), flash_mib_per_token: pick("flash_bytes_per_token") / 2 ** 20,
      requests_per_token: pick("flash_requests_per_token"), hit_rate: pick("hit_rate"), budget_mib: s[0].budget / 2 ** 20,
      peak_rss_mib: Math.max(...s.map((x) => x.peak_rss)) / 2 ** 20, overhead_mib: s[0].overhead_rss / 2 ** 20,
      within_budget: s.every((x) => x.within_budget), wait_ms: 1e3 * pick("flash_wait_s") / m.nGen,
      compute_ms: 1e3 * pick("mlp_compute_s") / m.nGen, other_ms: 1e3 * pick("other_s") / m.nGen, runs: s.length});
  });
}

if (!args.report) fs.writeFileSync(path.join(out, "flash_bench.json"), JSON.stringify({cpu: cpuName(), rounds, results}, null, 1));
const f1 = (x) => x.toFixed(1), f2 = (x) => x.toFixed(2);
console.log(`Flash-resident MLP, ${cpuName()}, 2 threads, medians of ${rounds} interleaved rounds (tokens/s of generation)`);
for (const m of models) {
  for (const fl of flashes) {
    console.log(`\n${m.name}, flash: ${fl.key === "disk" ? "this disk (O_DIRECT, io_uring)" : "emulated 1 GB/s"}`);
    const rated = methods.filter((x) => x.key.startsWith("dip-ca"));
    console.log("| MLP cache | DRAM budget | " + methods.map((x) => x.key).join(" | ") + " | " + rated.map((x) => `${x.key} / dense`).join(" | ") + " |");
    console.log("|" + " --- |".repeat(methods.length + rated.length + 2));
    for (const cache of caches) {
      const get = (k) => results.find((r) => r.model === m.name && (r.layout ?? "model") === "model" && first(r) && r.flash === fl.key && r.mlp_cache === cache &&
        r.method === k);
      const cells = methods.map((x) => { const r = get(x.key); return r ? `${f2(r.tokens_per_second)} (hit ${f2(r.hit_rate)}, ${f1(r.flash_mib_per_token)} MiB, ${f1(r.requests_per_token)} req)` : "-"; });
      const d = get("dense");
      const ratio = (k) => (d && get(k) ? f2(get(k).tokens_per_second / d.tokens_per_second) + "x" : "-");
      const any = methods.map((x) => get(x.key)).find((r) => r);
      console.log(`| ${cache}% | ${f1(any.budget_mib)} MiB | ${cells.join(" | ")} | ${rated.map((x) => ratio(x.key)).join(" | ")} |`);
    }
    // Equal throughput: the smallest DIP-CA budget that reaches dense streaming's tokens/s.
    for (const k of rated.map((x) => x.key)) {
      for (const cache of caches.filter((c) => c !== 10)) {
        const same = (r) => r.model === m.name && (r.layout ?? "model") === "model" && first(r) && r.flash === fl.key;
        const d = results.find((r) => same(r) && r.mlp_cache === cache && r.method === "dense");
        if (!d) continue;
        const ok = results.filter((r) => same(r) && r.method === k && r.tokens_per_second >= d.tokens_per_second)
          .sort((a, b) => a.budget_mib - b.budget_mib)[0];
        console.log(`  ${k} reaches dense streaming's ${f2(d.tokens_per_second)} tokens/s (budget ${f1(d.budget_mib)} MiB) with ` +
          (ok ? `${f1(ok.budget_mib)} MiB = ${(100 * ok.budget_mib / d.budget_mib).toFixed(0)}% of its DRAM` : "none of the budgets tried"));
      }
    }
  }
  // Requests per token with the columns chosen in blocks, against single columns (same density).
  const blocked = results.filter((r) => r.model === m.name && first(r) && /-b[0-9]+$/.test(r.method));
  if (blocked.length) {
    console.log(`\n${m.name}: --mask-block against single columns (requests per token, tokens/s)`);
    console.log("| flash | MLP cache | method | requests | requests, blocks | cut | t/s | t/s, blocks | t/s ratio |");
    console.log("|" + " --- |".repeat(9));
    for (const b of blocked) {
      const base = b.method.replace(/-b[0-9]+$/, "");
      const r = results.find((x) => x.model === m.name && first(x) && x.layout === b.layout && x.flash === b.flash && x.mlp_cache === b.mlp_cache && x.method === base);
      if (!r) continue;
      console.log(`| ${b.flash} | ${b.mlp_cache}% | ${b.method} | ${f1(r.requests_per_token)} | ${f1(b.requests_per_token)} | ` +
        `${f2(r.requests_per_token / b.requests_per_token)}x | ${f2(r.tokens_per_second)} | ${f2(b.tokens_per_second)} | ${f2(b.tokens_per_second / r.tokens_per_second)}x |`);
    }
  }
  if (results.some((r) => r.model === m.name && r.layout === "coact")) {
    console.log(`\n${m.name}: model order against the co-activation layout (requests per token, tokens/s)`);
    console.log("| flash | MLP cache | method | requests model order | requests layout | requests ratio | t/s model order | t/s layout | t/s ratio |");
    console.log("|" + " --- |".repeat(9));
    for (const r of results.filter((x) => x.model === m.name && first(x) && x.layout === "model")) {
      const c = results.find((x) => x.model === m.name && first(x) && x.layout === "coact" && x.flash === r.flash && x.mlp_cache === r.mlp_cache && x.method === r.method);
      if (!c) continue;
      console.log(`| ${r.flash} | ${r.mlp_cache}% | ${r.method} | ${f1(r.requests_per_token)} | ${f1(c.requests_per_token)} | ` +
        `${f2(r.requests_per_token / c.requests_per_token)}x | ${f2(r.tokens_per_second)} | ${f2(c.tokens_per_second)} | ${f2(c.tokens_per_second / r.tokens_per_second)}x |`);
    }
  }
  if (gaps.length > 1) {
    console.log(`\n${m.name}: reads joined across gaps (--flash-gap) against --flash-gap ${gaps[0]}, same rounds`);
    console.log("| flash | MLP cache | method | gap | gap bytes | requests / token | MiB / token | t/s | t/s vs gap " + gaps[0] + " | / dense streaming, same gap |");
    console.log("|" + " --- |".repeat(10));
    const at = (r, gap, method) => results.find((x) => x.model === m.name && (x.layout ?? "model") === "model" && x.flash === r.flash &&
      x.mlp_cache === r.mlp_cache && (x.gap ?? "0") === gap && (x.prefetch ?? "off") === prefetches[0] && x.method === method);
    for (const r of results.filter((x) => x.model === m.name && (x.layout ?? "model") === "model" && x.gap !== gaps[0] &&
                                          (x.prefetch ?? "off") === prefetches[0])) {
      const base = at(r, gaps[0], r.method), dense = at(r, r.gap, "dense");
      console.log(`| ${r.flash} | ${r.mlp_cache}% | ${r.method} | ${r.gap} | ${r.gap_bytes} | ${f1(r.requests_per_token)} (${base ? f1(base.requests_per_token) : "-"}) | ` +
        `${f1(r.flash_mib_per_token)} | ${f2(r.tokens_per_second)} | ${base ? f2(r.tokens_per_second / base.tokens_per_second) + "x" : "-"} | ` +
        `${dense ? f2(r.tokens_per_second / dense.tokens_per_second) + "x" : "-"} |`);
    }
  }
  if (prefetches.length > 1) {
    console.log(`\n${m.name}: --flash-prefetch against ${prefetches[0]}, same rounds (gap ${gaps[0]})`);
    console.log("| flash | MLP cache | method | prefetch | read ahead MiB / token | used | hit rate | requests / token | t/s | t/s vs " + prefetches[0] + " |");
    console.log("|" + " --- |".repeat(10));
    const at = (r, prefetch) => results.find((x) => x.model === m.name && (x.layout ?? "model") === "model" && x.flash === r.flash &&
      x.mlp_cache === r.mlp_cache && (x.gap ?? "0") === gaps[0] && (x.prefetch ?? "off") === prefetch && x.method === r.method);
    for (const r of results.filter((x) => x.model === m.name && (x.layout ?? "model") === "model" && (x.gap ?? "0") === gaps[0] &&
                                          x.prefetch !== prefetches[0])) {
      const base = at(r, prefetches[0]);
      console.log(`| ${r.flash} | ${r.mlp_cache}% | ${r.method} | ${r.prefetch} | ${f2(r.prefetch_mib_per_token)} | ${(100 * r.prefetch_used).toFixed(1)}% | ` +
        `${f2(r.hit_rate)} (${base ? f2(base.hit_rate) : "-"}) | ${f1(r.requests_per_token)} (${base ? f1(base.requests_per_token) : "-"}) | ` +
        `${f2(r.tokens_per_second)} | ${base ? f2(r.tokens_per_second / base.tokens_per_second) + "x" : "-"} |`);
    }
  }
  const over = results.filter((r) => r.model === m.name && !r.within_budget);
  console.log(over.length ? `\nOVER BUDGET: ${over.length} runs` : `\nEvery run's peak RSS stayed within its budget + the overhead before the weights.`);
}
console.log(`\nraw results: ${path.join(out, "flash_bench.json")}`);
