// Threads and load: token generation on the default model with more threads than cores, and two
// runs of ours at once on the same machine, against a solo run with as many threads as cores,
// in the same rounds (medians; the machine is shared and noisy). With --flash also the MLP-on-
// flash path (a 50% MLP cache), whose reads add I/O waits to the same loops.
//
//   node bench/threads_bench.mjs [--rounds 5] [--gen 128] [--threads 1,2,4,8] [--flash]
//
// Targets: --threads 4x the cores within 25% of the solo run with the core count; each of two
// concurrent runs at least 40% of a solo run. Prints a Markdown table; writes OUT/threads.json.
import {spawn} from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

import {cpuName, dip, flashImage, median, parseArgs, prompt, root} from "./lib.mjs";

const args = parseArgs(process.argv.slice(2));
const rounds = Number(args.rounds ?? 5);
const nGen = Number(args.gen ?? 128);
const cores = os.availableParallelism();
const threadList = (args.threads ?? `1,${cores},${2 * cores},${4 * cores}`).split(",").map(Number);
const out = path.resolve(args.out ?? path.join(root, "build/bench"));
const model = path.join(root, "models/default.gguf");
if (!fs.existsSync(dip) || !fs.existsSync(model)) { console.error(`threads_bench: needs ${dip} and ${model}`); process.exit(1); }
if (!(rounds >= 1) || !(nGen >= 2) || threadList.some((t) => !(t >= 1))) {
  console.error("threads_bench: bad --rounds/--gen/--threads"); process.exit(1);
}
const flashArgs = "flash" in args || process.argv.includes("--flash")
  ? ["--flash", flashImage(model), "--mlp-cache", "50%"] : [];

// One `dip generate` as a promise of its generation tokens/s.
function gen(threads) {
  return new Promise((resolve, reject) => {
    const p = spawn(dip, ["generate", "-m", model, "-p", prompt, "-n", String(nGen), "-t", String(threads), "--temp", "0",
      "--ignore-eos", "--json", ...flashArgs], {stdio: ["ignore", "pipe", "pipe"]});
    let so = "", se = "";
    p.stdout.on("data", (d) => (so += d));
    p.stderr.on("data", (d) => (se += d));
    p.on("close", (code) => {
      if (code !== 0) return reject(new Error(`dip generate -t ${threads} failed: ${se}`));
      const j = JSON.parse(so.trim().split("\n").pop());
      resolve(j.gen_steps / j.gen_s);
    });
  });
}

const solo = Object.fromEntries(threadList.map((t) => [t, []]));
const pair = [];
for (let r = 0; r < rounds; r++) {
  process.stderr.write(`\rround ${r + 1}/${rounds}   `);
  for (const t of threadList) solo[t].push(await gen(t));
  pair.push(...(await Promise.all([gen(cores), gen(cores)])));
}
process.stderr.write("\n");

const base = median(solo[cores] ?? [await gen(cores)]);
const rows = threadList.map((t) => ({case: `solo, -t ${t}`, tps: median(solo[t]), ratio: median(solo[t]) / base,
  target: t > cores ? 0.75 : null}));
rows.push({case: `two at once, -t ${cores} each`, tps: median(pair), ratio: median(pair) / base, target: 0.4});

console.log(`\nthreads_bench: default model${flashArgs.length ? ", MLP on flash (50% cache)" : ""}, ${nGen} tokens, ` +
  `${rounds} rounds, ${cores} cores available, ${cpuName()}\n`);
console.log("| run | generation tokens/s (median) | vs solo -t " + cores + " | target |");
console.log("|---|---|---|---|");
for (const x of rows) {
  const t = x.target === null ? "" : `>= ${x.target.toFixed(2)} ${x.ratio >= x.target ? "met" : "MISSED"}`;
  console.log(`| ${x.case} | ${x.tps.toFixed(1)} | ${x.ratio.toFixed(2)}x | ${t} |`);
}
fs.mkdirSync(out, {recursive: true});
fs.writeFileSync(path.join(out, flashArgs.length ? "threads-flash.json" : "threads.json"),
  JSON.stringify({cores, rounds, nGen, cpu: cpuName(), solo, pair, rows}, null, 1));
