#!/usr/bin/env bash
# The shipped default model: checksums, it loads and generates English words, and its held-out
# perplexity in dip agrees with llama.cpp's within 0.5% (the first 24 windows of 512 tokens, from
# the first TEXT_BYTES = 60000 bytes, to bound the test's time; the model card gives the full-set
# figures; sanitizer builds pass 20000, 8 windows).
set -euo pipefail
DIP="$1"; ORACLE_DIR="$2"; WORK="$3"; TEXT_BYTES="${4:-60000}"
cd "$(dirname "$0")/../../models"
sha256sum -c SHA256SUMS
mkdir -p "$WORK"
"$DIP" info default.gguf > "$WORK/info.txt"
grep -q "architecture  llama" "$WORK/info.txt"
out=$(DIP_MODEL="$PWD/default.gguf" "$DIP" generate -p "The President said" -n 24 --temp 0 2>/dev/null)
echo "$out"
grep -qiE " (the|of|and|to) " <<<"$out" || { echo "no English in the generation"; exit 1; }
head -c "$TEXT_BYTES" heldout-test.txt > "$WORK/prefix.txt"
for model in default.gguf default-q8_0.gguf; do
  # One thread each: ctest runs other tests beside this one, and ggml's waiting threads spin.
  ours=$("$DIP" perplexity -m "$model" -t 1 -f "$WORK/prefix.txt" --ctx 512 --json 2>/dev/null | tail -1)
  printf '{"model": "%s", "threads": 1, "perplexity": {"file": "%s", "ctx": 512}}' "$PWD/$model" "$WORK/prefix.txt" > "$WORK/req.json"
  ref=$(node "$ORACLE_DIR/llama_oracle.mjs" "$WORK/req.json" 2>/dev/null)
  node -e '
    const ours = JSON.parse(process.argv[1]), ref = JSON.parse(process.argv[2]).perplexity;
    const rel = Math.abs(ours.ppl - ref.ppl) / ref.ppl;
    console.log(`${process.argv[3]}: dip PPL ${ours.ppl.toFixed(4)} (${ours.scored} tokens), llama.cpp ${ref.ppl.toFixed(4)} (${ref.scored}), rel ${(rel * 100).toFixed(4)}%`);
    if (ours.scored !== ref.scored || !(rel < 0.005)) process.exit(1);' "$ours" "$ref" "$model"
done
