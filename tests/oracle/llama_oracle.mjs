// llama.cpp as the reference implementation, through node-llama-cpp's prebuilt CPU library
// (offline: build "never", no GPU). Reads a JSON request, prints a JSON response.
//
// request: {
//   model: "file.gguf",
//   texts: ["..."],                      // tokenized with llama.cpp (special tokens added, as `dip tokenize`)
//   logits: {tokens: [...], out: "f"},   // raw logits of every position -> float32 file [pos][vocab]
//   greedy: {tokens: [...], n: 64},      // greedy continuation; logits_out: logits along its
//                                        // path as one batch; step_logits_out: those of each step
//   perplexity: {file: "t.txt", ctx: 512, out: "nll.json"} // llama.cpp's perplexity protocol
//   speed: {text: "...", n: 64, runs: 3}  // prompt and generation tokens/s (benchmarks)
//   threads: 2,
//   lora: [{path: "adapter.gguf", scale: 1}],  // LoRA adapters applied to every context
//   ignore_memory_checks: false         // load models larger than RAM (mmap'd; benchmarks)
// }
// The response also carries max_rss_bytes: the process's peak resident memory (getrusage),
// mapped model pages included.
import fs from "node:fs";
import {getLlama} from "node-llama-cpp";

const req = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const llama = await getLlama({build: "never", gpu: false, logLevel: "error"});
const ignoreMemorySafetyChecks = req.ignore_memory_checks ?? false;
const model = await llama.loadModel({modelPath: req.model, ignoreMemorySafetyChecks});
const nVocab = model.fileInfo.metadata.tokenizer.ggml.tokens.length;
const bos = model.tokens.bos;
const addBos = model.tokens.shouldPrependBosToken;
const res = {bos, add_bos: addBos, n_vocab: nVocab};
const threads = req.threads ?? 2;

function withBos(tokens) {
  return addBos && bos != null ? [bos, ...tokens] : tokens;
}

if (req.texts) {
  res.tokenize = req.texts.map((t) => withBos(Array.from(model.tokenize(t, false))));
}

async function newSequence(size) {
  const lora = req.lora ? {adapters: req.lora.map((a) => ({filePath: a.path, scale: a.scale ?? 1}))} : undefined;
  const ctx = await model.createContext({contextSize: size, batchSize: size, threads, flashAttention: req.flash ?? false,
    ignoreMemorySafetyChecks, lora});
  return {ctx, seq: ctx.getSequence()};
}

function logitsArray(map, out, offset) {
  for (const [tok, v] of map) out[offset + tok] = v;
}

if (req.logits) {
  const toks = req.logits.tokens;
  const {ctx, seq} = await newSequence(Math.max(256, toks.length + 8));
  const items = toks.map((t) => [t, {generateNext: {logits: true}}]);
  const outs = await seq.controlledEvaluate(items);
  const arr = new Float32Array(toks.length * nVocab);
  outs.forEach((o, i) => logitsArray(o.next.logits, arr, i * nVocab));
  fs.writeFileSync(req.logits.out, Buffer.from(arr.buffer));
  await ctx.dispose();
}

if (req.greedy) {
  const {ctx, seq} = await newSequence(Math.max(256, req.greedy.tokens.length + req.greedy.n + 8));
  let input = req.greedy.tokens;
  const gen = [];
  const margins = [];
  const stepOut = req.greedy.step_logits_out;
  const steps = stepOut ? new Float32Array(req.greedy.n * nVocab) : null;
  for (let i = 0; i < req.greedy.n; i++) {
    // The two largest logits only, unless every step's logits are asked for (the whole
    // vocabulary as a JavaScript Map is the slow part). Of two exactly equal largest logits the
    // lower token id is taken, as dip does (with more than two, llama.cpp's sort picks; the
    // differential test counts any exact tie as a tie).
    const want = steps ? true : {filter: {includeTop: 2}};
    const items = input.map((t, k) => (k === input.length - 1 ? [t, {generateNext: {logits: want}}] : t));
    const outs = await seq.controlledEvaluate(items);
    const logits = outs[input.length - 1].next.logits;
    if (steps) logitsArray(logits, steps, i * nVocab);
    let best = -1, bestV = -Infinity, second = -Infinity;
    for (const [tok, v] of logits) {
      if (v > bestV || (v === bestV && tok < best)) { second = bestV; bestV = v; best = tok; }
      else if (v > second) second = v;
    }
    gen.push(best);
    margins.push(bestV - second);
    input = [best];
  }
  res.greedy = gen;
  res.greedy_margins = margins;
  if (steps) fs.writeFileSync(stepOut, Buffer.from(steps.buffer));
  await ctx.dispose();
  if (req.greedy.logits_out) {
    // Logits along the whole greedy path (prompt + continuation), evaluated as one sequence.
    const path = req.greedy.tokens.concat(gen.slice(0, -1));
    const c2 = await newSequence(Math.max(256, path.length + 8));
    const outs = await c2.seq.controlledEvaluate(path.map((t) => [t, {generateNext: {logits: true}}]));
    const arr = new Float32Array(path.length * nVocab);
    outs.forEach((o, i) => logitsArray(o.next.logits, arr, i * nVocab));
    fs.writeFileSync(req.greedy.logits_out, Buffer.from(arr.buffer));
    await c2.ctx.dispose();
  }
}

if (req.perplexity) {
  // llama.cpp's protocol: tokens of the whole text (BOS first where the model adds one),
  // windows of ctx tokens, BOS in front of each window, second half of each window scored.
  const nCtx = req.perplexity.ctx;
  const text = fs.readFileSync(req.perplexity.file, "utf8");
  const tokens = withBos(Array.from(model.tokenize(text, false)));
  const nChunks = Math.min(Math.floor(tokens.length / nCtx), req.perplexity.max_chunks ?? Infinity);
  const first = nCtx >> 1;
  let nll = 0, nll2 = 0, count = 0;
  const {ctx, seq} = await newSequence(nCtx);
  for (let c = 0; c < nChunks; c++) {
    const win = tokens.slice(c * nCtx, (c + 1) * nCtx);
    if (addBos) win[0] = bos;
    await seq.clearHistory();
    // Only what log-softmax needs: the target's logit, the max logit and sum(exp(logit - max)).
    // The max logit is the greedy choice's ("includeSelected" at temperature 0): "includeTop"
    // would sort the whole vocabulary at every position.
    const items = win.map((t, j) => (j >= first && j + 1 < nCtx
      ? [t, {generateNext: {logits: {filter: {tokens: [win[j + 1]], includeSelected: true}}, totalLogitWeight: true,
             options: {temperature: 0}}}] : t));
    const outs = await seq.controlledEvaluate(items);
    for (let j = first; j + 1 < nCtx; j++) {
      const next = outs[j].next;
      let mx = -Infinity;
      for (const v of next.logits.values()) if (v > mx) mx = v;
      const lp = (next.logits.get(win[j + 1]) - mx) - Math.log(next.totalLogitWeight);
      nll -= lp; nll2 += lp * lp; count++;
    }
    if (req.perplexity.progress) process.stderr.write(`\r[${c + 1}/${nChunks}] ppl ${Math.exp(nll / count).toFixed(4)}`);
  }
  await ctx.dispose();
  const mean = nll / count;
  const ppl = Math.exp(mean);
  const v = nll2 / count - mean * mean;
  res.perplexity = {ppl, ppl_err: v > 0 ? Math.sqrt(v / (count - 1)) * ppl : 0, tokens: tokens.length, scored: count, chunks: nChunks};
}

if (req.speed) {
  // As `dip generate` measures: the prompt evaluated as one batch, then n one-token steps
  // (greedy, sampled by llama.cpp); seconds of each run.
  const toks = withBos(Array.from(model.tokenize(req.speed.text, false)));
  const runs = [];
  for (let r = 0; r < (req.speed.runs ?? 1); r++) {
    const {ctx, seq} = await newSequence(toks.length + req.speed.n + 16);
    const t0 = performance.now();
    await seq.evaluateWithoutGeneratingNewTokens(toks.slice(0, -1));
    const t1 = performance.now();
    let n = 0;
    for await (const t of seq.evaluate(toks.slice(-1), {temperature: 0})) {
      void t;
      if (++n >= req.speed.n) break;
    }
    const t2 = performance.now();
    runs.push({prompt_tokens: toks.length - 1, prompt_s: (t1 - t0) / 1000, gen_tokens: n, gen_s: (t2 - t1) / 1000});
    await ctx.dispose();
  }
  res.speed = runs;
}

await model.dispose();
res.max_rss_bytes = process.resourceUsage().maxRSS * 1024;
process.stdout.write(JSON.stringify(res) + "\n");
process.exit(0);
