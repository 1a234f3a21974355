#!/bin/sh
# run_fuzz.sh DIR SECONDS -- build the libFuzzer target for the GGUF reader into DIR
# (clang, ASan + UBSan, static library only) and fuzz for SECONDS, starting from the
# committed corpus.  New interesting inputs go to DIR/corpus (not to the source tree);
# a crash leaves DIR/crash-* and makes this script exit non-zero.  To keep a crasher
# as a regression test, copy it into tests/fuzz/corpus/.
set -eu
if [ $# -ne 2 ]; then
    echo "usage: $0 BUILD_DIR SECONDS" >&2
    exit 2
fi
dir=$1
secs=$2
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
# a clang with libFuzzer: $CC, else the first of clang, clang-14, clang-19 installed
cc=${CC:-}
if [ -z "$cc" ]; then
    for c in clang clang-14 clang-19; do
        if command -v "$c" >/dev/null 2>&1; then cc=$c; break; fi
    done
fi
if [ -z "$cc" ]; then
    echo "run_fuzz.sh: no clang found (install clang-14 and libclang-rt-14-dev)" >&2
    exit 1
fi

cmake -S "$root" -B "$dir" -DCMAKE_C_COMPILER="$cc" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DBITNET_FUZZ=ON -DBITNET_BUILD_TESTS=ON -DBITNET_BUILD_SHARED=OFF -DBITNET_BUILD_EXAMPLES=OFF >/dev/null
cmake --build "$dir" --target fuzz_gguf -j2

bin=$(find "$dir" -type f -name fuzz_gguf -perm -u+x | head -n 1)
mkdir -p "$dir/corpus"
cd "$dir"
# -max_len: the seeds are < 4 KiB; larger inputs only slow the search down.
# -rss_limit_mb: the reader must never allocate much more than a few times the input.
"$bin" -max_total_time="$secs" -max_len=8192 -rss_limit_mb=1024 -timeout=10 \
       -dict="$here/gguf.dict" -print_final_stats=1 corpus "$here/corpus"
