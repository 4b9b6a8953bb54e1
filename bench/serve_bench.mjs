// `dip serve` against `dip generate` on the same model, same threads, same machine: time to the
// first token of a short prompt and streaming generation tokens/s (medians of rounds, the two
// interleaved), then 1000 sequential requests and 50 concurrent streams, counting failures and
// the server's resident memory after warm-up and at the end.
//
//   node bench/serve_bench.mjs [--model GGUF] [--rounds 5] [--tokens 64] [--requests 1000] [--streams 50]
import {spawn, spawnSync} from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import {dip, median, parseArgs, prompt, requireTools, root} from "./lib.mjs";

const args = parseArgs(process.argv.slice(2));
const model = path.resolve(args.model ?? path.join(root, "models/default.gguf"));
const rounds = Number(args.rounds ?? 5), nTok = Number(args.tokens ?? 64);
const nRequests = Number(args.requests ?? 1000), nStreams = Number(args.streams ?? 50);
requireTools(dip, model);
const shortPrompt = prompt.split(" ").slice(0, 8).join(" ");
const modelId = path.basename(model).replace(/\.gguf$/, "");

const server = spawn(dip, ["serve", "-m", model, "--port", "0", "-t", "2"], {stdio: ["ignore", "ignore", "pipe"]});
const port = await new Promise((resolve, reject) => {
  let err = "";
  server.stderr.on("data", (d) => { err += d; const m = err.match(/:(\d+) \(context/); if (m) resolve(Number(m[1])); });
  server.on("exit", () => reject(new Error(err)));
});
const base = `http://127.0.0.1:${port}`;
// The client shares the 2 cores with the server's 2 compute threads: at the lowest priority it
// reads the stream when a core is free instead of pre-empting a compute thread once per token
// (the server was started before, at normal priority; dip generate runs alone).
os.setPriority(19);
const keepAlive = new http.Agent({keepAlive: true, maxSockets: 64});
const rss = () => Number(fs.readFileSync(`/proc/${server.pid}/status`, "utf8").match(/VmRSS:\s+(\d+)/)[1]) / 1024;

// One streamed completion: time to the first content chunk and generation tokens/s after it.
// node:http rather than fetch: its web-stream reader costs a core a tenth of a millisecond per
// chunk, which on a 2-core machine is taken from the server being measured.
function streamOnce(maxTokens, temperature = 0) {
  const t0 = performance.now();
  const body = JSON.stringify({model: modelId, prompt: shortPrompt, max_tokens: maxTokens, temperature, stream: true});
  return new Promise((resolve, reject) => {
    const req = http.request(`${base}/v1/completions`, {method: "POST", agent: keepAlive,
      headers: {"Content-Type": "application/json", "Content-Length": Buffer.byteLength(body)}}, (res) => {
      if (res.statusCode !== 200) { res.resume(); reject(new Error(`HTTP ${res.statusCode}`)); return; }
      res.setEncoding("utf8");
      let buf = "", first = 0, last = 0, chunks = 0;
      res.on("data", (part) => {
        buf += part;
        let i;
        while ((i = buf.indexOf("\n\n")) >= 0) {
          const ev = buf.slice(0, i); buf = buf.slice(i + 2);
          if (!ev.startsWith("data: ") || ev === "data: [DONE]") continue;
          const j = JSON.parse(ev.slice(6));
          if (j.choices[0].text) { chunks++; last = performance.now(); if (!first) first = last; }
        }
      });
      res.on("end", () => resolve({ttft: (first - t0) / 1e3,
        tps: chunks > 1 ? (chunks - 1) / ((last - first) / 1e3) : 0, chunks}));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(body);
  });
}

function generateOnce() {
  const r = spawnSync(dip, ["generate", "-m", model, "-p", shortPrompt, "-n", String(nTok), "--temp", "0", "--ignore-eos",
    "-t", "2", "--json"], {encoding: "utf8"});
  const j = JSON.parse(r.stdout.trim().split("\n").pop());
  return {ttft: j.prompt_s, tps: (j.gen_tokens - 1) / j.gen_s};
}

const srv = [], gen = [];
await streamOnce(8);  // warm-up
for (let i = 0; i < rounds; i++) {
  process.stderr.write(`\rround ${i + 1}/${rounds}   `);
  gen.push(generateOnce());
  // The time to the first token from a request for one token: with more, the server is computing
  // the second token when the first arrives, and the low-priority client would wait for a core.
  srv.push({ttft: (await streamOnce(1)).ttft, tps: (await streamOnce(nTok)).tps});
}
process.stderr.write("\n");
const med = (xs, k) => median(xs.map((x) => x[k]));

let failures = 0;
for (let i = 0; i < 100; i++) await streamOnce(4).catch(() => failures++);
const rssWarm = rss();
const t0 = performance.now();
for (let i = 100; i < nRequests; i++) {
  await streamOnce(4).catch(() => failures++);
  if (i % 100 === 0) process.stderr.write(`\rsequential ${i}/${nRequests}   `);
}
const seqSecs = (performance.now() - t0) / 1e3;
process.stderr.write("\n");
const conc = await Promise.allSettled(Array.from({length: nStreams}, () => streamOnce(16, 0.8)));
const concFailures = conc.filter((c) => c.status === "rejected" || c.value.chunks === 0).length;
const rssEnd = rss();
server.kill("SIGTERM");

const f2 = (x) => x.toFixed(2), f3 = (x) => x.toFixed(3);
console.log(`dip serve against dip generate, ${modelId}, 2 threads, ${nTok} tokens, medians of ${rounds} interleaved rounds`);
console.log("| measure | dip generate | dip serve (HTTP, streamed) | serve / generate |");
console.log("| --- | --- | --- | --- |");
console.log(`| time to first token (s) | ${f3(med(gen, "ttft"))} | ${f3(med(srv, "ttft"))} | ${f2(med(srv, "ttft") / med(gen, "ttft"))}x |`);
console.log(`| generation tokens/s | ${f2(med(gen, "tps"))} | ${f2(med(srv, "tps"))} | ${f2(med(srv, "tps") / med(gen, "tps"))}x |`);
console.log(`\n${nRequests} sequential requests (4 tokens each): ${failures} failed, ${f2(nRequests / seqSecs)} requests/s after warm-up`);
console.log(`${nStreams} concurrent streams (16 tokens each): ${concFailures} failed`);
console.log(`server RSS: ${f2(rssWarm)} MiB after 100 requests, ${f2(rssEnd)} MiB at the end (${f2(rssEnd - rssWarm)} MiB)`);
console.log("(dip generate's time to first token is its prompt evaluation after the model is loaded; the server's is from sending the request to the first streamed token)");
