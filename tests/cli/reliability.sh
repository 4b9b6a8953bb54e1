#!/usr/bin/env bash
# A user's files and a user's machine: outputs never destroy inputs or leave half-written files,
# a closed pipe is a normal end, inputs that are not regular files are refused at once, flags
# that do nothing for the run are errors naming the flag, and the context only grows when asked.
source "$(dirname "$0")/common.sh" "$1" "$2"

same_bytes() { cmp -s "$1" "$2" || bad "$1 changed"; }

M="$WORK/m.gguf"
"$DIP" make-test-model "$M" --n-embd 64 --n-head 2 --n-head-kv 2 --n-ff 96 --n-ctx 256 2>/dev/null || { echo "cannot make model"; exit 1; }
cp "$M" "$WORK/orig.gguf"
printf 'The quick brown fox jumps over the lazy dog. %.0s' $(seq 200) > "$WORK/text.txt"

# A reader that closes the pipe early: a normal end, also under pipefail.
( set -o pipefail; "$DIP" info "$M" | head -1 >/dev/null ) && echo "ok: closed pipe" || bad "dip info | head -1 fails under pipefail"
( set -o pipefail; "$DIP" generate -m "$M" -p hi -n 2000 --ignore-eos -c 256 2>/dev/null | head -c 1 >/dev/null ) \
  || bad "generate | head -c 1 fails under pipefail"
# A closed pipe on a conversion's progress output does not stop the conversion (nor report a
# success it did not make): the file is written and loads.
( set -o pipefail; "$DIP" convert "$M" "$WORK/piped.gguf" --type q8_0 2>&1 | head -c 1 >/dev/null ) \
  || bad "convert with a closed output pipe fails"
"$DIP" info "$WORK/piped.gguf" >/dev/null 2>&1 || bad "convert with a closed output pipe left no loadable file"

# An output that is one of the run's inputs: an error before any work; the input unchanged.
expect_fail "is one of this run's inputs" "$DIP" convert "$M" "$M" --type q8_0
ln -s m.gguf "$WORK/link.gguf"
expect_fail "is one of this run's inputs" "$DIP" convert "$WORK/link.gguf" "$M" --type q8_0
expect_fail "is one of this run's inputs" "$DIP" convert "$M" "$WORK/link.gguf" --flash
expect_fail "is one of this run's inputs" "$DIP" generate -m "$M" -p hi -n 2 --method dip --mlp-density 0.5 --trace "$WORK/link.gguf"
expect_fail "is one of this run's inputs" "$DIP" eval -m "$M" --tokens 1,2 --dump-logits "$M"
expect_fail "is one of this run's inputs" "$DIP" calibrate -m "$M" -f "$WORK/text.txt" -o "$M"
expect_fail "is one of this run's inputs" "$DIP" calibrate -m "$M" -f "$WORK/text.txt" -o "$WORK/text.txt"
expect_fail "is one of this run's inputs" "$DIP" make-test-model "$M" --vocab "$M"
expect_fail "does not exist" "$DIP" convert "$M" "$WORK/no/such/dir/out.gguf"
expect_fail "does not exist" "$DIP" eval -m "$M" --tokens 1,2 --dump-logits "$WORK/nodir/l.bin"
same_bytes "$M" "$WORK/orig.gguf"
[ -z "$(ls -A "$WORK" | grep '\.tmp-')" ] || bad "temporary files left behind: $(ls -A "$WORK")"

# A conversion killed midway leaves the previous good file intact, and no temporary file loads.
"$DIP" make-test-model "$WORK/big.gguf" --n-embd 1024 --n-layer 6 --n-ff 4096 --n-head 8 --n-head-kv 8 --fast-weights 2>/dev/null
"$DIP" convert "$M" "$WORK/out.gguf" --type f16 2>/dev/null
cp "$WORK/out.gguf" "$WORK/out.before"
"$DIP" convert "$WORK/big.gguf" "$WORK/out.gguf" --type q4_0 2>/dev/null &
pid=$!
sleep 0.3
kill -9 $pid 2>/dev/null && echo "ok: killed a conversion midway" || echo "note: conversion ended before the kill"
wait $pid 2>/dev/null
if cmp -s "$WORK/out.gguf" "$WORK/out.before"; then
  "$DIP" info "$WORK/out.gguf" >/dev/null || bad "the previous output no longer loads"
else
  "$DIP" info "$WORK/out.gguf" >/dev/null || bad "the output is neither the previous file nor a complete one"
fi
rm -f "$WORK"/.out.gguf.tmp-*

# Inputs that are not regular files: refused at once (a FIFO would block a read forever).
mkfifo "$WORK/fifo"
expect_fail "not a regular file" "$DIP" info "$WORK/fifo"
expect_fail "not a regular file" "$DIP" perplexity -m "$M" -f "$WORK/fifo"
expect_fail "is a directory" "$DIP" perplexity -m "$M" -f "$WORK"

# Flag errors name the flag; flags that do nothing for the run are errors.
F=(generate -m "$M" -p hi -n 2 --method dip --mlp-density 0.5)
"$DIP" convert "$M" "$WORK/m.dipflash" --flash 2>/dev/null
expect_fail "--mlp-cache '150%' must be a percentage" "$DIP" "${F[@]}" --flash "$WORK/m.dipflash" --mlp-cache 150%
expect_fail "--flash-gap '-512'" "$DIP" "${F[@]}" --flash "$WORK/m.dipflash" --mlp-cache 50% --flash-gap -512
expect_fail "not in \\[1 MB/s" "$DIP" "${F[@]}" --flash "$WORK/m.dipflash" --mlp-cache 50% --flash-bw 1B/s
expect_fail "--mlp-density must be in (0, 1]" "$DIP" generate -m "$M" -p hi -n 2 --method dip --mlp-density -1
expect_fail "--gamma applies to --method dip-ca only" "$DIP" "${F[@]}" --gamma 0.5
expect_fail "--mlp-density has no effect with --method dense" "$DIP" generate -m "$M" -p hi -n 2 --mlp-density 0.5
expect_fail "--trace records pruning masks" "$DIP" generate -m "$M" -p hi -n 2 --trace "$WORK/t.trace"
expect_fail "--chunks 1: perplexity needs at least 2 windows" "$DIP" perplexity -m "$M" -f "$WORK/text.txt" -c 64 --chunks 1

# The context: --ctx on every model command; beyond the trained context only when asked.
"$DIP" generate -m "$M" -p hi -n 2 --ctx 64 >/dev/null 2>&1 || bad "generate --ctx is not accepted"
long=$(printf 'word %.0s' $(seq 400))
expect_fail "beyond the model's trained context of 256" "$DIP" generate -m "$M" -p "$long" -n 4
"$DIP" generate -m "$M" -p "$long" -n 4 -c 900 >/dev/null 2>"$WORK/long.err" || bad "generate -c 900 beyond the trained context fails"
grep -q "warning: context 900 is beyond" "$WORK/long.err" || bad "no warning for a context beyond the trained one"
# A huge context costs memory as it fills, not up front (8 GB of KV cache here if allocated).
/usr/bin/time -o "$WORK/rss" -f '%M' "$DIP" generate -m "$M" -p hi -n 2 -c 1000000 >/dev/null 2>&1
rss=$(tail -1 "$WORK/rss")
[ "${rss:-999999999}" -lt 400000 ] && echo "ok: -c 1000000 peak RSS ${rss} KiB" || bad "-c 1000000 peak RSS ${rss} KiB"

# A flash image is used only with the weights it was written from: a copy of the model whose MLP
# bytes changed is refused (every byte counts, not only the tensors' ends); a damaged column is
# an error at the read that meets it, unless --no-verify.
"$DIP" make-test-model "$WORK/f.gguf" --n-embd 64 --n-head 2 --n-head-kv 2 --n-ff 512 --n-layer 2 2>/dev/null
"$DIP" convert "$WORK/f.gguf" "$WORK/f.dipflash" --flash 2>/dev/null
FR=(generate -p hi -n 4 --flash "$WORK/f.dipflash" --mlp-cache 50%)
"$DIP" "${FR[@]}" -m "$WORK/f.gguf" >/dev/null 2>&1 || bad "the flash run on its own model fails"
cp "$WORK/f.gguf" "$WORK/f2.gguf"
"$DIP" "${FR[@]}" -m "$WORK/f2.gguf" >/dev/null 2>&1 || bad "the flash run on an unchanged copy fails"
size=$(stat -c %s "$WORK/f2.gguf")
dd if=/dev/zero of="$WORK/f2.gguf" bs=1 seek=$((size / 2)) count=$((size / 4)) conv=notrunc 2>/dev/null
expect_fail "written from other MLP weights" "$DIP" "${FR[@]}" -m "$WORK/f2.gguf"
# Layout flags: only with --flash; a density the layout can learn from.
expect_fail "--layout-from needs --flash" "$DIP" convert "$WORK/f.gguf" "$WORK/l.gguf" --layout-from "$WORK/text.txt"
expect_fail "--layout-density 1.5 must be in (0, 1)" "$DIP" convert "$WORK/f.gguf" "$WORK/l.dipflash" --flash --layout-from "$WORK/text.txt" --layout-density 1.5
[ ! -e "$WORK/l.dipflash" ] && echo "ok: no image left by a refused layout" || bad "a refused layout left an image"
cp "$WORK/f.dipflash" "$WORK/g.dipflash"
half=$(( $(stat -c %s "$WORK/g.dipflash") / 2 ))
head -c 65536 /dev/zero | tr '\0' '\377' | dd of="$WORK/g.dipflash" bs=1 seek=$half conv=notrunc 2>/dev/null
expect_fail "as read does not match its checksum" "$DIP" generate -m "$WORK/f.gguf" -p hi -n 4 --flash "$WORK/g.dipflash" --mlp-cache 1%
"$DIP" generate -m "$WORK/f.gguf" -p hi -n 4 --flash "$WORK/g.dipflash" --mlp-cache 1% --no-verify >/dev/null 2>&1 \
  || bad "--no-verify still checks the columns"

# One mask, one result on every path: sampled text and perplexity from the MLP's columns in DRAM
# (DIP at density 1), and from flash with a 30% cache (DIP at density 1, dense streaming), on
# one thread or two, are the same to the last digit (at one batch size: the attention's order
# follows llama.cpp's, which depends on the batch).
G=(generate -m "$WORK/f.gguf" -p hi -n 150 --ignore-eos --temp 0.8 --seed 42)
P=(perplexity -m "$WORK/f.gguf" -f "$WORK/text.txt" --chunks 2 -c 128 -b 32)
FL=(--flash "$WORK/f.dipflash" --mlp-cache 30%)
paths=("--method dip --mlp-density 1" "--method dip --mlp-density 1 ${FL[*]}" "--method dense ${FL[*]}" "--method dense ${FL[*]} -t 1")
ref_text=""; ref_ppl=""
for a in "${paths[@]}"; do
  # shellcheck disable=SC2086
  text=$("$DIP" "${G[@]}" $a 2>/dev/null | md5sum); ppl=$("$DIP" "${P[@]}" $a 2>&1 | grep -o 'ppl [0-9.]*' | tr '\n' ' ')
  [ -n "$ppl" ] || bad "perplexity $a printed no figure"
  if [ -z "$ref_text" ]; then ref_text=$text; ref_ppl=$ppl; continue; fi
  [ "$text" = "$ref_text" ] || bad "sampled text differs: $a"
  [ "$ppl" = "$ref_ppl" ] || bad "perplexity differs: $a ($ppl, not $ref_ppl)"
done
echo "ok: one mask, one result ($ref_ppl)"

finish
