#!/usr/bin/env bash
# Recovery training runs side by side on one GPU machine (the `device` tool): each line of
# RUNS is "name: recover.py flags". Needs the tokenized data (recover.py --data) carried along.
#   RUNS=$'a: --method dip --density 0.25\nb: --method dense --loss ce' tools/train/recover_on_device.sh DATA [common flags]
set -euo pipefail
OUT="${OUT:?set OUT}"
data="$1"; shift
while IFS= read -r line; do
  [ -z "$line" ] && continue
  name="${line%%:*}"; flags="${line#*:}"
  # shellcheck disable=SC2086
  python3 tools/train/recover.py --data "$data" --out "$OUT/$name" $flags "$@" > "$OUT/$name.log" 2>&1 &
done <<< "${RUNS:?set RUNS}"
wait
tail -n 3 "$OUT"/*.log
