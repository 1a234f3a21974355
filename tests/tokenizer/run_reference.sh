#!/bin/sh
# run_reference.sh -- compare libbitnet's tokenizers with reference tokenizers.
#
#   run_reference.sh BIN_DIR WORK_DIR
#
# BIN_DIR holds bitnet-mkvocab and bitnet-tokcompare (tests/tokenizer/CMakeLists.txt).
#  1. LLaMA-3 byte-level BPE: npm package llama3-tokenizer-js (full vocabulary, merges
#     and encoder) is installed into $BITNET_NPM_CACHE (default WORK_DIR/npm); its
#     vocabulary becomes a vocab-only GGUF without tokenizer.ggml.pre (as the official
#     2B-4T file), and the corpus must encode to the package's ids.
#  2. SentencePiece BPE: Debian python3-sentencepiece trains a small BPE model with
#     byte fallback on text made from the corpus; its pieces become a vocab-only GGUF
#     (tokenizer.ggml.model = llama) and the corpus must encode to sentencepiece's ids.
#  3. LLaMA-2 (optional, when llama-tokenizer-js installs): its vocabulary with scores
#     from the merge order; the corpus must encode to the package's ids.
# Exit 0: all equal; 1: a mismatch; 77: reference data unavailable (ctest SKIP), unless
# BITNET_REQUIRE_REFERENCE=1 turns that into a failure.
set -u
BIN=$1
WORK=$2
SRC=$(cd "$(dirname "$0")" && pwd)
CACHE=${BITNET_NPM_CACHE:-$WORK/npm}
PY=/usr/bin/python3
mkdir -p "$WORK" "$CACHE"

skip() {
    echo "run_reference: SKIP: $*" >&2
    if [ "${BITNET_REQUIRE_REFERENCE:-0}" = 1 ]; then exit 1; fi
    exit 77
}

command -v node >/dev/null 2>&1 || skip "node is not installed"
if [ ! -f "$CACHE/node_modules/llama3-tokenizer-js/package.json" ]; then
    command -v npm >/dev/null 2>&1 || skip "npm is not installed"
    npm install --prefix "$CACHE" --no-audit --no-fund --silent \
        llama3-tokenizer-js@1.2.0 llama-tokenizer-js@1 >"$WORK/npm.log" 2>&1 ||
        skip "npm install failed (see $WORK/npm.log)"
fi
$PY -c 'import sentencepiece' 2>/dev/null || skip "python3-sentencepiece is not installed"

fail=0

echo "== LLaMA-3 (llama3-tokenizer-js)"
node "$SRC/ref_llama3.mjs" "$CACHE/node_modules" "$SRC/corpus.json" "$WORK/llama3.txt" "$WORK/llama3.cases" &&
    "$BIN/bitnet-mkvocab" "$WORK/llama3.txt" "$WORK/llama3.gguf" &&
    "$BIN/bitnet-tokcompare" "$WORK/llama3.gguf" "$WORK/llama3.cases" || fail=1

echo "== SentencePiece BPE (python3-sentencepiece)"
$PY "$SRC/ref_spm.py" "$SRC/corpus.json" "$WORK/spm.txt" "$WORK/spm.cases" &&
    "$BIN/bitnet-mkvocab" "$WORK/spm.txt" "$WORK/spm.gguf" &&
    "$BIN/bitnet-tokcompare" "$WORK/spm.gguf" "$WORK/spm.cases" || fail=1

if [ -f "$CACHE/node_modules/llama-tokenizer-js/package.json" ] && [ -f "$SRC/ref_llama2.mjs" ]; then
    echo "== LLaMA-2 (llama-tokenizer-js)"
    node "$SRC/ref_llama2.mjs" "$CACHE/node_modules" "$SRC/corpus.json" "$WORK/llama2.txt" "$WORK/llama2.cases" &&
        "$BIN/bitnet-mkvocab" "$WORK/llama2.txt" "$WORK/llama2.gguf" &&
        "$BIN/bitnet-tokcompare" "$WORK/llama2.gguf" "$WORK/llama2.cases" || fail=1
fi

if [ $fail -ne 0 ]; then echo "run_reference: FAILED" >&2; exit 1; fi
echo "run_reference: all reference comparisons passed"
