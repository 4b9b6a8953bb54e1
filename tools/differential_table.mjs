// Turns differential.json files (written by tests/oracle/differential.mjs, one per run or per
// tensor type) into one Markdown table, rows in the order of the files given.
// usage: node tools/differential_table.mjs WORK/f32/differential.json [WORK/f16/differential.json ...]
import fs from "node:fs";
const files = process.argv.slice(2);
if (!files.length) {
  console.error("usage: node tools/differential_table.mjs DIFFERENTIAL_JSON...");
  process.exit(2);
}
const rows = files.flatMap((f) => JSON.parse(fs.readFileSync(f, "utf8")));
const out = [];
out.push("| model | worst rel. L2 of next-token probs | tolerance | PPL dip | PPL llama.cpp | PPL diff | greedy 64 |");
out.push("| --- | --- | --- | --- | --- | --- | --- |");
for (const r of rows) {
  const g = r.greedy_first_diff < 0 ? "identical" : `tie at step ${r.greedy_first_diff}`;
  out.push(`| ${r.name} | ${r.worst_rel_l2.toExponential(2)} | ${r.tol} | ${r.ppl_dip.toFixed(3)} | ${r.ppl_llama.toFixed(3)} | ${(r.ppl_rel * 100).toFixed(4)}% | ${g} |`);
}
process.stdout.write(out.join("\n") + "\n");
