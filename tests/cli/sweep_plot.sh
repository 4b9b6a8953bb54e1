#!/usr/bin/env bash
# End to end through the CLI on a small random model: calibrate, a sweep over every method
# with its CSV/JSON, the plot script's PNG/SVG, and a trace written by generate.
set -euo pipefail
DIP="$1"
WORK="$2"
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
rm -rf "$WORK" && mkdir -p "$WORK"
"$DIP" make-test-model "$WORK/m.gguf" --n-embd 64 --n-head 2 --n-head-kv 2 --n-ff 128 --n-layer 2 2>/dev/null
for i in $(seq 1 150); do echo "line $i: the quick brown fox jumps over the lazy dog near the river bank"; done > "$WORK/text.txt"
"$DIP" calibrate -m "$WORK/m.gguf" -f "$WORK/text.txt" -o "$WORK/thr.json" -c 64 2>/dev/null
"$DIP" sweep -m "$WORK/m.gguf" -f "$WORK/text.txt" -c 64 --chunks 4 --thresholds "$WORK/thr.json" \
  --methods dip,dip-ca,glu,cats,teal --densities 0.5,0.8,1.0 --gammas 0.2,0.5 -o "$WORK/sweep" 2>"$WORK/sweep.log"
rows=$(($(wc -l < "$WORK/sweep/sweep.csv") - 1))
# dip 3 + dip-ca 3x2 + glu 2 (0.8, 1.0) + cats 3 + teal 3 = 17 points
[ "$rows" -eq 17 ] || { echo "FAIL: sweep.csv has $rows rows, expected 17"; cat "$WORK/sweep.log"; exit 1; }
grep -q '"dense_ppl"' "$WORK/sweep/sweep.json" || { echo "FAIL: sweep.json lacks dense_ppl"; exit 1; }
# Density 1.0 with DIP is the dense model: KL 0 to five decimals.
awk -F, '$1=="dip" && $2==1 { if ($10+0 > 1e-5) { print "FAIL: dip at density 1 has KL " $10; exit 1 } }' "$WORK/sweep/sweep.csv"
/usr/bin/python3 "$ROOT/tools/plot_sweep.py" "$WORK/sweep/sweep.json" "$WORK/plots"
for f in sweep_ppl.png sweep_ppl.svg sweep_gamma.png sweep_gamma.svg; do
  [ -s "$WORK/plots/$f" ] || { echo "FAIL: $f not written"; exit 1; }
done
# A trace from generate: 64-byte header + tokens x layers x (ceil(64/8) + ceil(128/8)) x 2 (hits).
"$DIP" generate -m "$WORK/m.gguf" -p "the quick brown fox" -n 6 --ignore-eos --method dip-ca --mlp-density 0.5 \
  --trace "$WORK/t.trace" >/dev/null 2>&1
size=$(stat -c %s "$WORK/t.trace")
n_tok=$(( (size - 64) / (2 * (8 + 16) * 2) ))
[ $(( 64 + n_tok * 96 )) -eq "$size" ] && [ "$n_tok" -ge 6 ] || { echo "FAIL: trace size $size"; exit 1; }
echo "sweep, plots and trace: ok"
