// `dip serve` with the official OpenAI client (npm "openai", installed with the test oracle):
// a completion equals `dip generate`'s greedy text, a streamed chat answer assembled from its
// chunks equals the whole answer, two concurrent clients, a client that leaves mid-stream, and
// bad requests answered with OpenAI error objects while the server keeps serving.
//
//   node tests/server/serve_test.mjs DIP WORK
import {spawn, execFileSync} from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import {fileURLToPath} from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const {default: OpenAI} = await import(path.join(here, "../oracle/node_modules/openai/index.mjs"));
const [dip, work] = process.argv.slice(2);
fs.rmSync(work, {recursive: true, force: true});
fs.mkdirSync(work, {recursive: true});
const model = path.join(work, "m.gguf");
execFileSync(dip, ["make-test-model", model, "--n-embd", "64", "--n-head", "2", "--n-head-kv", "2", "--n-ff", "96", "--n-ctx", "512"],
  {stdio: "ignore"});
// The server runs with a LoRA adapter at half scale, and `dip generate` with the same.
const adapter = path.join(work, "a.gguf");
execFileSync(dip, ["make-test-lora", adapter, "-m", model, "--rank", "4", "--b-std", "0.05"], {stdio: "ignore"});
const lora = ["--lora-scaled", adapter, "0.5"];

let failures = 0;
const check = (ok, what) => { console.log(`${ok ? "ok" : "FAIL"}: ${what}`); if (!ok) failures++; };

const key = "sk-test-key";
const server = spawn(dip, ["serve", "-m", model, ...lora, "--port", "0", "--api-key", key, "--max-body", "65536"], {stdio: ["ignore", "ignore", "pipe"]});
const port = await new Promise((resolve, reject) => {
  let err = "";
  server.stderr.on("data", (d) => {
    err += d;
    const m = err.match(/http:\/\/127\.0\.0\.1:(\d+)/);
    if (m) resolve(Number(m[1]));
  });
  server.on("exit", (code) => reject(new Error(`dip serve exited (${code}): ${err}`)));
  setTimeout(() => reject(new Error(`dip serve did not start: ${err}`)), 30000);
});
const base = `http://127.0.0.1:${port}`;
const client = new OpenAI({baseURL: `${base}/v1`, apiKey: key, maxRetries: 0});
const post = (p, body, headers = {}) => fetch(base + p, {method: "POST", body, headers: {Authorization: `Bearer ${key}`, ...headers}});

try {
  // A completion is `dip generate`'s greedy continuation.
  const prompt = "hello world";
  const generated = execFileSync(dip, ["generate", "-m", model, ...lora, "-p", prompt, "-n", "8", "--temp", "0"], {encoding: "utf8", stdio: ["ignore", "pipe", "ignore"]});
  const c = await client.completions.create({model: "m", prompt, max_tokens: 8, temperature: 0});
  check(prompt + c.choices[0].text + "\n" === generated, `completion = dip generate (${JSON.stringify(c.choices[0].text)})`);
  check(c.usage.prompt_tokens > 0 && c.usage.completion_tokens <= 8, "usage counts");

  // A streamed chat answer, assembled from its chunks, is the whole answer.
  const msgs = [{role: "user", content: "the quick brown fox"}];
  const whole = await client.chat.completions.create({model: "m", messages: msgs, max_tokens: 12, temperature: 0});
  const stream = await client.chat.completions.create({model: "m", messages: msgs, max_tokens: 12, temperature: 0, stream: true});
  let assembled = "", finish = null, chunks = 0;
  for await (const ch of stream) {
    chunks++;
    assembled += ch.choices[0].delta.content ?? "";
    finish = ch.choices[0].finish_reason ?? finish;
  }
  check(assembled === whole.choices[0].message.content && chunks > 2, `streamed chat = whole answer (${chunks} chunks)`);
  check(finish === whole.choices[0].finish_reason, `finish reason ${finish}`);

  // Two clients at once get what each gets alone.
  const ask = (p) => client.completions.create({model: "m", prompt: p, max_tokens: 16, temperature: 0}).then((r) => r.choices[0].text);
  const alone = [await ask("one two"), await ask("three four")];
  const together = await Promise.all([ask("one two"), ask("three four")]);
  check(together[0] === alone[0] && together[1] === alone[1], "two concurrent clients");

  // A client that leaves mid-stream frees the server for the next request.
  const long = await client.completions.create({model: "m", prompt: "a", max_tokens: 400, temperature: 1, stream: true});
  let n = 0;
  for await (const _ of long) { if (++n === 3) break; }  // leaving the loop aborts the request
  const t0 = Date.now();
  const after = await ask("one two");
  check(after === alone[0] && Date.now() - t0 < 20000, "served after a client left mid-stream");

  // Bad requests: OpenAI error objects with the right status.
  const expectStatus = async (what, status, fn, code) => {
    try { await fn(); check(false, `${what}: no error`); } catch (e) {
      check(e.status === status && (!code || e.code === code), `${what}: ${e.status} ${e.code ?? ""}`);
    }
  };
  await expectStatus("wrong API key", 401, () => new OpenAI({baseURL: `${base}/v1`, apiKey: "wrong", maxRetries: 0}).models.list(), "invalid_api_key");
  await expectStatus("unknown model", 404, () => client.completions.create({model: "gpt-9", prompt: "a"}), "model_not_found");
  await expectStatus("max_tokens beyond the context", 400, () => client.completions.create({model: "m", prompt: "a", max_tokens: 100000}), "context_length_exceeded");
  await expectStatus("temperature out of range", 400, () => client.completions.create({model: "m", prompt: "a", temperature: 7}));
  const raw = async (what, body, status, headers) => {
    const r = await post("/v1/completions", body, headers);
    const j = await r.json().catch(() => null);
    check(r.status === status && j && j.error && typeof j.error.message === "string", `${what}: ${r.status}`);
  };
  await raw("malformed JSON", "{\"model\": ", 400);
  await raw("missing prompt", JSON.stringify({model: "m"}), 400);
  await raw("prompt of the wrong type", JSON.stringify({model: "m", prompt: 5}), 400);
  await raw("invalid UTF-8", Buffer.concat([Buffer.from('{"model":"m","prompt":"'), Buffer.from([0xff, 0xfe]), Buffer.from('"}')]), 400);
  await raw("oversized body", JSON.stringify({model: "m", prompt: "x".repeat(100000)}), 413);
  const models = await client.models.list();
  check(models.data.length === 1 && models.data[0].id === "m" && models.data[0].dip.method === "dense", "/v1/models names the model and its run");
  check(JSON.stringify(models.data[0].dip.adapters) === JSON.stringify([{file: "a.gguf", scale: 0.5}]),
    `/v1/models names the adapter and its scale: ${JSON.stringify(models.data[0].dip.adapters)}`);
  const h = await fetch(base + "/health");
  check(h.status === 200, "still serving after the bad requests");
} catch (e) {
  check(false, `unexpected: ${e.stack ?? e}`);
} finally {
  server.kill("SIGTERM");
}
console.log(`${failures} failure(s)`);
process.exit(failures ? 1 : 0);
