// Turns differential.json (written by tests/oracle/differential.mjs) into a Markdown table.
// usage: node tools/differential_table.mjs WORK_DIR/differential.json > docs/differential-results.md
import fs from "node:fs";
const rows = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const out = [];
out.push("| model | worst rel. L2 of next-token probs | tolerance | PPL dip | PPL llama.cpp | PPL diff | greedy 64 |");
out.push("| --- | --- | --- | --- | --- | --- | --- |");
for (const r of rows) {
  const g = r.greedy_first_diff < 0 ? "identical" : `tie at step ${r.greedy_first_diff}`;
  out.push(`| ${r.name} | ${r.worst_rel_l2.toExponential(2)} | ${r.tol} | ${r.ppl_dip.toFixed(3)} | ${r.ppl_llama.toFixed(3)} | ${(r.ppl_rel * 100).toFixed(4)}% | ${g} |`);
}
process.stdout.write(out.join("\n") + "\n");
