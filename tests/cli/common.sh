# Sourced by the CLI tests: `common.sh DIP WORK` sets DIP and a fresh WORK folder, counts failures
# (bad MESSAGE) and ends with finish.
set -u
DIP="$1"
WORK="$2"
rm -rf "$WORK" && mkdir -p "$WORK"
fails=0
bad() { echo "FAIL: $*"; fails=$((fails+1)); }
finish() { echo "$fails failure(s)"; [ $fails -eq 0 ]; }
