#!/usr/bin/env bash
# Builds the libFuzzer targets (clang-14, ASan+UBSan) and runs one for a given time, starting
# from the seed corpus in tests/fuzz/corpus/TARGET (new inputs go to build/fuzz/corpus/TARGET,
# findings to build/fuzz/artifacts/TARGET).
#   tools/fuzz.sh gguf|safetensors|tokenizer_json|flash_image|flash_probe SECONDS
set -euo pipefail
cd "$(dirname "$0")/.."
target="${1:?target: gguf, safetensors, tokenizer_json, flash_image or flash_probe}"
seconds="${2:-60}"
cmake --preset fuzz >/dev/null
cmake --build --preset fuzz -j"$(nproc)" --target "fuzz_$target"
mkdir -p "build/fuzz/corpus/$target" "build/fuzz/artifacts/$target"
# Crash, timeout and slow-unit inputs go under build/ too, never into the working tree.
"build/fuzz/tests/fuzz/fuzz_$target" -max_total_time="$seconds" -rss_limit_mb=4096 -max_len=262144 \
  -artifact_prefix="build/fuzz/artifacts/$target/" \
  "build/fuzz/corpus/$target" "tests/fuzz/corpus/$target"
