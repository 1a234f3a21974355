#!/bin/sh
# compare.sh -- libbitnet vs upstream llama.cpp (and a numpy emulation of llama.cpp's
# numerics) on dummy `bitnet` models; see compare.py for what is computed.
#
#   tests/llamacpp/compare.sh BUILD_DIR [HARNESS_DIR] [compare.py options...]
#
# BUILD_DIR holds libbitnet.so and bin/bitnet-gen-dummy; HARNESS_DIR is an installed copy
# of the llama.cpp driver described in docs/spec.md §11.2 (default /tmp/llref).
# Exit 77 (skip) when node, the harness, python3 with numpy+cffi, or the build is missing.
# Not registered in ctest: it needs the npm-installed harness and takes minutes on the
# 24-layer model (default: 2, 6 and 24 layers of the 0.7B shape, TQ2_0 and TQ1_0).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-}
[ -n "$build" ] || { echo "usage: $0 BUILD_DIR [HARNESS_DIR] [compare.py options]" >&2; exit 2; }
shift
harness=/tmp/llref
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then harness=$1; shift; fi
py=/usr/bin/python3
[ -x "$py" ] || py=python3

command -v node >/dev/null 2>&1 || { echo "SKIP: node not found"; exit 77; }
[ -f "$harness/ref.mjs" ] && [ -d "$harness/node_modules/node-llama-cpp" ] ||
    { echo "SKIP: no installed llama.cpp harness in $harness"; exit 77; }
"$py" -c "import numpy, cffi" 2>/dev/null || { echo "SKIP: $py lacks numpy/cffi"; exit 77; }
[ -x "$build/bin/bitnet-gen-dummy" ] && [ -e "$build/libbitnet.so" ] ||
    { echo "SKIP: $build has no bin/bitnet-gen-dummy or libbitnet.so"; exit 77; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/bn-llcmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
"$py" "$here/compare.py" --harness "$harness" --bin "$build/bin" --lib "$build" --tmp "$tmp" "$@"
