#!/bin/sh
# Run every test of libbitnet, the way CI does:
#   1. release build with gcc (-Werror) and the whole ctest suite
#   2. the same suite under AddressSanitizer + UndefinedBehaviorSanitizer
#   3. ThreadSanitizer on what runs threads: batches, parallel sessions, generators, the server
#   4. warning-free builds with every clang found (clang-14, clang-19)
#   5. the ABI against the committed baseline (abidiff), the kernel tests cross-compiled for AArch64 and run under qemu (NEON)
#   6. a short libFuzzer run of every fuzz target (clang, docs/fuzzing.md), failing on any crash
# Every build asks for the tests (-DBITNET_BUILD_TESTS=ON: an error without cmocka) and for
# -Werror (off by default for users).  Build trees go to $BITNET_TEST_DIR (default: ./build-test).  FUZZ_SECONDS (default 60,
# shared by the fuzz targets)
# sets the fuzzing time; 0 skips it.
set -eu
src=$(cd "$(dirname "$0")/.." && pwd)
out=${BITNET_TEST_DIR:-$src/build-test}
jobs=${JOBS:-2}
fuzz_seconds=${FUZZ_SECONDS:-60}
mkdir -p "$out"
step() { printf '\n==== %s ====\n' "$*"; }

step "gcc release build + tests"
cmake -S "$src" -B "$out/release" -DCMAKE_BUILD_TYPE=Release -DBITNET_WERROR=ON -DBITNET_BUILD_TESTS=ON > "$out/release.cmake.log"
cmake --build "$out/release" -j"$jobs"
ctest --test-dir "$out/release" --output-on-failure -j"$jobs"

step "gcc AddressSanitizer + UBSan build + tests"
cmake -S "$src" -B "$out/asan" -DCMAKE_BUILD_TYPE=Debug -DBITNET_SANITIZE=ON -DBITNET_WERROR=ON \
      -DBITNET_BUILD_TESTS=ON > "$out/asan.cmake.log"
cmake --build "$out/asan" -j"$jobs"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir "$out/asan" --output-on-failure -j"$jobs"

step "gcc ThreadSanitizer build + the threaded tests"
cmake -S "$src" -B "$out/tsan" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBITNET_TSAN=ON -DBITNET_WERROR=ON \
      -DBITNET_BUILD_TESTS=ON > "$out/tsan.cmake.log"
cmake --build "$out/tsan" -j"$jobs"
TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" \
    ctest --test-dir "$out/tsan" --output-on-failure -j"$jobs" -R '^(test_batch|test_session|test_generator|test_generate|server_http_tsan)$'

for cc in clang-14 clang-19; do
    command -v "$cc" > /dev/null 2>&1 || { echo "($cc not installed: skipped)"; continue; }
    step "$cc build (warnings are errors)"
    cmake -S "$src" -B "$out/$cc" -DCMAKE_C_COMPILER="$cc" -DCMAKE_BUILD_TYPE=Release -DBITNET_WERROR=ON \
          -DBITNET_BUILD_TESTS=ON > "$out/$cc.cmake.log"
    cmake --build "$out/$cc" -j"$jobs"
done

step "ABI compared with tests/abi/libbitnet.so.0.abi"
"$src/tests/abi/check_abi.sh" "$out/abi"

step "AArch64 (NEON) kernels under qemu"
"$src/tests/neon/run_neon.sh" "$out/neon"

if [ "$fuzz_seconds" -gt 0 ] && [ -x "$src/tests/fuzz/run_fuzz.sh" ]; then
    step "fuzzing every libFuzzer target (docs/fuzzing.md) for ${fuzz_seconds}s in all"
    "$src/tests/fuzz/run_fuzz.sh" "$out/fuzz" "$fuzz_seconds"
fi
step "all tests passed"
