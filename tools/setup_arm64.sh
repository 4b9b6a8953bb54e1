#!/usr/bin/env bash
# The aarch64 cross build: Debian's cross compiler, qemu-user to run the result, and the :arm64
# development packages the build links (the host must accept arm64 packages: multiarch), then
# `cmake --preset arm64` and the dip and dip_tests programs in build/arm64; and an arm64 kernel
# for qemu-system-aarch64 in build/arm64-system.
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

# An Arm Linux kernel to boot under qemu-system-aarch64 (tests/arm/qemu_system_uring.sh: the
# io_uring flash path, which qemu-user cannot run): Debian's arm64 kernel and busybox-static,
# unpacked into build/arm64-system (not installed: they are the guest's, not this machine's).
tools/apt_install.sh qemu-system-arm cpio
sys=build/arm64-system
if ! ls "$sys"/boot/vmlinuz-* >/dev/null 2>&1 || [ ! -x "$sys/bin/busybox" ]; then
  kernel=$(apt-cache depends linux-image-arm64:arm64 | awk '/Depends: linux-image-[0-9]/ && !found {print $2; found = 1}')
  [ -n "$kernel" ] || { echo "setup: no arm64 kernel package found (apt-cache depends linux-image-arm64:arm64)" >&2; exit 1; }
  debs=$(mktemp -d)
  chmod 777 "$debs"  # apt's download user writes there
  (cd "$debs" && apt-get download -qq "$kernel" busybox-static:arm64)
  rm -rf "$sys" && mkdir -p "$sys"
  for d in "$debs"/*.deb; do dpkg-deb -x "$d" "$debs/x"; done
  cp -r "$debs/x/boot" "$sys/boot"
  mkdir -p "$sys/bin" && cp "$debs/x/bin/busybox" "$sys/bin/busybox"
  rm -rf "$debs"
fi
