# Sourced by the CLI tests: `common.sh DIP WORK` sets DIP and a fresh WORK folder, counts failures
# (bad MESSAGE) and ends with finish.
set -u
DIP="$1"
WORK="$2"
rm -rf "$WORK" && mkdir -p "$WORK"
fails=0
bad() { echo "FAIL: $*"; fails=$((fails+1)); }
finish() { echo "$fails failure(s)"; [ $fails -eq 0 ]; }
# The command must fail within 60 s, not by a signal, with one line of error containing NEEDLE.
expect_fail() {  # expect_fail NEEDLE CMD...
  local needle="$1"; shift
  local err rc
  err=$(timeout 60 "$@" 2>&1 >/dev/null); rc=$?
  if [ $rc -eq 0 ] || [ $rc -ge 124 ]; then bad "(exit $rc) $*"; return; fi
  if ! grep -q -- "$needle" <<<"$err"; then bad "(message lacks '$needle') $*"; echo "  got: $err"; return; fi
  [ "$(wc -l <<<"$err")" -eq 1 ] || { bad "(more than one line) $*"; echo "  got: $err"; return; }
  echo "ok: $needle"
}
