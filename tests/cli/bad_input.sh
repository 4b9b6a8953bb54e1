#!/usr/bin/env bash
# Bad input through the CLI: each case must exit non-zero with one "error: ..." line that
# names the problem, and must not crash (exit codes >= 128 are signals).
set -u
DIP="$1"
WORK="$2"
rm -rf "$WORK" && mkdir -p "$WORK"
fails=0

expect_fail() {  # expect_fail NEEDLE CMD...
  local needle="$1"; shift
  local err rc
  err=$("$@" 2>&1 >/dev/null); rc=$?
  if [ $rc -eq 0 ] || [ $rc -ge 128 ]; then
    echo "FAIL (exit $rc): $*"; fails=$((fails+1)); return
  fi
  if ! grep -q -- "$needle" <<<"$err"; then
    echo "FAIL (message lacks '$needle'): $*"; echo "  got: $err"; fails=$((fails+1)); return
  fi
  echo "ok: $needle"
}

"$DIP" make-test-model "$WORK/m.gguf" --n-embd 64 --n-head 2 --n-head-kv 2 --n-ff 96 2>/dev/null || { echo "cannot make model"; exit 1; }
printf 'plain text\n' > "$WORK/notgguf.gguf"
head -c 1000 "$WORK/m.gguf" > "$WORK/trunc.gguf"
printf 'caf\xe9 \xff\xfe not utf-8\n' > "$WORK/latin1.txt"
printf 'short\n' > "$WORK/short.txt"

expect_fail "cannot open" "$DIP" info "$WORK/missing.gguf"
expect_fail "not a GGUF file" "$DIP" info "$WORK/notgguf.gguf"
expect_fail "cannot fit in the file" "$DIP" info "$WORK/trunc.gguf"
expect_fail "config.json is missing" "$DIP" info "$WORK"
expect_fail "not valid UTF-8" "$DIP" perplexity -m "$WORK/m.gguf" -f "$WORK/latin1.txt"
expect_fail "at least 2 \* ctx" "$DIP" perplexity -m "$WORK/m.gguf" -f "$WORK/short.txt"
expect_fail "cannot open" "$DIP" perplexity -m "$WORK/m.gguf" -f "$WORK/nofile.txt"
expect_fail "temp" "$DIP" generate -m "$WORK/m.gguf" -p hi --temp -1
expect_fail "top-p" "$DIP" generate -m "$WORK/m.gguf" -p hi --top-p 1.5
expect_fail "threads" "$DIP" generate -m "$WORK/m.gguf" -p hi -t 0
expect_fail "n-predict" "$DIP" generate -m "$WORK/m.gguf" -p hi -n abc
expect_fail "ctx" "$DIP" perplexity -m "$WORK/m.gguf" -f "$WORK/short.txt" --ctx 2
expect_fail "unknown tensor type" "$DIP" make-test-model "$WORK/x.gguf" --type q1_k
expect_fail "bad token id" "$DIP" eval -m "$WORK/m.gguf" --tokens 1,x
expect_fail "out of range" "$DIP" eval -m "$WORK/m.gguf" --tokens 1,999999
mkdir -p "$WORK/hf" && printf '{"architectures": ["GPT2LMHeadModel"]}' > "$WORK/hf/config.json"
expect_fail "unsupported architecture 'GPT2LMHeadModel'" "$DIP" info "$WORK/hf"
expect_fail "unknown tensor type" "$DIP" convert "$WORK/m.gguf" "$WORK/out.gguf" --type iq2_xxs
expect_fail "not q4_k_m" "$DIP" convert "$WORK/m.gguf" "$WORK/hf-out" --to-hf --type q4_k_m
expect_fail "cannot open" "$DIP" convert "$WORK/none.gguf" "$WORK/out.gguf"
expect_fail "context is full" "$DIP" generate -m "$WORK/m.gguf" -p "a b c d e f g h" -c 4 -n 1

# Pruning flags (DIP issue): densities, gamma, method names, thresholds of another model,
# calibration texts that are too short, traces that are not traces.
M="$WORK/m.gguf"
expect_fail "must be in (0, 1]" "$DIP" generate -m "$M" -p hi -n 2 --method dip --mlp-density 0
expect_fail "must be in (0, 1]" "$DIP" generate -m "$M" -p hi -n 2 --method dip --mlp-density 1.5
expect_fail "must be in (0, 1]" "$DIP" generate -m "$M" -p hi -n 2 --method dip --up-keep 1.2 --down-keep 0.5
expect_fail "--gamma must be in" "$DIP" generate -m "$M" -p hi -n 2 --method dip-ca --mlp-density 0.5 --gamma 1.5
expect_fail "--gamma must be in" "$DIP" generate -m "$M" -p hi -n 2 --method dip-ca --mlp-density 0.5 --gamma -0.2
expect_fail "--mask-block must be in" "$DIP" generate -m "$M" -p hi -n 2 --method dip --mlp-density 0.5 --mask-block 0
expect_fail "--mask-block N or UP,DOWN: 'x' is not a number" "$DIP" generate -m "$M" -p hi -n 2 --method dip --mlp-density 0.5 --mask-block 4,x
expect_fail "as N or UP,DOWN (got '1,2,3')" "$DIP" generate -m "$M" -p hi -n 2 --method dip --mlp-density 0.5 --mask-block 1,2,3
expect_fail "as N or UP,DOWN (got '2.5')" "$DIP" generate -m "$M" -p hi -n 2 --method dip --mlp-density 0.5 --mask-block 2.5
expect_fail "has no effect with --method dense" "$DIP" generate -m "$M" -p hi -n 2 --mask-block 4
expect_fail "does not apply to threshold masks" "$DIP" generate -m "$M" -p hi -n 2 --method dip --mlp-density 0.5 --threshold-mode --thresholds "$WORK/th.json" --mask-block 4
expect_fail "cache-fraction" "$DIP" generate -m "$M" -p hi -n 2 --method dip-ca --mlp-density 0.5 --cache-fraction 2
expect_fail "unknown method 'sparse'" "$DIP" generate -m "$M" -p hi -n 2 --method sparse --mlp-density 0.5
expect_fail "needs --mlp-density" "$DIP" generate -m "$M" -p hi -n 2 --method dip
expect_fail "below its minimum 2/3" "$DIP" generate -m "$M" -p hi -n 2 --method glu --mlp-density 0.5
expect_fail "give --thresholds FILE" "$DIP" generate -m "$M" -p hi -n 2 --method cats --mlp-density 0.5
expect_fail "unknown cache policy" "$DIP" generate -m "$M" -p hi -n 2 --method dip-ca --mlp-density 0.5 --cache-policy fifo
expect_fail "calibration text is too short" "$DIP" calibrate -m "$M" -f "$WORK/short.txt" -o "$WORK/t.json"
"$DIP" make-test-model "$WORK/m2.gguf" --n-embd 64 --n-head 2 --n-head-kv 2 --n-ff 96 --seed 99 2>/dev/null
for i in $(seq 1 60); do echo "the quick brown fox jumps over the lazy dog again and again, number $i"; done > "$WORK/calib.txt"
"$DIP" calibrate -m "$WORK/m2.gguf" -f "$WORK/calib.txt" -o "$WORK/t2.json" -c 64 2>/dev/null || echo "FAIL: calibration did not run"
expect_fail "calibrated for model" "$DIP" generate -m "$M" -p hi -n 2 --method teal --mlp-density 0.5 --thresholds "$WORK/t2.json"
printf '{"format": "dip-thresholds", "version": 1}' > "$WORK/t3.json"
expect_fail "malformed thresholds file" "$DIP" generate -m "$M" -p hi -n 2 --method teal --mlp-density 0.5 --thresholds "$WORK/t3.json"
expect_fail "not valid JSON" "$DIP" generate -m "$M" -p hi -n 2 --method teal --mlp-density 0.5 --thresholds "$WORK/short.txt"
expect_fail "--densities" "$DIP" sweep -m "$M" -f "$WORK/calib.txt" --methods dip --densities 0.5,2 -o "$WORK/sw"
expect_fail "--gammas" "$DIP" sweep -m "$M" -f "$WORK/calib.txt" --methods dip-ca --gammas x -o "$WORK/sw"

# The simulator (hardware model): impossible devices, foreign or truncated traces.
expect_fail "must be positive" "$DIP" simulate --shape default --flash-bw -1
expect_fail "must be positive" "$DIP" simulate --shape default --dram-bw 0
expect_fail "cannot hold the static part" "$DIP" simulate --shape llama-3-8b --dram-size 1
expect_fail "unknown model shape" "$DIP" simulate --shape gpt-9
expect_fail "unknown eviction policy" "$DIP" simulate --shape default --policy mru
"$DIP" generate -m "$M" -p "hi there" -n 3 --seed 3520188881 --method dip --mlp-density 0.5 --trace "$WORK/m.trace" >/dev/null 2>&1
expect_fail "trace was recorded on a model of shape" "$DIP" simulate --shape default --trace "$WORK/m.trace"
head -c 100 "$WORK/m.trace" > "$WORK/cut.trace"
expect_fail "truncated" "$DIP" simulate -m "$M" --trace "$WORK/cut.trace"

expect_fail "bundle" "$DIP" simulate --shape default --bundle 0
expect_fail "unknown cache split" "$DIP" simulate --shape default --split random
expect_fail "must not be negative" "$DIP" simulate --shape default --compute-gflops -5
expect_fail "must not be negative" "$DIP" simulate --shape default --flash-latency-us -1
expect_fail "must not be negative" "$DIP" simulate --shape default --request-cpu-us -2
expect_fail "not in range" "$DIP" simulate --shape default --flash-qd -1
expect_fail "has its own" "$DIP" simulate -m "$M" --trace "$WORK/m.trace" --gamma 0.5
# Simulated sweeps: bad DRAM sizes, flash speeds, budgets, policies; DRAM below the static part.
S=(sweep -m "$M" -f "$WORK/calib.txt" --densities 0.5 -c 32 --chunks 1 --simulate -o "$WORK/ssw")
expect_fail "bad DRAM size" "$DIP" "${S[@]}" --methods dip --sim-dram lots
expect_fail "must be a share of the MLP" "$DIP" "${S[@]}" --methods dip --sim-dram 150%
expect_fail "cannot hold the static part" "$DIP" "${S[@]}" --methods dip --sim-dram 1KiB
expect_fail "bad bandwidth" "$DIP" "${S[@]}" --methods dip --sim-flash-bw quick
expect_fail "--sim-budgets" "$DIP" "${S[@]}" --methods dip --sim-budgets -3
expect_fail "unknown device" "$DIP" "${S[@]}" --methods dip --sim-device nokia-3310
expect_fail "use --sim-policy lru or lfu" "$DIP" "${S[@]}" --methods dip-ca --sim-policy belady
expect_fail "shares of the MLP" "$DIP" "${S[@]}" --methods dip --sim-shape llama-3-8b --sim-dram 4GB
expect_fail "unknown model shape" "$DIP" "${S[@]}" --methods dip --sim-shape gpt-9
expect_fail "needs --simulate" "$DIP" sweep -m "$M" -f "$WORK/calib.txt" --methods dip --densities 0.5 --sim-dram 50% -o "$WORK/ssw"
expect_fail "give --sim-shape too" "$DIP" "${S[@]}" --methods dip --sim-accuracy "$WORK/none.json"
expect_fail "cannot open" "$DIP" "${S[@]}" --methods dip --sim-shape default --sim-dram 50% --sim-accuracy "$WORK/none.json"
expect_fail "not a dip sweep --simulate result" "$DIP" "${S[@]}" --methods dip --sim-shape default --sim-dram 50% --sim-accuracy "$WORK/t2.json"
expect_fail "give one" "$DIP" "${S[@]}" --methods dip --flash "$WORK/none.dipflash" --budgets 50%

# Flash runs: images of other models, damaged images, budgets below the resident part, bad units.
"$DIP" convert "$M" "$WORK/m.dipflash" --flash >/dev/null 2>&1 || echo "FAIL: convert --flash did not run"
"$DIP" convert "$WORK/m2.gguf" "$WORK/m2.dipflash" --flash >/dev/null 2>&1 || echo "FAIL: convert --flash did not run"
G=(generate -m "$M" -p hi -n 2 --method dip --mlp-density 0.5)
expect_fail "need --flash IMAGE" "$DIP" "${G[@]}" --dram-budget 100MiB
expect_fail "needs one of --dram-budget" "$DIP" "${G[@]}" --flash "$WORK/m.dipflash"
expect_fail "too small for the part that must stay resident" "$DIP" "${G[@]}" --flash "$WORK/m.dipflash" --dram-budget 1MiB
expect_fail "bad --dram-budget" "$DIP" "${G[@]}" --flash "$WORK/m.dipflash" --dram-budget lots
expect_fail "percentage in (0, 100]" "$DIP" "${G[@]}" --flash "$WORK/m.dipflash" --dram-budget 150%
expect_fail "bad bandwidth" "$DIP" "${G[@]}" --flash "$WORK/m.dipflash" --dram-budget 100MiB --flash-bw fast
expect_fail "not in \\[1 MB/s" "$DIP" "${G[@]}" --flash "$WORK/m.dipflash" --dram-budget 100MiB --flash-bw 0GB/s
expect_fail "bad duration" "$DIP" "${G[@]}" --flash "$WORK/m.dipflash" --dram-budget 100MiB --flash-latency 3parsecs
expect_fail "unknown --flash-io" "$DIP" "${G[@]}" --flash "$WORK/m.dipflash" --dram-budget 100MiB --flash-io aio
expect_fail "unknown --flash-prefetch" "$DIP" "${G[@]}" --flash "$WORK/m.dipflash" --dram-budget 100MiB --flash-prefetch maybe
expect_fail "need --flash IMAGE" "$DIP" "${G[@]}" --flash-prefetch on
expect_fail "not a multiple of the image" "$DIP" "${G[@]}" --flash "$WORK/m.dipflash" --dram-budget 100MiB --flash-gap 1000
expect_fail "must be a size of at most 16MiB (e.g. 32KiB), 0 or auto" "$DIP" "${G[@]}" --flash "$WORK/m.dipflash" --dram-budget 100MiB --flash-gap often
# The device probe: a missing image, not an image, an absurd time; probe files for the simulator.
expect_fail "none.dipflash: cannot open" "$DIP" flash-probe "$WORK/none.dipflash"
expect_fail "not a dip flash image" "$DIP" flash-probe "$M" -o "$WORK/p.json"
expect_fail "probe time 0 s is not in" "$DIP" flash-probe "$WORK/m.dipflash" --seconds 0 -o "$WORK/p.json"
expect_fail "probe time inf s is not in" "$DIP" flash-probe "$WORK/m.dipflash" --seconds inf -o "$WORK/p.json"
expect_fail "is one of this run.s inputs" "$DIP" flash-probe "$WORK/m.dipflash" -o "$WORK/m.dipflash"
if [ -e "$WORK/p.json" ]; then echo "FAIL: a failed probe left $WORK/p.json"; fails=$((fails+1)); fi
echo '{"format": 1, "device": "8:1"' > "$WORK/bad-probe.json"
expect_fail "bad-probe.json: not a probe file" "$DIP" simulate --flash-probe "$WORK/bad-probe.json"
echo '{"format": 1, "device": "8:1", "queue_depth": 64, "align": 512, "request_us": 10, "bandwidth_bytes_per_s": -5, "request_cpu_us": 4, "gap_bytes": 0}' > "$WORK/bad-probe.json"
expect_fail "'bandwidth_bytes_per_s' = -5 is not in" "$DIP" simulate --flash-probe "$WORK/bad-probe.json"
expect_fail "cannot read the probe file" "$DIP" simulate --flash-probe "$WORK/none.json"
expect_fail "give --flash-probe FILE" "$DIP" simulate --flash-gap auto
expect_fail "must be a size of at most 16MiB (e.g. 32KiB), 0 or auto" "$DIP" simulate --flash-gap 1PB
expect_fail "dense, dip, dip-ca or teal" "$DIP" generate -m "$M" -p hi -n 2 --method glu --mlp-density 0.8 --flash "$WORK/m.dipflash" --dram-budget 100MiB
expect_fail "other MLP weights" "$DIP" "${G[@]}" --flash "$WORK/m2.dipflash" --dram-budget 100MiB
expect_fail "none.dipflash: cannot open" "$DIP" "${G[@]}" --flash "$WORK/none.dipflash" --dram-budget 100MiB
expect_fail "not a dip flash image" "$DIP" "${G[@]}" --flash "$M" --dram-budget 100MiB
cp "$WORK/m.dipflash" "$WORK/cut.dipflash" && truncate -s -4096 "$WORK/cut.dipflash"
expect_fail "truncated" "$DIP" "${G[@]}" --flash "$WORK/cut.dipflash" --dram-budget 100MiB
cp "$WORK/m.dipflash" "$WORK/rot.dipflash" && printf '\xff' | dd of="$WORK/rot.dipflash" bs=1 seek=20000 conv=notrunc 2>/dev/null
expect_fail "corrupt column data in layer" "$DIP" "${G[@]}" --flash "$WORK/rot.dipflash" --dram-budget 100MiB --flash-verify
expect_fail "power of two" "$DIP" convert "$M" "$WORK/x.dipflash" --flash --flash-align 1000

# K-quants: rows must be whole super-blocks of 256. Pruned and flash runs lay a K-quant MLP out
# in requantized columns (Q4_K -> Q4_0, Q6_K -> Q8_0); a flash image needs one column type per
# matrix kind, so a mixed file whose layers' down projections map to Q4_0 and Q8_0 (Q4_K_M: Q6_K
# in some layers) takes Q4_0 in every layer and has a flash image.
expect_fail "multiples of 256" "$DIP" make-test-model "$WORK/k64.gguf" --type q4_k --n-embd 64 --n-head 2 --n-ff 128
"$DIP" make-test-model "$WORK/k.gguf" --type q4_k --n-embd 256 --n-head 4 --n-ff 512 --n-layer 1 >/dev/null 2>&1
"$DIP" generate -m "$WORK/k.gguf" -p hi -n 2 --temp 0 >/dev/null 2>&1 || { echo "FAIL: a Q4_K model does not run dense"; fails=$((fails+1)); }
"$DIP" generate -m "$WORK/k.gguf" -p hi -n 2 --temp 0 --method dip --mlp-density 0.5 >/dev/null 2>&1 || { echo "FAIL: a Q4_K model does not run pruned"; fails=$((fails+1)); }
"$DIP" make-test-model "$WORK/k4.gguf" --n-embd 256 --n-head 4 --n-ff 512 --n-layer 4 >/dev/null 2>&1
"$DIP" convert "$WORK/k4.gguf" "$WORK/k4m.gguf" --type q4_k_m >/dev/null 2>&1
"$DIP" convert "$WORK/k4m.gguf" "$WORK/k4m.dipflash" --flash >/dev/null 2>&1 || { echo "FAIL: a Q4_K_M file has no flash image"; fails=$((fails+1)); }

[ $fails -eq 0 ] && echo "all bad-input cases passed" || echo "$fails bad-input case(s) failed"
exit $fails
