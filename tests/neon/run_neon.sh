#!/bin/sh
# run_neon.sh BUILD_DIR -- cross-compile libbitnet and the kernel tests for AArch64 and
# run them under qemu-user: the NEON kernels against the scalar reference.
#
# Needs (Debian): gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user cmake.
# Without them it prints "skipped" and exits 0.  cmocka has no arm64 cross package, so
# tests/unit/test_kernels.c is built against the small shim in tests/neon/shim/.
# BITNET_WERROR=OFF in the environment builds the library without -Werror.
set -eu
if [ $# -ne 1 ]; then
    echo "usage: $0 BUILD_DIR" >&2
    exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
bdir=$1
cc=aarch64-linux-gnu-gcc
qemu=$(command -v qemu-aarch64 || command -v qemu-aarch64-static || true)
if ! command -v "$cc" >/dev/null 2>&1 || [ -z "$qemu" ] || [ ! -d /usr/aarch64-linux-gnu ]; then
    echo "neon: skipped (needs gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user)"
    exit 0
fi
mkdir -p "$bdir"
cmake -S "$src" -B "$bdir" -DCMAKE_TOOLCHAIN_FILE="$here/aarch64-toolchain.cmake" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DBITNET_BUILD_TESTS=OFF -DBITNET_BUILD_EXAMPLES=OFF -DBITNET_BUILD_SHARED=OFF \
    -DBITNET_WERROR="${BITNET_WERROR:-ON}" >"$bdir/configure.log"
cmake --build "$bdir" --target bitnet_static -j2 >"$bdir/build.log" 2>&1 || { cat "$bdir/build.log"; exit 1; }
lib=$(find "$bdir" -name libbitnet.a | head -n 1)
"$cc" -std=c11 -O2 -D_GNU_SOURCE -DBITNET_EXPERIMENTAL -Wall -Wextra -Werror -Wno-unused-parameter -Wno-missing-prototypes \
    -I"$here/shim" -I"$src/include" -I"$src/lib" -I"$src/kernels" \
    "$src/tests/unit/test_kernels.c" "$lib" -lm -lpthread -o "$bdir/test_kernels_neon"
out=$("$qemu" -L /usr/aarch64-linux-gnu "$bdir/test_kernels_neon" 2>&1) || { echo "$out"; echo "neon: FAILED"; exit 1; }
echo "$out"
case "$out" in
*"variants: "*neon*) echo "neon: passed" ;;
*) echo "neon: FAILED (the NEON kernels were not selected under qemu)"; exit 1 ;;
esac
