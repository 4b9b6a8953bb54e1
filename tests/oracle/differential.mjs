// Differential test: the same GGUF files through `dip` and through llama.cpp (node-llama-cpp).
// For every architecture x tensor type x shape: token ids of test texts, next-token
// distributions at every position, a 64-token greedy continuation, and perplexity.
//
// With --lora: LoRA adapters instead (random adapters from `dip make-test-lora` on synthetic
// models of each architecture and on the default model; one and two adapters, scaled), the
// same checks with the adapters applied on both sides.
//
// usage: node differential.mjs DIP_BINARY WORK_DIR [--quick] [--types f32,q8_0,...] [--lora] [--threads N]
import fs from "node:fs";
import path from "node:path";
import {execFileSync} from "node:child_process";
import {fileURLToPath} from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const [dip, work] = process.argv.slice(2);
const quick = process.argv.includes("--quick");
const loraMode = process.argv.includes("--lora");
// --types limits the run to some tensor types (for work on one kernel); CI runs them all.
const typesArg = process.argv.indexOf("--types");
if (typesArg > 0 && !process.argv[typesArg + 1]) {
  console.error("differential.mjs: --types needs a list, e.g. --types f32,q8_0");
  process.exit(2);
}
const onlyTypes = typesArg > 0 ? process.argv[typesArg + 1].split(",") : null;
const wanted = (type) => !onlyTypes || onlyTypes.includes(type);
// Threads of each engine (2 by default). ctest runs two of these tests side by side on a 2-core
// machine with --threads 1: ggml's threads spin while they wait for each other, and two
// 2-thread llama.cpp processes on 2 cores ran each test five times slower than alone.
const threadsArg = process.argv.indexOf("--threads");
const threads = threadsArg > 0 ? Number(process.argv[threadsArg + 1]) : 2;
if (!(Number.isInteger(threads) && threads >= 1)) {
  console.error("differential.mjs: --threads needs a whole number >= 1");
  process.exit(2);
}
const shared = path.resolve(here, "../../../shared");
// Whether ggml loads its 'zen4' CPU build here (the one dip's arithmetic follows operation by
// operation): x86 with AVX-512 F/BW/VL, VNNI, BF16 and VBMI (tools/pin_llama_cpu_variant.sh keeps
// AMX hosts on it too).
const cpuFlags = (() => {
  try {
    return new Set((fs.readFileSync("/proc/cpuinfo", "utf8").match(/^flags\s*:(.*)$/m)?.[1] ?? "").trim().split(/\s+/));
  } catch {
    return new Set();
  }
})();
const zen4Build = ["avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16", "avx512vbmi"].every((f) => cpuFlags.has(f));
if (!zen4Build) console.log("llama.cpp runs another CPU build than 'zen4' here (no AVX-512 VNNI/BF16/VBMI): float-order tolerances");
fs.mkdirSync(work, {recursive: true});

const run = (args) => execFileSync(dip, args, {encoding: "utf8", maxBuffer: 1 << 28, stdio: ["ignore", "pipe", "pipe"]});
const oracle = (req) => {
  const f = path.join(work, "req.json");
  fs.writeFileSync(f, JSON.stringify({threads, ...req}));
  return JSON.parse(execFileSync("node", [path.join(here, "llama_oracle.mjs"), f], {encoding: "utf8", maxBuffer: 1 << 28, stdio: ["ignore", "pipe", "pipe"]}));
};

const texts = [
  "The President said that the people of the United States",
  "Hello world! It's 2024-11-24, and we've got 1234567 reasons.",
  "  leading spaces\n\n\ttabs and\r\nnew lines   ",
  "Ünïcödé: naïve café, 東京, Москва, ελληνικά, emoji 🦙🔥.",
  "don't DON'T we'll WE'LL it's IT'S <|endoftext|> done",
];
const pplText = path.join(work, "ppl.txt");
// About 7 000 characters of the default model's held-out text (part of the repository).
const heldout = fs.readFileSync(path.join(here, "../../models/heldout-test.txt"), "utf8");
fs.writeFileSync(pplText, heldout.slice(0, heldout.indexOf("\n", 7000) + 1));

// Relative L2 distance of the two softmax distributions of logit vectors a and b (typed arrays),
// computed in place: these vectors are a vocabulary long at every position of every case.
function relL2Probs(a, b) {
  let ma = -Infinity, mb = -Infinity;
  for (let i = 0; i < a.length; i++) { ma = Math.max(ma, a[i]); mb = Math.max(mb, b[i]); }
  let sa = 0, sb = 0;
  for (let i = 0; i < a.length; i++) { sa += Math.exp(a[i] - ma); sb += Math.exp(b[i] - mb); }
  let num = 0, den = 0;
  for (let i = 0; i < a.length; i++) {
    const pa = Math.exp(a[i] - ma) / sa, pb = Math.exp(b[i] - mb) / sb;
    num += (pa - pb) ** 2; den += pa ** 2;
  }
  return Math.sqrt(num / den);
}

const archs = ["llama", "qwen2", "qwen3", "phi3"];
const types = ["f32", "f16", "bf16", "q8_0", "q4_0", "q4_k", "q5_k", "q6_k", "q2_k", "q3_k"];
const kQuant = (type) => type.endsWith("_k");
for (const t of onlyTypes ?? []) {
  if (!types.includes(t)) {
    console.error(`differential.mjs: unknown type '${t}' in --types (${types.join(", ")})`);
    process.exit(2);
  }
}
const shapes = [
  {name: "gqa-untied", args: ["--n-embd", "128", "--n-head", "4", "--n-head-kv", "2", "--n-ff", "352", "--n-layer", "2"]},
  {name: "mha-tied", args: ["--n-embd", "64", "--n-head", "2", "--n-head-kv", "2", "--n-ff", "160", "--n-layer", "3", "--tied"]},
];
// K-quant super-blocks span 256 inputs: every matrix's rows must be whole super-blocks.
const kShapes = [
  {name: "gqa-untied", args: ["--n-embd", "256", "--n-head", "4", "--n-head-kv", "2", "--n-ff", "768", "--n-layer", "2"]},
  {name: "mha-tied", args: ["--n-embd", "256", "--n-head", "4", "--n-head-kv", "4", "--n-ff", "512", "--n-layer", "2", "--tied"]},
];
const vocabs = {
  llama: [null, path.join(shared, "tokenizer-tests/ggml-vocab-llama-spm.gguf")],
  qwen2: [null],
  qwen3: [null],
  phi3: [path.join(shared, "tokenizer-tests/ggml-vocab-llama-spm.gguf")],
};
const pres = {llama: "llama-bpe", qwen2: "qwen2", qwen3: "qwen2", phi3: "gpt-2"};

let failures = 0, checks = 0;
const report = [];
function check(ok, what) {
  checks++;
  if (!ok) { failures++; console.log("FAIL " + what); }
}

// Compares `dip` on `ourModel` (a GGUF file or Hugging Face folder) with llama.cpp on
// `refModel` (the same GGUF, or the GGUF converted from the folder).
// lora: adapters [{path, scale}] applied by both.
function compare(name, type, ourModel, refModel, lora = []) {
  const model = ourModel;
  const la = lora.flatMap((a) => (a.scale === 1 ? ["--lora", a.path] : ["--lora-scaled", a.path, String(a.scale)]));
  const ours = texts.map((t) => run(["tokenize", "-m", model, "-p", t]).trim().split(" ").filter((x) => x.length).map(Number));
  const prompt = ours[0];
  const logitsFile = path.join(work, name + ".ref.bin");
  const pathFile = path.join(work, name + ".refpath.bin");
  const stepFile = path.join(work, name + ".refsteps.bin");
  const ref = oracle({model: refModel, texts, lora: lora.length ? lora : undefined, logits: {tokens: ours[1], out: logitsFile},
                      greedy: {tokens: prompt, n: 64, logits_out: pathFile, step_logits_out: zen4Build ? undefined : stepFile}, perplexity: {file: pplText, ctx: 128}});
  texts.forEach((t, i) => check(JSON.stringify(ref.tokenize[i]) === JSON.stringify(ours[i]),
    `${name}: tokens of ${JSON.stringify(t)}\n  llama.cpp ${JSON.stringify(ref.tokenize[i])}\n  dip       ${JSON.stringify(ours[i])}`));
  // Next-token distributions at every position of a test text and of llama.cpp's greedy path.
  const ourFile = path.join(work, name + ".dip.bin");
  let worst = 0, maxLogitDiff = 0, V = 0, refPath = null;
  for (const [toks, refFile] of [[ours[1], logitsFile], [prompt.concat(ref.greedy.slice(0, -1)), pathFile]]) {
    V = JSON.parse(run(["eval", "-m", model, ...la, "-t", String(threads), "--tokens", toks.join(","), "--dump-logits", ourFile])).n_vocab;
    const a = new Float32Array(fs.readFileSync(refFile).buffer.slice(0));
    if (refFile === pathFile) refPath = a;
    const b = new Float32Array(fs.readFileSync(ourFile).buffer.slice(0));
    check(a.length === b.length && a.length === toks.length * V, `${name}: logits sizes differ`);
    for (let i = 0; i < a.length; i++) maxLogitDiff = Math.max(maxLogitDiff, Math.abs(a[i] - b[i]));
    for (let p = 0; p < toks.length; p++) {
      worst = Math.max(worst, relL2Probs(a.subarray(p * V, (p + 1) * V), b.subarray(p * V, (p + 1) * V)));
    }
  }
  // The tolerances. dip follows llama.cpp's CPU arithmetic operation by operation
  // (activation roundings, RoPE's FMAs, the attention's F16 products and sums, each quantized
  // matmul's summation order: see docs/differential-results.md), so most models agree bit for
  // bit; what is left is a last-bit difference somewhere, amplified where a value sits on an
  // F16 or Q8_0 rounding boundary. This holds for llama.cpp's AVX-512 CPU build ('zen4'), which
  // the test setup pins (tools/pin_llama_cpu_variant.sh); other builds sum in other orders.
  // LoRA on the trained F16 default model: the adapter's own products agree bit for bit at small
  // scales, but at full scale a last-bit difference in the MLP's adapted activations crosses F16
  // rounding boundaries of the next layer's input (relative L2 up to about 3e-3, perplexity
  // within 0.003%, greedy text identical); see docs/differential-results.md.
  // K-quants: the products are ggml's integer sums with Q8_K activations, but their float
  // summation order is not yet llama.cpp's: logits agree within about 2e-6 at most positions,
  // and where a last-bit difference crosses a Q8_K rounding boundary they differ by up to about
  // 0.15 (next-token distributions within about 4e-2; perplexity within 0.05%, greedy text
  // identical or a tie). See docs/differential-results.md.
  // On a host without the AVX-512 set of llama.cpp's 'zen4' build ggml loads another build
  // ('haswell' on an AVX2-only CPU), whose products sum in their own orders: every float result
  // differs in its last bits from dip's, and where that crosses an F16 or Q8_0 rounding boundary
  // the distributions move further (measured on an AVX2 Zen 3: F32 4e-4, F16/BF16 5e-3, Q8_0
  // 3e-2, K-quants 3.8e-2, perplexity within 0.07%, greedy identical or a tie; Q4_0, repacked
  // there as that build does, within 1e-6). There the tolerances are those measured differences
  // with margin; tokens, perplexity and greedy checks stay as they are.
  const strict = name.startsWith("lora-default") ? 5e-3 : {f32: 1e-3, f16: 1e-3, bf16: 1e-3, q8_0: 1e-2, q4_0: 1e-2, q4_k: 5e-2, q5_k: 5e-2, q6_k: 5e-2, q2_k: 5e-2, q3_k: 5e-2}[type];
  const tol = zen4Build ? strict : Math.max(strict, {f32: 2e-3, f16: 1e-2, bf16: 1e-2}[type] ?? 6e-2);
  check(worst < tol, `${name}: next-token distributions differ, worst relative L2 ${worst.toExponential(2)} >= ${tol}`);
  const g = JSON.parse(run(["eval", "-m", model, ...la, "-t", String(threads), "--tokens", prompt.join(","), "--greedy", "64"])).greedy;
  // The continuations must be identical, except after a step where llama.cpp's own top-2
  // logits are closer than the numerical noise measured between the two engines on this
  // model along the same path (twice the largest logit difference above, at least 1e-3):
  // a tie, either choice is right.
  // On builds other than 'zen4' llama.cpp's one-token steps sum in that build's own orders,
  // which the batched comparisons above do not see: there the noise at a step also counts how
  // far llama.cpp's own logits of that step (one token) are from its logits of the same position
  // in one batch along the same path.
  const firstDiff = g.findIndex((t, i) => t !== ref.greedy[i]);
  let stepNoise = 0;
  if (firstDiff >= 0 && !zen4Build) {
    const steps = new Float32Array(fs.readFileSync(stepFile).buffer.slice(0));
    const at = (prompt.length - 1 + firstDiff) * V;
    for (let i = 0; i < V; i++) stepNoise = Math.max(stepNoise, Math.abs(steps[firstDiff * V + i] - refPath[at + i]));
  }
  const tieMargin = Math.max(1e-3, 2 * maxLogitDiff, 2 * stepNoise);
  const tie = firstDiff >= 0 && ref.greedy_margins[firstDiff] < tieMargin;
  check(firstDiff < 0 || tie, `${name}: greedy continuation differs at step ${firstDiff} (llama.cpp margin ${ref.greedy_margins?.[firstDiff]}, noise ${maxLogitDiff}, llama.cpp one-token against batch ${stepNoise})`);
  const pj = JSON.parse(run(["perplexity", "-m", model, ...la, "-t", String(threads), "-f", pplText, "--ctx", "128", "--json"]).trim().split("\n").pop());
  const rel = Math.abs(pj.ppl - ref.perplexity.ppl) / ref.perplexity.ppl;
  const ptol = type === "f32" || type === "f16" || kQuant(type) || name.startsWith("lora-default") ? 1e-3 : 1e-2;
  check(pj.tokens === ref.perplexity.tokens && rel < ptol,
    `${name}: perplexity ${pj.ppl} vs llama.cpp ${ref.perplexity.ppl} (rel ${rel.toExponential(2)}, tokens ${pj.tokens} vs ${ref.perplexity.tokens})`);
  report.push({name, worst_rel_l2: worst, tol, max_logit_diff: maxLogitDiff, greedy_first_diff: firstDiff, ppl_dip: pj.ppl, ppl_llama: ref.perplexity.ppl, ppl_rel: rel, greedy_equal: firstDiff < 0});
  console.log(`${name.padEnd(34)} relL2 ${worst.toExponential(2)}  ppl ${pj.ppl.toFixed(4)} vs ${ref.perplexity.ppl.toFixed(4)} (${(rel * 100).toFixed(4)}%)  greedy ${firstDiff < 0 ? "same" : (tie ? "tie@" : "DIFF@") + firstDiff}`);
  for (const f of [logitsFile, ourFile, pathFile, stepFile]) fs.rmSync(f, {force: true});
}

let caseNo = 0, kCaseNo = 1000, k23CaseNo = 2000;  // K-quant cases count apart: the others keep their seeds
if (loraMode) {
  // Random adapters on every projection (F32, F16 and Q8_0 adapter tensors), on synthetic models of
  // each architecture and on the default model.
  // --quick: two synthetic models.
  // The default model's adapter is Q8_0 (rank 32: Q8_0 rows are blocks of 32), as shipped.
  let cases = [...archs.map((arch, i) => ({arch, type: i % 2 ? "f16" : "f32"})), {arch: "default", type: "q8_0"}];
  if (quick) cases = cases.slice(0, 2);
  for (const [i, c] of cases.entries()) {
    const name = `lora-${c.arch}-${c.type}`;
    let model = path.join(here, "../../models/default.gguf");
    if (c.arch !== "default") {
      model = path.join(work, name + ".gguf");
      run(["make-test-model", model, "--arch", c.arch, "--type", c.type, "--seed", String(50 + i), "--logit-scale", "1",
           "--pre", pres[c.arch], ...shapes[0].args]);
    }
    const a1 = path.join(work, name + ".a1.gguf"), a2 = path.join(work, name + ".a2.gguf");
    // The trained default model is perturbed less: its updates as large as a trained adapter's
    // (perplexity 20 -> 28), not a random model's.
    const bstd = c.arch === "default" ? "0.02" : "0.05";
    run(["make-test-lora", a1, "-m", model, "--rank", c.type === "q8_0" ? "32" : "8", "--seed", String(i + 1), "--b-std", bstd, "--type", c.type]);
    run(["make-test-lora", a2, "-m", model, "--rank", "4", "--seed", String(i + 100), "--b-std", bstd,
         "--targets", "ffn_gate,ffn_up,ffn_down"]);
    compare(name, c.type, model, model, [{path: a1, scale: 1}]);
    compare(name + "-two-scaled", c.type, model, model, [{path: a1, scale: 0.5}, {path: a2, scale: 2}]);
    for (const f of [a1, a2, ...(c.arch !== "default" ? [model] : [])]) fs.rmSync(f, {force: true});
  }
}
for (const arch of loraMode ? [] : archs) {
  for (const type of types) {
    for (const [si, shape] of (kQuant(type) ? kShapes : shapes).entries()) {
      const vlist = vocabs[arch];
      // Q2_K and Q3_K count their own cases: the other types' seeds and vocabularies stay as
      // they were before these two types were added.
      const no = type === "q2_k" || type === "q3_k" ? k23CaseNo++ : kQuant(type) ? kCaseNo++ : caseNo++;
      const vocab = vlist[no % vlist.length];
      if ((quick && !(type === "f32" || type === "q4_0")) || !wanted(type)) continue;
      const name = `${arch}-${type}-${shape.name}${vocab ? "-spm" : ""}`;
      const model = path.join(work, name + ".gguf");
      const extra = ["--logit-scale", "1", ...(vocab ? ["--vocab", vocab] : ["--pre", pres[arch]])];
      if (arch === "llama" && si === 0) extra.push("--rope-freqs");
      run(["make-test-model", model, "--arch", arch, "--type", type, "--seed", String(kQuant(type) ? no : caseNo), ...extra, ...shape.args]);
      compare(name, type, model, model);
      fs.rmSync(model, {force: true});
    }
  }
}
// llama.cpp's mixed K-quant recipes written by `dip convert --type <recipe>` from an F32 model of
// 4 layers with 2 query heads per KV head. On that shape llama.cpp's rules give: the output Q6_K
// in every recipe; attn_v / ffn_down / attn_output as below (null: the base type), by layer
// (use_more_bits: layers 2 and 3; the first eighth and sixteenth: none); norms F32; every other
// matrix the base type. llama.cpp must run the file and agree with dip on it as on a one-type
// file. Each recipe runs in the differential test of its base type.
const more = (l) => (l >= 2 ? "Q6_K" : null);
const recipes = {
  q2_k_s: {base: "q2_k"},
  q3_k_s: {base: "q3_k"},
  q3_k_m: {base: "q3_k", attn_v: (l) => (l < 2 ? "Q5_K" : "Q4_K"), ffn_down: () => "Q4_K", attn_output: () => "Q4_K"},
  q3_k_l: {base: "q3_k", attn_v: () => "Q5_K", ffn_down: () => "Q5_K", attn_output: () => "Q5_K"},
  q4_k_s: {base: "q4_k", attn_v: () => "Q5_K"},
  q4_k_m: {base: "q4_k", attn_v: more, ffn_down: more},
  q5_k_s: {base: "q5_k"},
  q5_k_m: {base: "q5_k", attn_v: more, ffn_down: more},
};
for (const [mix, recipe] of Object.entries(recipes)) {
  const type = recipe.base, base = type.toUpperCase();
  if (loraMode || quick || !wanted(type)) continue;
  const src = path.join(work, `mix-src-${mix}.gguf`), conv = path.join(work, `llama-${mix}.gguf`);
  run(["make-test-model", src, "--arch", "llama", "--seed", "91", "--logit-scale", "1", "--pre", "llama-bpe",
       "--n-embd", "256", "--n-head", "4", "--n-head-kv", "2", "--n-ff", "768", "--n-layer", "4"]);
  run(["convert", src, conv, "--type", mix]);
  const types = Object.fromEntries(run(["info", conv]).split("\n").map((l) => l.trim().split(/\s+/))
    .filter((w) => w.length >= 2 && w[0].endsWith(".weight")).map((w) => [w[0], w[1]]));
  const want = (name) => {
    const m = name.match(/^blk\.(\d+)\.(\w+)\.weight$/);
    if (name === "output.weight") return "Q6_K";
    if (name.endsWith("_norm.weight")) return "F32";
    return (m && recipe[m[2]] && recipe[m[2]](Number(m[1]))) || base;
  };
  const wrong = Object.entries(types).filter(([n, t]) => t !== want(n));
  check(Object.keys(types).length === 2 + 1 + 4 * 9 && wrong.length === 0,
    `${mix}: tensor types not llama.cpp's recipe: ${JSON.stringify(wrong)}`);
  compare(`llama-${mix}`, type, conv, conv);
  for (const f of [src, conv]) fs.rmSync(f, {force: true});
}
// Hugging Face folders converted by `dip convert`: llama.cpp must load the GGUF (metadata,
// tokenizer, tensor layout incl. Llama's q/k row order) and agree with dip on it. (That the
// folder and the converted file give the same logits in dip is a unit test.)
for (const arch of loraMode ? [] : archs) {
  for (const type of (quick ? ["f16"] : ["f32", "f16", "q8_0"]).filter(wanted)) {
    const src = path.join(work, `hf-src-${arch}.gguf`);
    // The folder name becomes general.name, on which llama.cpp keys Phi-3 rules that expect
    // Phi-3's own special tokens: keep architecture names out of it.
    const dir = path.join(work, `hf-folder-${archs.indexOf(arch)}`);
    run(["make-test-model", src, "--arch", arch, "--seed", "77", "--logit-scale", "1", "--pre", pres[arch],
         "--n-embd", "128", "--n-head", "4", "--n-head-kv", "2", "--n-ff", "352", "--n-layer", "2"]);
    fs.rmSync(dir, {recursive: true, force: true});
    run(["convert", src, dir, "--to-hf", "--type", "f32", "--shard-mib", "1"]);
    const conv = path.join(work, `hf-${arch}-${type}.gguf`);
    run(["convert", dir, conv, "--type", type]);
    compare(`hf-folder-${arch}-as-${type}`, type, conv, conv);
    for (const f of [src, conv]) fs.rmSync(f, {force: true});
    fs.rmSync(dir, {recursive: true, force: true});
  }
}

fs.writeFileSync(path.join(work, "differential.json"), JSON.stringify(report, null, 1));
console.log(`${checks - failures}/${checks} checks passed`);
process.exit(failures ? 1 : 0);
