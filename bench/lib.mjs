// Shared pieces of the benchmark drivers: paths, argument parsing, the prompt, running our
// engine and llama.cpp (node-llama-cpp) on a GGUF file, writing test models, medians.
import {execFileSync, spawnSync} from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import {fileURLToPath} from "node:url";

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
export const dip = path.join(root, "build/release/dip");
export const membw = path.join(root, "build/release/bench/membw");
const oracle = path.join(root, "tests/oracle/llama_oracle.mjs");

export function parseArgs(argv) {
  const args = {};
  for (let i = 0; i < argv.length; i++) {
    if (argv[i].startsWith("--")) args[argv[i].slice(2)] = argv[i + 1];
  }
  return args;
}

export function requireTools(...files) {
  for (const f of [dip, oracle, ...files]) {
    if (!fs.existsSync(f)) { console.error(`bench: ${f} is missing (run ./setup.sh --test first)`); process.exit(1); }
  }
}

// About 128 tokens of plain prose as the prompt (the same text for both engines).
export const prompt = "The old lighthouse keeper climbed the narrow stairs every evening, carrying a lamp, a book " +
  "and a small loaf of bread. From the top he could see the harbour, the fishing boats coming home, " +
  "and far away the dark line of the hills where the river began. He had lived there for forty years, " +
  "and in all that time the light had never once gone out, not in the great storm of the winter when " +
  "the sea rose over the rocks, nor on the quiet summer nights when nobody seemed to need it at all.";

export const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

// A Llama-shaped GGUF with random weights (the default model's vocabulary), written once.
// fast: `--fast-weights` (near-normal weights drawn several times faster; models of tens of GB).
// llama.cpp's mixed recipes (q3_k_m, q4_k_m, q5_k_s, ...) are `dip convert`ed from the F16 model
// of the same shape.
export function testModel(dir, type, {nEmbd, nLayer, nFf, nHead, nHeadKv, fast = false}) {
  const f = path.join(dir, `llama-${nEmbd}x${nLayer}-ff${nFf}-h${nHead}-kv${nHeadKv}-${type}${fast ? "-fastw" : ""}.gguf`);
  if (!fs.existsSync(f) && /^q\d_k_[sml]$/.test(type)) {  // llama.cpp's mixes, by dip convert
    const src = testModel(dir, "f16", {nEmbd, nLayer, nFf, nHead, nHeadKv, fast});
    process.stderr.write(`writing ${f} ...\n`);
    execFileSync(dip, ["convert", src, f + ".tmp", "--type", type], {stdio: ["ignore", "ignore", "inherit"]});
    fs.renameSync(f + ".tmp", f);
  }
  if (!fs.existsSync(f)) {
    fs.mkdirSync(dir, {recursive: true});
    process.stderr.write(`writing ${f} ...\n`);
    execFileSync(dip, ["make-test-model", "--arch", "llama", "--type", type, "--n-embd", String(nEmbd),
      "--n-layer", String(nLayer), "--n-ff", String(nFf), "--n-head", String(nHead), "--n-head-kv", String(nHeadKv),
      "--vocab", path.join(root, "models/default.gguf"), "--seed", "7", ...(fast ? ["--fast-weights", "--progress"] : []),
      f + ".tmp"], {stdio: ["ignore", "ignore", "inherit"]});
    fs.renameSync(f + ".tmp", f);
  }
  return f;
}

// The flash benchmarks' large model: Llama-shaped, d 2048, 24 layers, d_ff 5632, GQA 16/4, F16
// (2.2 GB). nEmbd 4096: d 4096, 8 layers, d_ff 14336, GQA 32/8 (Llama-3-8B's layers, 3.6 GB),
// whose columns are 2.5x longer (down 8 KiB, up+gate 56 KiB): fewer read requests per byte.
export function largeFlashModel(nEmbd = 2048) {
  const dir = path.join(root, "build/bench/models");
  if (nEmbd === 4096) return testModel(dir, "f16", {nEmbd: 4096, nLayer: 8, nFf: 14336, nHead: 32, nHeadKv: 8});
  if (nEmbd !== 2048) throw new Error(`no large flash model with d ${nEmbd} (2048 or 4096)`);
  return testModel(dir, "f16", {nEmbd: 2048, nLayer: 24, nFf: 5632, nHead: 16, nHeadKv: 4});
}

// The flash image of a GGUF file (in build/bench/flash), written by `dip convert --flash` when
// missing or older than the model or than the dip binary (whose image format it must match).
// The flash image of a GGUF file under build/bench/flash, written when missing or older than the
// model or dip; with layoutText, in the co-activation layout learned from that text.
export function flashImage(gguf, layoutText) {
  const dir = path.join(root, "build/bench/flash");
  fs.mkdirSync(dir, {recursive: true});
  const f = path.join(dir, path.basename(gguf).replace(/\.gguf$/, layoutText ? ".coact.dipflash" : ".dipflash"));
  const stale = !fs.existsSync(f) || fs.statSync(f).mtimeMs < Math.max(fs.statSync(gguf).mtimeMs, fs.statSync(dip).mtimeMs);
  if (stale) {
    process.stderr.write(`converting ${gguf} to ${f} ...\n`);
    execFileSync(dip, ["convert", gguf, f, "--flash", ...(layoutText ? ["--layout-from", layoutText] : [])],
      {stdio: ["ignore", "ignore", "inherit"]});
  }
  return f;
}

// `dip generate` with --json; extra: more flags (e.g. the pruning method); text: the prompt.
export function runDip(file, {threads, nGen, extra = [], text = prompt}) {
  const r = spawnSync(dip, ["generate", "-m", file, "-p", text, "-n", String(nGen), "-t", String(threads),
    "--temp", "0", "--ignore-eos", "--json", ...extra], {encoding: "utf8"});
  if (r.status !== 0) throw new Error(`dip generate failed: ${r.stderr}`);
  const j = JSON.parse(r.stdout.trim().split("\n").pop());
  return {pp: j.prompt_tokens / j.prompt_s, tg: j.gen_steps / j.gen_s, bytes: j.bytes_per_token,
          prompt_tokens: j.prompt_tokens, density: j.mlp_density ?? 1};
}

export function runLlama(file, {threads, nGen, workDir, text = prompt}) {
  const req = path.join(workDir, "speed-request.json");
  fs.mkdirSync(workDir, {recursive: true});
  fs.writeFileSync(req, JSON.stringify({model: file, threads, speed: {text, n: nGen, runs: 1}}));
  const r = spawnSync("node", [oracle, req], {encoding: "utf8"});
  if (r.status !== 0) throw new Error(`llama.cpp run failed: ${r.stderr}`);
  const s = JSON.parse(r.stdout.trim().split("\n").pop()).speed[0];
  return {pp: s.prompt_tokens / s.prompt_s, tg: s.gen_tokens / s.gen_s};
}

// A native llama.cpp build for this CPU (tools/build_native_llama.sh), when one is present: the
// peer a llama.cpp user would run here, faster on quantized types than node-llama-cpp's generic
// prebuilt library.
export const llamaBench = path.join(root, "build/llama.cpp/build/bin/llama-bench");
export const haveNativeLlama = () => fs.existsSync(llamaBench);

// llama-bench once (-r 1, after its own warm-up run): prompt processing of promptTokens tokens
// and generation of nGen tokens, each in a fresh context, as its pp and tg tests measure them.
// llama-bench's pp test from an empty context, and its tg test after `promptTokens` tokens of
// context (-d), where dip and node-llama-cpp generate: attention then reads the same cache.
export function runLlamaNative(file, {threads, nGen, promptTokens}) {
  const bench = (args) => {
    const r = spawnSync(llamaBench, ["-m", file, ...args, "-t", String(threads), "-r", "1", "-o", "json"],
      {encoding: "utf8"});
    if (r.status !== 0) throw new Error(`llama-bench failed: ${r.stderr}`);
    return JSON.parse(r.stdout);
  };
  const pp = bench(["-p", String(promptTokens), "-n", "0"]).find((x) => x.n_prompt > 0 && x.n_gen === 0);
  const tg = bench(["-p", "0", "-n", String(nGen), "-d", String(promptTokens)]).find((x) => x.n_gen > 0 && x.n_prompt === 0);
  if (!pp || !tg) throw new Error(`llama-bench: no pp/tg results for ${file}`);
  return {pp: pp.avg_ts, tg: tg.avg_ts};
}

export function measureBw(threads, runs) {
  return JSON.parse(execFileSync(membw, [String(threads), "1024", String(runs)], {encoding: "utf8"}));
}

export function cpuName() {
  return (fs.readFileSync("/proc/cpuinfo", "utf8").match(/model name\s*:\s*(.*)/) ?? [, "?"])[1];
}
