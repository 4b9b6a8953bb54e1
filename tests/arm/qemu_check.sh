#!/usr/bin/env bash
# The aarch64 build (cmake --preset arm64) under qemu-user, both Arm kernel variants:
#   - every unit and kernel test on an emulated CPU with SVE and the dot-product instructions
#     ("max"), and the kernel, model, column-sparse and flash MLP tests on a Cortex-A53 (Armv8.0:
#     plain NEON, no sdot, no SVE);
#   - greedy text of the default model (F16, Q8_0, and Q4_K_M converted by the x86 build: the
#     K-quant kernels) equal to the x86 build's on both CPUs,
#     a flash run (pread: qemu-user has no io_uring) of an image the x86 build wrote equal to
#     the DRAM run, and dense perplexity within 0.1% (F16) or 0.5% (Q8_0) of the x86 build's:
#     a Q8_0 model quantizes every activation row, which turns last-bit differences between the
#     two builds' float sums (AVX2 or AVX-512 against NEON/SVE) into whole rounding steps.
#   tests/arm/qemu_check.sh ARM_BUILD_DIR X86_DIP MODELS_DIR WORK_DIR
set -euo pipefail
arm="$1"; x86="$2"; models="$3"; work="$4"
rm -rf "$work"; mkdir -p "$work"
fail() { echo "FAIL: $*"; exit 1; }
step() { echo "== $*"; }

step "unit and kernel tests, -cpu max (SVE, dotprod)"
qemu-aarch64 -cpu max "$arm/tests/dip_tests" --gtest_brief=1 > "$work/max.log" 2>&1 || { tail -40 "$work/max.log"; fail "dip_tests on -cpu max"; }
tail -3 "$work/max.log"
for t in Kernels.EveryArmQuantKernelMatchesScalarReference QuantK.ArmKernelsAreBitIdenticalToScalarOnRandomBlocks; do
  grep -q "$t" "$work/max.log" && fail "the Arm kernel test $t was skipped or failed"
done
step "kernel, model, column-sparse and flash MLP tests, -cpu cortex-a53 (NEON without dotprod)"
qemu-aarch64 -cpu cortex-a53 "$arm/tests/dip_tests" --gtest_brief=1 --gtest_filter='Kernels.*:QuantK.*:Model.*:ColSparse*:SparseMlp*:FlashMlp*' > "$work/a53.log" 2>&1 || { tail -40 "$work/a53.log"; fail "dip_tests on cortex-a53"; }
tail -3 "$work/a53.log"

prompt="The history of the city"
"$x86" convert "$models/default.gguf" "$work/default-q4_k_m.gguf" --type q4_k_m > /dev/null 2>&1 || fail "convert --type q4_k_m"
for model in default.gguf default-q8_0.gguf default-q4_k_m.gguf; do
  dir="$models"; [ "$model" = default-q4_k_m.gguf ] && dir="$work"
  "$x86" generate -m "$dir/$model" -p "$prompt" -n 24 --temp 0 -t 2 > "$work/x86-$model.txt" 2>/dev/null
  for cpu in max cortex-a53; do
    step "greedy text, $model, -cpu $cpu"
    qemu-aarch64 -cpu "$cpu" "$arm/dip" generate -m "$dir/$model" -p "$prompt" -n 24 --temp 0 -t 2 \
      > "$work/arm.txt" 2>"$work/arm.err" || { cat "$work/arm.err"; fail "generate on $cpu"; }
    cmp -s "$work/x86-$model.txt" "$work/arm.txt" || { diff "$work/x86-$model.txt" "$work/arm.txt"; fail "$model on $cpu: text differs from x86"; }
    cat "$work/arm.txt"; echo
  done
done

step "flash run (MLP on flash, 50% cache, pread) equal to the DRAM run"
# The image written by the x86 build: the format does not depend on the machine.
"$x86" convert "$models/default-q8_0.gguf" "$work/default.flash" --flash > /dev/null 2>&1 || fail "convert --flash"
qemu-aarch64 -cpu max "$arm/dip" generate -m "$models/default-q8_0.gguf" -p "$prompt" -n 24 --temp 0 -t 2 \
  --flash "$work/default.flash" --mlp-cache 50% > "$work/flash.txt" 2>"$work/flash.err" || { cat "$work/flash.err"; fail "flash run"; }
cmp -s "$work/x86-default-q8_0.gguf.txt" "$work/flash.txt" || { diff "$work/x86-default-q8_0.gguf.txt" "$work/flash.txt"; fail "flash text differs"; }
grep -q "pread" "$work/flash.err" || fail "the flash run did not say it reads with pread"

# On -cpu max,sve=off (NEON and sdot): qemu emulates SVE instruction by instruction, and the
# two runs took about 10 minutes on -cpu max (a 2-core machine, partly busy) against 80 s; the
# SVE target is covered by the unit and kernel tests and the greedy text above.
step "perplexity, 2 windows of 128 tokens, -cpu max,sve=off"
for model in default.gguf:1e-3 default-q8_0.gguf:5e-3; do
  tolerance=${model#*:}; model=${model%%:*}
  ref=$("$x86" perplexity -m "$models/$model" -f "$models/heldout-test.txt" -c 128 --chunks 2 --json 2>/dev/null | tail -1)
  got=$(qemu-aarch64 -cpu max,sve=off "$arm/dip" perplexity -m "$models/$model" -f "$models/heldout-test.txt" -c 128 --chunks 2 --json 2>/dev/null | tail -1)
  python3 - "$ref" "$got" "$model" "$tolerance" <<'PY' || fail "perplexity of $model"
import json, sys
r, g = json.loads(sys.argv[1])["ppl"], json.loads(sys.argv[2])["ppl"]
tolerance = float(sys.argv[4])
print(f"{sys.argv[3]}: x86 {r:.4f}, aarch64 {g:.4f} ({(g / r - 1) * 100:+.4f}%, allowed {tolerance * 100:g}%)")
sys.exit(0 if abs(g / r - 1) <= tolerance else 1)
PY
done
echo "aarch64 under qemu: all checks passed"
