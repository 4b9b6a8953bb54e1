#!/usr/bin/env bash
# Keeps llama.cpp (node-llama-cpp's prebuilt CPU backends) off its 'sapphirerapids' variant, so
# the reference computes the same way on every AVX-512 host.
#
# ggml loads the best-scoring libggml-cpu-<variant>.so in the binaries folder. On a host with
# AMX and AVX512-FP16 that is 'sapphirerapids', which multiplies F16 weights in half precision
# (_mm512_fmadd_ph) and runs Q8_0/Q4_0 through AMX tiles: other roundings and sums than every
# other x86 variant (measured on a Xeon with AMX: an F16 model 3.5e-3 apart in the logits at
# position 0, where the 'zen4' variant is bit-identical to dip). Without it ggml takes 'zen4'
# (AVX-512 VNNI/BF16/VBMI) on such hosts, as on AMD Zen 4 and other AVX-512 Xeons. The file is
# moved to a subfolder (ggml does not look into subfolders), not deleted.
#   usage: tools/pin_llama_cpu_variant.sh NODE_MODULES_DIR
set -euo pipefail
bins="${1:?usage: $0 NODE_MODULES_DIR}/@node-llama-cpp/linux-x64/bins/linux-x64"
[ -d "$bins" ] || { echo "$0: $bins: no node-llama-cpp binaries there" >&2; exit 1; }
if [ -f "$bins/libggml-cpu-sapphirerapids.so" ]; then
  mkdir -p "$bins/not-loaded"
  mv "$bins/libggml-cpu-sapphirerapids.so" "$bins/not-loaded/"
fi
