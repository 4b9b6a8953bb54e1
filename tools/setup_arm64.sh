#!/usr/bin/env bash
# The aarch64 cross build: Debian's cross compiler, qemu-user to run the result, and the :arm64
# development packages the build links (the host must accept arm64 packages: multiarch), then
# `cmake --preset arm64` and the dip and dip_tests programs in build/arm64.
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
  $SUDO dpkg --add-architecture arm64
  $SUDO apt-get update -qq
fi
tools/apt_install.sh g++-aarch64-linux-gnu qemu-user libhwy-dev:arm64 libfmt-dev:arm64 \
  libicu-dev:arm64 zlib1g-dev:arm64 liburing-dev:arm64 libxxhash-dev:arm64 \
  libcpp-httplib-dev:arm64 libgtest-dev:arm64 libcli11-dev nlohmann-json3-dev
cmake --preset arm64 >/dev/null
cmake --build build/arm64 -j"$(nproc)" --target dip dip_tests
