#!/usr/bin/env bash
# Installs the Debian packages the build needs and builds dip in Release (build/release/dip).
#   ./setup.sh          install packages + build
#   ./setup.sh --test   also install the test dependencies (GoogleTest, node-llama-cpp, PyTorch)
#   ./setup.sh --train  also install what the training tools need (Debian's PyTorch, OpenBLAS)
#   ./setup.sh --arm64  the aarch64 cross build instead (build/arm64, tests under qemu-aarch64)
set -euo pipefail
cd "$(dirname "$0")"
[ "${1:-}" = "--arm64" ] && exec tools/setup_arm64.sh

PKGS=(build-essential cmake pkg-config libhwy-dev libfmt-dev libcli11-dev nlohmann-json3-dev
      libicu-dev liburing-dev libxxhash-dev zlib1g-dev libcpp-httplib-dev libgtest-dev libbenchmark-dev
      python3-matplotlib)
if [ "${1:-}" = "--test" ]; then
  PKGS+=(clang-format tmux)
  command -v npm >/dev/null || PKGS+=(nodejs npm)
fi
# The training tools (tools/train): PyTorch with OpenBLAS (Debian's reference BLAS is ten times
# slower); the tests check their masks and model against the engine's.
if [ "${1:-}" = "--test" ] || [ "${1:-}" = "--train" ]; then
  PKGS+=(python3-torch python3-numpy libopenblas0-pthread)
fi

tools/apt_install.sh "${PKGS[@]}"

cmake --preset release >/dev/null
cmake --build build/release -j"$(nproc)"

if [ "${1:-}" = "--test" ]; then
  # llama.cpp as the reference: node-llama-cpp ships it prebuilt; nothing is built or downloaded
  # at run time (--ignore-scripts skips its optional post-install build step).
  (cd tests/oracle && npm install --ignore-scripts --no-audit --no-fund --loglevel=error)
  tools/pin_llama_cpu_variant.sh tests/oracle/node_modules
  cmake --preset release >/dev/null  # re-detect the oracle so ctest registers the differential test
fi
