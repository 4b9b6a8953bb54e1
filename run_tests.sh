#!/usr/bin/env bash
# Sets up (packages, build, node-llama-cpp) and runs every test: unit tests, CLI bad-input
# cases, and the differential tests against llama.cpp.
set -euo pipefail
cd "$(dirname "$0")"
./setup.sh --test
ctest --preset release -j2 --timeout 3000
