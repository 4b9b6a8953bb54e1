#!/usr/bin/env bash
# LoRA adapters through the command line, on the default model: an adapter changes the output;
# applying it equals merging it (dip convert --lora); a pruned run from a flash image with the
# adapter in DRAM equals the same pruned run in DRAM; PEFT -> GGUF round trip; bad adapters and
# scales are one-line errors with a non-zero exit.
#   lora.sh DIP WORK
source "$(dirname "$0")/common.sh"
M="$(dirname "$0")/../../models/default.gguf"
TEXT="$WORK/text.txt"
head -c 6000 "$(dirname "$0")/../../models/heldout-test.txt" > "$TEXT"
A="$WORK/a.gguf"
"$DIP" make-test-lora "$A" -m "$M" --rank 8 --b-std 0.03 --seed 3 || bad "make-test-lora"
ppl() { "$DIP" perplexity -f "$TEXT" -c 128 --chunks 6 --json "$@" 2>/dev/null | tail -1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["ppl"])'; }
close() { python3 -c 'import sys; a, b = float(sys.argv[1]), float(sys.argv[2]); sys.exit(0 if abs(a - b) <= float(sys.argv[3]) * b else 1)' "$@"; }

base=$(ppl -m "$M")
with=$(ppl -m "$M" --lora "$A")
half=$(ppl -m "$M" --lora-scaled "$A" 0.5)
close "$base" "$with" 0.001 && bad "the adapter does not change perplexity ($base, $with)"
close "$with" "$half" 0.0001 && bad "--lora-scaled 0.5 gives --lora's perplexity"
"$DIP" convert "$M" "$WORK/merged.gguf" --type f16 --lora "$A" 2>/dev/null || bad "convert --lora"
merged=$(ppl -m "$WORK/merged.gguf")
close "$merged" "$with" 0.002 || bad "merged $merged vs applied $with"

# Flash: the adapter stays in DRAM; DIP-CA from the image equals DIP-CA in DRAM with the same
# cache (the image's capacities, given explicitly to the DRAM run).
"$DIP" convert "$M" "$WORK/m.dipflash" --flash 2>/dev/null || bad "flash image"
fl=$("$DIP" perplexity -f "$TEXT" -m "$M" -c 128 --chunks 6 --json --lora "$A" --method dip --mlp-density 0.5 \
     --flash "$WORK/m.dipflash" --mlp-cache 100% 2>/dev/null | tail -1)
fl0=$("$DIP" perplexity -f "$TEXT" -m "$M" -c 128 --chunks 2 --json --method dip --mlp-density 0.5 \
     --flash "$WORK/m.dipflash" --mlp-cache 100% 2>/dev/null | tail -1)
dr=$("$DIP" perplexity -f "$TEXT" -m "$M" -c 128 --chunks 6 --json --lora "$A" --method dip --mlp-density 0.5 2>/dev/null | tail -1)
python3 - "$fl" "$dr" "$fl0" <<'PY' || bad "flash run with an adapter differs from the DRAM run"
import json, sys
f, d, f0 = (json.loads(a) for a in sys.argv[1:4])
assert abs(f["ppl"] - d["ppl"]) <= 1e-4 * d["ppl"], (f["ppl"], d["ppl"])
# The adapter counts in the DRAM plan (rank 8 on every projection, 622,592 parameters: 2.5 MB
# in the file, as much again as floats).
extra = f["flash"]["resident_weights"] - f0["flash"]["resident_weights"]
assert extra == 8 * 622_592, extra
PY
"$DIP" convert "$M" "$WORK/x.dipflash" --flash --lora "$A" 2>"$WORK/err.txt" && bad "--flash --lora accepted"
grep -q "merge adapters into a GGUF file first" "$WORK/err.txt" || bad "--flash --lora: $(cat "$WORK/err.txt")"

# Bad input: a one-line error naming the file, a non-zero exit.
expect_fail "adapter scale 'abc' is not a number" "$DIP" generate -m "$M" -p hi -n 1 --lora-scaled "$A" abc
expect_fail "not 'adapter'" "$DIP" generate -m "$M" -p hi -n 1 --lora "$M"
expect_fail "no such adapter" "$DIP" perplexity -m "$M" -f "$TEXT" --lora "$WORK/missing.gguf"
"$DIP" make-test-model "$WORK/other.gguf" --n-embd 64 --n-ff 96 2>/dev/null
"$DIP" make-test-lora "$WORK/other_a.gguf" -m "$WORK/other.gguf" 2>/dev/null
expect_fail "an adapter for another model" "$DIP" generate -m "$M" -p hi -n 1 --lora "$WORK/other_a.gguf"
expect_fail "give --lora" "$DIP" perplexity -m "$M" -f "$TEXT" --method dip --mlp-density 0.5 --kl-to-base
expect_fail "lora_b: Q8_0 stores rows of a multiple of 32 values" \
  "$DIP" make-test-lora "$WORK/q8.gguf" -m "$M" --rank 8 --type q8_0
expect_fail "--type must be f32, f16, bf16 or q8_0" "$DIP" convert-lora "$A" "$WORK/q4.gguf" -m "$M" --type q4_0
head -c 3000 "$A" > "$WORK/trunc.gguf"
expect_fail "trunc.gguf" "$DIP" generate -m "$M" -p hi -n 1 --lora "$WORK/trunc.gguf"
finish
