#!/usr/bin/env bash
# Sets up (packages, build, node-llama-cpp) and runs every test: the format check, unit tests,
# CLI bad-input cases and the differential tests against llama.cpp, first on the Release build, then the
# whole suite again on an AddressSanitizer + UndefinedBehaviorSanitizer build (its
# differential tests on F32 and Q4_0 models only, to bound the time), then the aarch64 build
# under qemu.
set -euo pipefail
cd "$(dirname "$0")"
# Each stage's start time on its own line: a run's log says where its minutes went.
start=$SECONDS
stage() { printf '== run_tests.sh: %s (at %d:%02d)\n' "$1" $(((SECONDS - start) / 60)) $(((SECONDS - start) % 60)); }
stage "setup and Release build"
./setup.sh --test
stage "format check"
# Every C++ file in the project's format (.clang-format); a file that is not fails the run.
find src tests bench tools examples -name node_modules -prune -o \( -name '*.cpp' -o -name '*.h' -o -name '*.inc' \) -print0 | xargs -0 clang-format --dry-run --Werror
stage "Release tests"
ctest --preset release -j2 --timeout 3000
stage "AddressSanitizer build"
cmake --preset asan >/dev/null
# The programs the tests run (the benchmarks only run in the Release build).
cmake --build --preset asan -j"$(nproc)" --target dip dip_tests mask_replay sparse_bench dip_embed_example
stage "AddressSanitizer tests"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --preset asan -j2 --timeout 3000
# The aarch64 cross build under qemu-user: unit and kernel tests with and without the
# dot-product instructions, greedy text and perplexity against the x86 build.
stage "aarch64 cross build"
./setup.sh --arm64
stage "aarch64 under qemu-user"
tests/arm/qemu_check.sh build/arm64 build/release/dip models build/arm64/qemu_check_work
# The io_uring flash path on Debian's arm64 kernel under qemu-system-aarch64 (about 30 s).
stage "io_uring under qemu-system-aarch64"
tests/arm/qemu_system_uring.sh build/arm64 build/release/dip models build/arm64/uring_check_work
stage "all passed"
