#!/usr/bin/env bash
# `dip chat` on a real terminal, typed into through tmux as a person would: the "> " prompt, an
# answer per line equal to `dip generate`'s greedy text, Ctrl-C stopping an endless answer while
# the session goes on, Ctrl-D at the prompt ending it with success.
source "$(dirname "$0")/common.sh" "$1" "$2"
command -v tmux >/dev/null || { echo "tmux is not installed (setup.sh --test installs it)"; exit 1; }
M="$WORK/m.gguf"
# A long context (64 Ki tokens, given to chat by -c; without it chat takes 4096): the endless
# answers below must not reach its end before the Ctrl-C that is sent once they have begun,
# however slow or busy the machine (a 4096-token context fills in 2 s at this model's speed, and
# a later answer starts with the earlier ones in it).
"$DIP" make-test-model "$M" --n-embd 64 --n-head 2 --n-head-kv 2 --n-ff 96 --n-ctx 65536 2>/dev/null || { echo "cannot make model"; exit 1; }

# A tmux server of this test's own (socket in WORK), ended whatever happens.
export TMUX_TMPDIR="$WORK"
tm() { tmux -L chat-test "$@"; }
trap 'tm kill-server 2>/dev/null' EXIT
screen() { tm capture-pane -p -J -S - -t "$1" 2>/dev/null; }
# Waits (at most 60 s) until session $1's screen holds at least $3 lines matching $2.
wait_for() {
  for _ in $(seq 600); do
    [ "$(screen "$1" | grep -c -- "$2")" -ge "$3" ] && return 0
    sleep 0.1
  done
  # The last non-blank lines, cut to 200 columns: an endless answer is one long joined line.
  echo "  screen of $1:"; screen "$1" | grep -v '^$' | tail -n 20 | cut -c1-200 | sed 's/^/  | /'
  return 1
}
# Waits (at most 30 s) until the answer to session $1's line number $2 has begun: text after it.
answering() {
  for _ in $(seq 300); do
    [ -n "$(screen "$1" | awk -v n="$2" '/^> /{p++; next} p==n && NF {print; exit}')" ] && return 0
    sleep 0.1
  done
  return 1
}
# Starts `dip chat ARGS...` in session $1 on a 250-column terminal, run by bash as a shell runs a
# foreground command: Ctrl-C reaches dip and bash, which goes on when dip survives it (bash's
# rule; other shells' differ). Its exit status goes to WORK/$1.rc.
start_chat() {
  local name="$1"; shift
  local cmd
  printf -v cmd '%q ' "$DIP" chat -m "$M" "$@"
  cmd="$cmd; echo \$? > $(printf %q "$WORK/$name.rc"); sleep 600"
  tm new-session -d -s "$name" -x 250 -y 50 "exec bash -c $(printf %q "$cmd")"
}
# Waits (at most 30 s) for session $1's chat to end; prints its exit status.
exit_status() {
  for _ in $(seq 300); do
    [ -s "$WORK/$1.rc" ] && { cat "$WORK/$1.rc"; return; }
    sleep 0.1
  done
  echo "none (still running)"
  screen "$1" | grep -v '^$' | tail -n 6 | sed 's/^/  | /' >&2
}

# Two turns: the first answer is generate's greedy continuation, each answer is followed by its
# timings and a new prompt; Ctrl-D at the prompt ends the session with status 0.
want=$("$DIP" generate -m "$M" -p "Once upon a time" -n 8 --temp 0 --ignore-eos 2>/dev/null)
want=${want#Once upon a time}
# What a terminal shows of it: its first line, without control characters or trailing blanks.
want=$(head -n 1 <<<"$want" | tr -d '\000-\010\013-\037\177' | sed 's/[[:space:]]*$//')
start_chat turns -n 8 --temp 0 --ignore-eos
wait_for turns '^> $' 1 && echo "ok: the prompt is shown" || bad "no prompt"
tm send-keys -t turns "Once upon a time" Enter
wait_for turns '^\[prompt' 1 || bad "no timings after the first answer"
wait_for turns '^> ' 2 || bad "no prompt after the first answer"
answer=$(screen turns | grep -A1 -m1 -- '^> Once upon a time$' | sed -n 2p | sed 's/[[:space:]]*$//')
[ -n "$want" ] && [ "$answer" = "$want" ] && echo "ok: the typed line is answered as generate would" || { bad "first answer"; echo "  chat: '$answer'"; echo "  generate: '$want'"; }
tm send-keys -t turns "The little cat" Enter
wait_for turns '^\[prompt' 2 && echo "ok: the second line is answered" || bad "no second answer"
wait_for turns '^> ' 3 || bad "no prompt after the second answer"
tm send-keys -t turns C-d
rc=$(exit_status turns)
[ "$rc" = 0 ] && echo "ok: Ctrl-D ends the session (exit 0)" || bad "Ctrl-D: exit status $rc"

# Endless answers (-n 1M, more than the context: an answer runs until Ctrl-C or the context's end):
# Ctrl-C stops each, the next line is answered, then Ctrl-D.
start_chat endless -n 1000000 --temp 0 --ignore-eos -c 65536
wait_for endless '^> $' 1 || bad "no prompt (endless)"
tm send-keys -t endless "first line" Enter
wait_for endless '^> first line$' 1 && answering endless 1 || bad "no answer begun"
tm send-keys -t endless C-c
wait_for endless 'stopped\]$' 1 && echo "ok: Ctrl-C stops the answer" || bad "Ctrl-C did not stop the answer"
wait_for endless '^> ' 2 || bad "no prompt after Ctrl-C"
tm send-keys -t endless "second line" Enter
wait_for endless '^> second line$' 1 && answering endless 2 || bad "no second answer begun"
tm send-keys -t endless C-c
wait_for endless 'stopped\]$' 2 && echo "ok: the session goes on after Ctrl-C" || bad "second answer after Ctrl-C"
wait_for endless '^> ' 3 || bad "no prompt after the second Ctrl-C"
tm send-keys -t endless C-d
rc=$(exit_status endless)
[ "$rc" = 0 ] && echo "ok: Ctrl-D after Ctrl-C ends the session (exit 0)" || bad "exit status $rc after Ctrl-C and Ctrl-D"
finish
