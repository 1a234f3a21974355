#!/bin/sh
# ABI check: compare a freshly built libbitnet.so (with debug info) against the
# committed baseline tests/abi/libbitnet.so.0.abi using libabigail's abidiff.
#   check_abi.sh BUILD_DIR            build (RelWithDebInfo, shared only) and compare
#   check_abi.sh BUILD_DIR --update   rewrite the baseline (only when a release
#                                     deliberately changes the ABI; see docs/abi.md)
# Additions (new functions, fields appended to *_params structs) pass; removed or
# changed symbols, enum renumbering and struct layout changes fail.  Declarations in
# the experimental section of bitnet.h are ignored (they may change; docs/abi.md).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
out=$1
baseline="$here/libbitnet.so.0.abi"
if ! command -v abidiff > /dev/null 2>&1; then
    echo "abi: skipped (apt-get install abigail-tools)"
    exit 0
fi
cmake -S "$src" -B "$out" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBITNET_BUILD_TESTS=OFF -DBITNET_BUILD_EXAMPLES=OFF \
      -DBITNET_BUILD_STATIC=OFF > "$out.cmake.log"
cmake --build "$out" --target bitnet -j"${JOBS:-2}" > "$out.build.log" 2>&1 || { cat "$out.build.log"; exit 1; }
lib="$out/libbitnet.so"
# The experimental section of bitnet.h (after "#if defined(BITNET_EXPERIMENTAL)") is not
# covered by the promise: its functions and types are suppressed on both sides.
supp="$out.abignore"
cp "$here/bitnet.abignore" "$supp"
sed -n '/^#if defined(BITNET_EXPERIMENTAL)/,$p' "$src/include/bitnet.h" > "$out.experimental.h"
for f in $(grep -o 'bitnet_[a-z0-9_]*(' "$out.experimental.h" | tr -d '(' | sort -u); do
    printf '[suppress_function]\n  name = %s\n  drop = yes\n' "$f" >> "$supp"
done
for t in $(sed -n 's/^typedef [a-z]* \(bitnet_[a-z0-9_]*\).*/\1/p' "$out.experimental.h" | sort -u); do
    printf '[suppress_type]\n  name = %s\n  drop = yes\n' "$t" >> "$supp"
done
if [ "${2:-}" = "--update" ]; then
    abidw --headers-dir "$src/include" --no-corpus-path --suppressions "$supp" --out-file "$baseline" "$lib"
    echo "abi: baseline written to $baseline"
    exit 0
fi
set +e
abidiff --no-added-syms --suppressions "$supp" --hd2 "$src/include" "$baseline" "$lib" > "$out.abidiff.txt"
rc=$?
set -e
if [ $rc -ne 0 ]; then
    cat "$out.abidiff.txt"
    echo "abi: FAILED (abidiff exit $rc): the ABI of libbitnet.so.0 changed incompatibly"
    exit 1
fi
echo "abi: libbitnet.so.0 is compatible with the baseline"
