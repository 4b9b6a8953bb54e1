#!/usr/bin/env bash
# Builds llama.cpp for this CPU (GGML_NATIVE: -march=native) from the source node-llama-cpp
# ships in its package (a git bundle: nothing is downloaded) into build/llama.cpp, for the
# benchmarks' native peer (llama-bench). node-llama-cpp's prebuilt library is one build per CPU
# family; a native build is what a llama.cpp user on this machine would run, and faster on
# quantized types. Takes a few minutes on 2 cores; run again to rebuild.
#   tools/build_native_llama.sh        ->  build/llama.cpp/build/bin/llama-bench
set -euo pipefail
cd "$(dirname "$0")/.."
bundle=tests/oracle/node_modules/node-llama-cpp/llama/gitRelease.bundle
[ -f "$bundle" ] || { echo "build_native_llama.sh: $bundle is missing (run ./setup.sh --test first)" >&2; exit 1; }
src=build/llama.cpp
if [ ! -d "$src/.git" ]; then
  rm -rf "$src"
  git clone -q -c advice.detachedHead=false "$bundle" "$src"
fi
cmake -S "$src" -B "$src/build" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DLLAMA_CURL=OFF \
  -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF >/dev/null
cmake --build "$src/build" -j"$(nproc)" --target llama-bench
echo "native llama.cpp: $src/build/bin/llama-bench ($(git -C "$src" log -1 --format=%h))"
