#!/bin/sh
# run_fuzz.sh DIR SECONDS [TARGET...] -- build the libFuzzer targets into DIR (clang, ASan +
# UBSan, static library only) and fuzz each for its share of SECONDS (SECONDS / number of
# targets, at least 1 s), starting from the committed corpora and the generated seed
# models.  Targets (docs/fuzzing.md): fuzz_gguf fuzz_chat fuzz_model fuzz_state fuzz_tok
# fuzz_convert (the last only when json-c is installed); by default all of them.
# New interesting inputs go to DIR/corpus-<target> (not to the source tree); a crash
# leaves DIR/crash-* and makes this script exit non-zero.  To keep a crasher as a
# regression test, copy it into the target's committed corpus (tests/fuzz/corpus*).
#
# A long run of one target, for hours, e.g.:
#   FUZZ_JOBS=1 nice -n 19 tests/fuzz/run_fuzz.sh /tmp/fz 36000 fuzz_model
set -eu
if [ $# -lt 2 ]; then
    echo "usage: $0 BUILD_DIR SECONDS [TARGET...]" >&2
    exit 2
fi
dir=$1
secs=$2
shift 2
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

targets=${*:-fuzz_gguf fuzz_chat fuzz_model fuzz_state fuzz_tok fuzz_convert}
cmake -S "$root" -B "$dir" -DCMAKE_C_COMPILER="$cc" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DBITNET_FUZZ=ON -DBITNET_BUILD_TESTS=ON -DBITNET_BUILD_SHARED=OFF -DBITNET_BUILD_EXAMPLES=OFF >/dev/null
built=""
for t in $targets; do
    if cmake --build "$dir" --target "$t" -j2 >/dev/null 2>&1; then
        built="$built $t"
    elif [ "$t" = fuzz_convert ]; then
        echo "run_fuzz.sh: fuzz_convert not built (json-c missing?): skipped" >&2
    else
        cmake --build "$dir" --target "$t" -j2 # show the error
        exit 1
    fi
done
# seeds for fuzz_model (valid and broken tiny models) and fuzz_state (state blobs)
mkdir -p "$dir/seed-models" "$dir/seed-states"
if cmake --build "$dir" --target fuzz_model -j2 >/dev/null 2>&1; then
    BN_FUZZ_SEED_MODELS="$dir/seed-models" BN_FUZZ_SEED_STATES="$dir/seed-states" \
        "$(find "$dir" -type f -name fuzz_model -perm -u+x | head -n 1)" >/dev/null
fi

n=0
for t in $built; do n=$((n + 1)); done
per=$((secs / n))
[ "$per" -ge 1 ] || per=1
cd "$dir"
for t in $built; do
    bin=$(find "$dir" -type f -name "$t" -perm -u+x | head -n 1)
    mkdir -p "corpus-$t"
    # -max_len: larger inputs only slow the search; -rss_limit_mb: the readers must never
    # allocate much more than a few times the input.
    case $t in
    fuzz_gguf)    opts="-max_len=8192 -dict=$here/gguf.dict"; seeds="$here/corpus" ;;
    fuzz_chat)    opts="-max_len=8192 -dict=$here/chat.dict"; seeds="$here/corpus_chat" ;;
    fuzz_model)   opts="-max_len=200000 -dict=$here/gguf.dict"; seeds="$dir/seed-models" ;;
    fuzz_state)   opts="-max_len=16384"; seeds="$dir/seed-states $here/corpus_state" ;;
    fuzz_tok)     opts="-max_len=4096"; seeds="$here/corpus_tok" ;;
    fuzz_convert) opts="-max_len=65536 -dict=$here/json.dict"; seeds="$here/corpus_convert" ;;
    esac
    echo "== $t for ${per}s"
    # new inputs go to the first directory, corpus-$t
    # shellcheck disable=SC2086
    "$bin" -max_total_time="$per" -rss_limit_mb=2048 -timeout=20 -print_final_stats=1 $opts "corpus-$t" $seeds \
        2>"$t.log" || { tail -n 60 "$t.log" >&2; echo "run_fuzz.sh: $t failed (see $dir/$t.log)" >&2; exit 1; }
    grep -E "^stat::number_of_executed_units|^stat::new_units_added" "$t.log" | tr '\n' ' '
    echo
done
