#!/usr/bin/env bash
# End to end through the CLI on a small random model: calibrate, a sweep over every method
# with its CSV/JSON, the plot script's PNG/SVG, a simulated sweep with its figures and report,
# and a trace written by generate.
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
# Run as a program: the script names Debian's python3 (with python3-matplotlib), whatever python3
# comes first on PATH (here one that fails).
mkdir -p "$WORK/fakebin" && printf '#!/bin/sh\nexit 3\n' > "$WORK/fakebin/python3" && chmod +x "$WORK/fakebin/python3"
PATH="$WORK/fakebin:$PATH" "$ROOT/tools/plot_sweep.py" "$WORK/sweep/sweep.json" "$WORK/plots"
for f in sweep_ppl.png sweep_ppl.svg sweep_gamma.png sweep_gamma.svg; do
  [ -s "$WORK/plots/$f" ] || { echo "FAIL: $f not written"; exit 1; }
done
# A simulated sweep: dip 2 + teal 2 + dip-ca 2 x 3 DRAM sizes engine runs (cats skipped), each
# simulated at 3 DRAM sizes (dip-ca: its own) x 2 flash speeds, plus dense streaming 3 x 2.
"$DIP" sweep -m "$WORK/m.gguf" -f "$WORK/text.txt" -c 64 --chunks 2 --thresholds "$WORK/thr.json" \
  --methods dip,dip-ca,cats,teal --densities 0.5,0.8 --gammas 0.2 --simulate --sim-dram 0%,40%,80% \
  --sim-flash-bw 1GB/s,2GB/s -o "$WORK/sim" >"$WORK/sim.out" 2>"$WORK/sim.log" || { cat "$WORK/sim.log"; exit 1; }
rows=$(($(wc -l < "$WORK/sim/simulate.csv") - 1))
[ "$rows" -eq $(( (2 + 2) * 3 * 2 + 2 * 3 * 2 + 3 * 2 )) ] || { echo "FAIL: simulate.csv has $rows rows"; exit 1; }
grep -q "skipping cats" "$WORK/sim.log" || { echo "FAIL: cats was not reported as skipped"; exit 1; }
grep -q "gain at equal DRAM" "$WORK/sim.out" || { echo "FAIL: no comparison table"; cat "$WORK/sim.out"; exit 1; }
[ ! -e "$WORK/sim/traces" ] || { echo "FAIL: traces left behind without --keep-traces"; exit 1; }
# Flash speed doubles: a pruned point's flash-bound tokens/s rises; at 0% cache dip-ca = dip (no cache to prefer).
awk -F, 'NR > 1 && $1 == "dip" && $2 == 0.5 && $11 == 0 { t[$12] = $13 }
  END { if (!(t[2000000000] > t[1000000000])) { print "FAIL: 2 GB/s not faster than 1 GB/s"; exit 1 } }' "$WORK/sim/simulate.csv"
awk -F, 'NR > 1 && $11 == 0 && $2 == 0.5 && $12 == 1000000000 && ($1 == "dip" || $1 == "dip-ca") { t[$1] = $13 }
  END { if (t["dip"] != t["dip-ca"]) { print "FAIL: dip-ca without a cache differs from dip"; exit 1 } }' "$WORK/sim/simulate.csv"
# A shape-only projection onto the default model's shape, the accuracy read from that sweep
# (no engine runs): dip 2 points + dip-ca 2 x 3 sizes, each at its sizes x 2 speeds; teal skipped.
P=(sweep -m "$WORK/m.gguf" -f "$WORK/text.txt" -c 64 --methods dip,dip-ca,teal --thresholds "$WORK/thr.json" --gammas 0.2
   --simulate --sim-dram 0%,40%,80% --sim-flash-bw 1GB/s,2GB/s --sim-shape default --sim-tokens 8
   --sim-accuracy "$WORK/sim/simulate.json" -o "$WORK/proj")
"$DIP" "${P[@]}" --densities 0.5,0.8 >"$WORK/proj.out" 2>"$WORK/proj.log" || { cat "$WORK/proj.log"; exit 1; }
grep -q "SHAPE-ONLY PROJECTION onto default" "$WORK/proj.out" || { echo "FAIL: projection not labelled"; exit 1; }
grep -q '"synthetic_tokens": 8' "$WORK/proj/simulate.json" || { echo "FAIL: projection settings not recorded"; exit 1; }
rows=$(($(wc -l < "$WORK/proj/simulate.csv") - 1))
[ "$rows" -eq $(( 2 * 3 * 2 + 2 * 3 * 2 + 3 * 2 )) ] || { echo "FAIL: projection has $rows rows"; exit 1; }
# Its accuracy is the sweep's: dip 0.5's perplexity the same in both.
a=$(awk -F, '$1 == "dip" && $2 == 0.5 { print $6; exit }' "$WORK/sim/simulate.csv")
b=$(awk -F, '$1 == "dip" && $2 == 0.5 { print $6; exit }' "$WORK/proj/simulate.csv")
[ "$a" = "$b" ] || { echo "FAIL: projected accuracy $b is not the sweep's $a"; exit 1; }
if "$DIP" "${P[@]}" --densities 0.6 >/dev/null 2>"$WORK/proj2.log"; then echo "FAIL: a missing point was accepted"; exit 1; fi
grep -q "no accuracy for dip at density 0.6" "$WORK/proj2.log" || { echo "FAIL: missing point message"; cat "$WORK/proj2.log"; exit 1; }
/usr/bin/python3 "$ROOT/tools/plot_sim.py" "$WORK/sim/simulate.json" "$WORK/simplots" >/dev/null
for f in sim_tps_dram.png sim_tps_dram.svg sim_pareto.png sim_pareto.svg sim_gamma.png report.md; do
  [ -s "$WORK/simplots/$f" ] || { echo "FAIL: $f not written"; exit 1; }
done
grep -q "dense streaming" "$WORK/simplots/report.md" || { echo "FAIL: report lacks the comparison"; exit 1; }
# A trace from generate: 64-byte header + tokens x layers x (ceil(64/8) + ceil(128/8)) x 2 (hits).
"$DIP" generate -m "$WORK/m.gguf" -p "the quick brown fox" -n 6 --ignore-eos --method dip-ca --mlp-density 0.5 \
  --trace "$WORK/t.trace" >/dev/null 2>&1
size=$(stat -c %s "$WORK/t.trace")
n_tok=$(( (size - 64) / (2 * (8 + 16) * 2) ))
[ $(( 64 + n_tok * 96 )) -eq "$size" ] && [ "$n_tok" -ge 6 ] || { echo "FAIL: trace size $size"; exit 1; }
echo "sweep, simulated sweep, plots, report and trace: ok"
