#!/usr/bin/env bash
# Prompts as people give them (stdin, -p -, -f), --version, random seeds unless --seed, and
# `dip chat`: answers line after line from one context, Ctrl-C stops an answer, end of input ends.
source "$(dirname "$0")/common.sh" "$1" "$2"
M="$WORK/m.gguf"
"$DIP" make-test-model "$M" --n-embd 64 --n-head 2 --n-head-kv 2 --n-ff 96 --n-ctx 4096 2>/dev/null || { echo "cannot make model"; exit 1; }

"$DIP" --version | grep -q '^dip [0-9]' && echo "ok: --version" || bad "--version"
"$DIP" generate --help | grep -q -- '--temp FLOAT=0.8' && echo "ok: defaults in --help" || bad "--help hides the defaults"

# llama.cpp's flags that have another form here: one line that says which.
for f in -cnv -ngl; do
  err=$("$DIP" generate -m "$M" -p hi $f 2>&1 >/dev/null) && bad "$f accepted" || { grep -q "is llama.cpp's flag" <<<"$err" && [ "$(wc -l <<<"$err")" -eq 1 ] && echo "ok: $f named" || bad "$f: $err"; }
done
# Token pieces.
"$DIP" tokenize -m "$M" -p "hello world" --pieces | grep -q '^[0-9]*:"' && echo "ok: tokenize --pieces" || bad "tokenize --pieces"

# The same prompt from -p, a pipe, -p - and -f gives the same greedy text.
G=(generate -m "$M" -n 8 --temp 0)
want=$("$DIP" "${G[@]}" -p "hello world" 2>/dev/null)
[ "$(echo "hello world" | "$DIP" "${G[@]}" 2>/dev/null)" = "$want" ] && echo "ok: prompt from a pipe" || bad "prompt from a pipe"
[ "$(echo "hello world" | "$DIP" "${G[@]}" -p - 2>/dev/null)" = "$want" ] && echo "ok: -p -" || bad "-p -"
printf 'hello world' > "$WORK/prompt.txt"
[ "$("$DIP" "${G[@]}" -f "$WORK/prompt.txt" 2>/dev/null)" = "$want" ] && echo "ok: -f FILE" || bad "-f FILE"
err=$("$DIP" "${G[@]}" -p x -f "$WORK/prompt.txt" 2>&1 >/dev/null) && bad "-p with -f accepted" || { grep -q "not both" <<<"$err" && echo "ok: -p with -f refused" || bad "-p with -f: $err"; }

# On a terminal, generated text loses its control characters (the random test model makes ESC,
# backspace, VT and FF bytes); through a pipe it is kept byte for byte. `script` gives generate a
# pseudo-terminal, whose driver writes each newline as CR LF.
T=(generate -m "$M" -p "Once upon a time" -n 64 --temp 0 --ignore-eos)
piped=$("$DIP" "${T[@]}" 2>/dev/null | od -An -c)
# (od -c writes control bytes as \b, \f, \r, \v or three octal digits from 000 to 037, and 177.)
if grep -qE '\\[bfrv]| 0[0-3][0-7]( |$)| 177( |$)' <<<"$piped"; then
  shown=$(script -qec "$(printf '%q ' "$DIP" "${T[@]}") 2>/dev/null" /dev/null | sed 's/\r$//')
  want=$("$DIP" "${T[@]}" 2>/dev/null | tr -d '\000-\010\013-\037\177')
  [ -n "$shown" ] && [ "$shown" = "$want" ] && echo "ok: generate on a terminal drops control characters" || { bad "generate on a terminal"; od -c <<<"$shown" | head -n 5; }
else
  bad "the test model's text has no control characters: the terminal check would prove nothing"
fi

# Sampling: a random seed per run unless --seed (printed either way).
S=(generate -m "$M" -p "hello" -n 32 --temp 1.5 --top-k 0 --top-p 1 --min-p 0 --ignore-eos)
a=$("$DIP" "${S[@]}" 2>/dev/null); b=$("$DIP" "${S[@]}" 2>/dev/null)
[ "$a" != "$b" ] && echo "ok: random seeds differ" || bad "two runs without --seed gave the same text"
a=$("$DIP" "${S[@]}" --seed 7 2>/dev/null); b=$("$DIP" "${S[@]}" --seed 7 2>/dev/null)
[ "$a" = "$b" ] && echo "ok: --seed repeats" || bad "--seed 7 twice gave different texts"
"$DIP" "${S[@]}" --seed 7 2>&1 >/dev/null | grep -q "seed 7" && echo "ok: seed printed" || bad "seed not printed"

# chat: the first answer is generate's greedy continuation; the second follows in the same
# context; end of input ends the session with success.
first=$("$DIP" generate -m "$M" -p "Once upon a time" -n 8 --temp 0 --ignore-eos 2>/dev/null)
out=$(printf 'Once upon a time\nThe little cat\n' | "$DIP" chat -m "$M" -n 8 --temp 0 --ignore-eos -q 2>"$WORK/chat.err"); rc=$?
[ $rc -eq 0 ] || bad "chat exit $rc: $(cat "$WORK/chat.err")"
answer1=$(sed -n 1p <<<"$out")
[ "Once upon a time$answer1" = "$first" ] && echo "ok: chat's first answer = generate" || { bad "chat's first answer"; echo "  chat: $answer1"; echo "  generate: $first"; }
[ "$(grep -c . <<<"$out")" -ge 2 ] && echo "ok: chat answers the second line" || bad "chat did not answer the second line: $out"
# With a chat template, the first answer is the greedy continuation of the rendered prompt; the
# second turn evaluates only what follows the conversation already in the context.
rendered=$'<|im_start|>user\nOnce upon a time<|im_end|>\n<|im_start|>assistant\n'
first=$("$DIP" generate -m "$M" -p "$rendered" -n 8 --temp 0 --ignore-eos 2>/dev/null)
out=$(printf 'Once upon a time\nThe little cat\n' | "$DIP" chat -m "$M" -n 8 --temp 0 --ignore-eos --chat-template chatml 2>"$WORK/tmpl.err")
[ "$rendered$(sed -n 1p <<<"$out")" = "$first" ] && echo "ok: chat with a template = generate on the rendered prompt" || { bad "chat with a template"; cat "$WORK/tmpl.err"; }
grep -q "chat template chatml" "$WORK/tmpl.err" && echo "ok: the template is named" || bad "the template is not named"
second=$(grep -o 'prompt [0-9]* tokens' "$WORK/tmpl.err" | sed -n 2p | grep -o '[0-9]*')
delta=$'<|im_end|>\n<|im_start|>user\nThe little cat<|im_end|>\n<|im_start|>assistant\n'
want=$(( $("$DIP" tokenize -m "$M" -p "$delta" --no-bos --parse-special | wc -w) + 1 ))
[ "$second" = "$want" ] && echo "ok: the second turn evaluates only its own tokens ($second)" || bad "second turn evaluated $second tokens, not $want"
err=$(printf 'hi\n' | "$DIP" chat -m "$M" --chat-template jinja 2>&1 >/dev/null) && bad "unknown template accepted" || { grep -q "unknown chat template 'jinja'" <<<"$err" && echo "ok: unknown template named" || bad "unknown template: $err"; }
# Stats after each answer unless -q.
n=$(printf 'a b\nc d\n' | "$DIP" chat -m "$M" -n 4 --temp 0 2>&1 >/dev/null | grep -c '^\[prompt')
[ "$n" -eq 2 ] && echo "ok: timings after each answer" || bad "timings after each answer: $n"

# A line too long for the context is an error, and the session goes on with the next line; an
# -n larger than the context ends the answer where the context does, saying so.
long=$(printf 'word %.0s' $(seq 60))
out=$(printf '%s\nhello\n' "$long" | "$DIP" chat -m "$M" -c 32 -n 8 --temp 0 --ignore-eos 2>"$WORK/long.err"); rc=$?
{ [ $rc -eq 0 ] && grep -q "need more than the context of 32 tokens" "$WORK/long.err" && [ "$(grep -c '^\[prompt' "$WORK/long.err")" -eq 1 ]; } \
  && echo "ok: a line too long is an error, the next line is answered" || { bad "line too long (exit $rc)"; cat "$WORK/long.err"; }
out=$(printf 'hello\n' | "$DIP" chat -m "$M" -c 64 -n 100000 --temp 0 --ignore-eos 2>"$WORK/nbig.err"); rc=$?
{ [ $rc -eq 0 ] && grep -q "reached the end of the context of 64 tokens" "$WORK/nbig.err"; } \
  && echo "ok: -n beyond the context ends the answer at the context's end" || { bad "-n beyond the context (exit $rc)"; cat "$WORK/nbig.err"; }

# Ctrl-C (SIGINT) stops the answer being generated; the session goes on to the next line.
trap "" PIPE
mkfifo "$WORK/in"
"$DIP" chat -m "$M" -n 3000 --ignore-eos --temp 0 < "$WORK/in" > "$WORK/int.out" 2> "$WORK/int.err" &
pid=$!
exec 3> "$WORK/in"
# Waits (at most 30 s) until the answer being written has grown past $1 bytes.
grows_past() { for _ in $(seq 300); do [ "$(stat -c %s "$WORK/int.out")" -gt "$1" ] && return 0; sleep 0.1; done; return 1; }
echo "first line" >&3
grows_past 100 || bad "no first answer"
kill -INT $pid
for _ in $(seq 100); do grep -q stopped "$WORK/int.err" && break; sleep 0.1; done
size=$(stat -c %s "$WORK/int.out")
echo "second line" >&3
grows_past $((size + 100)) || bad "no second answer"
kill -INT $pid
for _ in $(seq 100); do [ "$(grep -c stopped "$WORK/int.err")" -ge 2 ] && break; sleep 0.1; done
exec 3>&-
wait $pid; rc=$?
[ $rc -eq 0 ] || bad "chat after Ctrl-C exit $rc"
[ "$(grep -c 'stopped' "$WORK/int.err")" -eq 2 ] && echo "ok: Ctrl-C stops each answer" || { bad "Ctrl-C"; cat "$WORK/int.err"; }

finish
