#!/usr/bin/env bash
# The aarch64 build's io_uring flash path on an Arm Linux kernel. qemu-user passes system calls
# to the host and has no io_uring, so this boots Debian's arm64 kernel in qemu-system-aarch64
# (TCG, no disk: everything in an initramfs) and runs, inside it, the greedy text of the default
# Q8_0 model with its MLP read from a flash image through io_uring, and the same run in DRAM;
# the two texts must be equal and the flash run must say it read through io_uring.
#   tests/arm/qemu_system_uring.sh ARM_BUILD_DIR X86_DIP MODELS_DIR WORK_DIR
# Needs what tools/setup_arm64.sh installs (qemu-system-arm, cpio, the arm64 kernel and
# busybox-static unpacked in build/arm64-system).
set -euo pipefail
arm="$1"; x86="$2"; models="$3"; work="$4"
sysdir="$(dirname "$0")/../../build/arm64-system"
kernel=$(ls "$sysdir"/boot/vmlinuz-* 2>/dev/null | head -1)
[ -n "$kernel" ] && [ -x "$sysdir/bin/busybox" ] || { echo "FAIL: no arm64 kernel or busybox in $sysdir (./setup.sh --arm64)"; exit 1; }
rm -rf "$work"; mkdir -p "$work/root/bin" "$work/root/m"
work="$(cd "$work" && pwd)"  # absolute: the initramfs is packed from inside it
root="$work/root"

# The program and the libraries it loads (the arm64 loader lists them under qemu-user).
cp "$arm/dip" "$root/dip"
qemu-aarch64 -E LD_TRACE_LOADED_OBJECTS=1 "$arm/dip" | awk '{for (i = 1; i <= NF; i++) if ($i ~ /^\//) print $i}' |
  while read -r lib; do mkdir -p "$root$(dirname "$lib")"; cp -L "$lib" "$root$lib"; done
cp "$sysdir/bin/busybox" "$root/bin/busybox"
for tool in sh mount poweroff cat grep echo; do ln -s busybox "$root/bin/$tool"; done
cp "$models/default-q8_0.gguf" "$root/m/"
"$x86" convert "$models/default-q8_0.gguf" "$root/m/default.flash" --flash > /dev/null 2>&1 || { echo "FAIL: convert --flash"; exit 1; }

cat > "$root/init" <<'EOF'
#!/bin/sh
mount -t proc proc /proc 2>/dev/null || { mkdir -p /proc && mount -t proc proc /proc; }
mkdir -p /tmp && mount -t tmpfs tmpfs /tmp
p="The history of the city"
/dip generate -m /m/default-q8_0.gguf -p "$p" -n 16 --temp 0 -t 2 > /tmp/dram.txt 2>/tmp/dram.err
echo "DRAM-RC $?"
# The initramfs (tmpfs) has no O_DIRECT on this kernel: buffered reads, still through io_uring.
/dip generate -m /m/default-q8_0.gguf -p "$p" -n 16 --temp 0 -t 2 --flash /m/default.flash \
  --mlp-cache 50% --flash-io uring --flash-buffered > /tmp/flash.txt 2>/tmp/flash.err
echo "FLASH-RC $?"
echo "DRAM-TEXT $(cat /tmp/dram.txt)"
echo "FLASH-TEXT $(cat /tmp/flash.txt)"
grep -i "uring" /tmp/flash.err | sed 's/^/FLASH-IO /'
cat /tmp/dram.err /tmp/flash.err | grep -i -E "error|fail" | sed 's/^/ERR /'
echo "GUEST-DONE"
poweroff -f
EOF
chmod +x "$root/init"
(cd "$root" && find . | cpio -o -H newc --quiet > "$work/initrd.cpio")

echo "== booting $(basename "$kernel") in qemu-system-aarch64 (-cpu max, 2 CPUs)"
timeout 900 qemu-system-aarch64 -M virt -cpu max -smp 2 -m 2048 -nographic -no-reboot \
  -kernel "$kernel" -initrd "$work/initrd.cpio" -append "console=ttyAMA0 rdinit=/init quiet panic=-1" \
  > "$work/console.log" 2>&1 || true
tr -d '\r' < "$work/console.log" > "$work/console.txt"
fail() { echo "FAIL: $*"; tail -30 "$work/console.txt"; exit 1; }
grep -q "^GUEST-DONE" "$work/console.txt" || fail "the guest did not finish"
grep -q "^DRAM-RC 0" "$work/console.txt" || fail "the DRAM run failed"
grep -q "^FLASH-RC 0" "$work/console.txt" || fail "the io_uring flash run failed"
grep -q "^FLASH-IO .*io_uring" "$work/console.txt" || fail "the flash run did not say it reads through io_uring"
dram=$(sed -n 's/^DRAM-TEXT //p' "$work/console.txt")
flash=$(sed -n 's/^FLASH-TEXT //p' "$work/console.txt")
[ -n "$dram" ] && [ "$dram" = "$flash" ] || fail "texts differ: DRAM '$dram', flash '$flash'"
echo "$flash"
grep "^FLASH-IO" "$work/console.txt" | head -2
echo "aarch64 kernel: io_uring flash run equals the DRAM run"
