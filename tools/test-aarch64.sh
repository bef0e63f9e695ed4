#!/usr/bin/env bash
# Builds the elementwise C kernels (Sources/CKernels) and their check (tools/kernels-check) for
# aarch64 with the toolchain's clang and runs them under qemu-aarch64, next to the native build:
# every path (NEON and generic on aarch64; AVX-512, AVX2 and generic on x86-64, as the CPU allows)
# must print the same hash of the same outputs. Installs its Debian packages when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh libc6-dev-arm64-cross libgcc-12-dev-arm64-cross qemu-user
cc=${CC:-clang}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
sources=(Sources/CKernels/lw_kernels.c tools/kernels-check/kernels_check.c)
"$cc" -O2 -I Sources/CKernels/include "${sources[@]}" -o "$out/native" -lpthread -lm
"$cc" --target=aarch64-linux-gnu -fuse-ld=lld -static -O2 \
  -I Sources/CKernels/include "${sources[@]}" -o "$out/aarch64" -lpthread -lm
echo "== native ($(uname -m))"
"$out/native" | tee "$out/native.txt"
echo "== aarch64 (qemu-aarch64)"
qemu-aarch64 "$out/aarch64" | tee "$out/aarch64.txt"
hashes=$(grep -hE '^[a-z0-9]+ +[0-9a-f]{16}$' "$out/native.txt" "$out/aarch64.txt" | awk '{print $2}' | sort -u)
if [ "$(echo "$hashes" | wc -l)" -ne 1 ]; then
  echo "FAIL: the kernels differ between paths or architectures"
  exit 1
fi
grep -q '^neon ' "$out/aarch64.txt" || { echo "FAIL: the NEON path did not run"; exit 1; }
echo "ok: every path on both architectures gives hash $hashes"
