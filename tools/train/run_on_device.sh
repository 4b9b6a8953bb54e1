#!/usr/bin/env bash
# The whole training job for one GPU machine (the `device` tool): trains, then packs the
# Hugging Face folder into pieces of at most 15 MiB under $OUT (reassemble with
# `cat hf.tar.part-* | tar x`). Needs build/corpus/{train,valid}.jsonl.xz (tools/corpus).
#   tools/train/run_on_device.sh [extra train.py flags]
set -euo pipefail
OUT="${OUT:?set OUT}"
python3 tools/train/train.py --corpus build/corpus --out /tmp/hf "$@" 2>&1 | tee "$OUT/train_stdout.txt"
cp /tmp/hf/train_log.json "$OUT/"
(cd /tmp && tar cf - hf) | split -b 15M - "$OUT/hf.tar.part-"
ls -la "$OUT"
