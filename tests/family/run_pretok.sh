#!/bin/sh
# run_pretok.sh -- libbitnet's pre-tokenizers (llama-bpe, qwen2, gpt2) against the
# regexes run by node's regex engine (pretok_ref.mjs) on tests/tokenizer/corpus.json.
#   run_pretok.sh DRIVER CORPUS WORK_DIR
# Exit 0: every piece boundary equal; 1: a difference; 77: node missing (ctest SKIP)
# unless BITNET_REQUIRE_REFERENCE=1.
set -u
DRV=$1 CORPUS=$2 WORK=$3
SRC=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$WORK"
if ! command -v node >/dev/null 2>&1; then
    echo "run_pretok: SKIP: node is not installed" >&2
    [ "${BITNET_REQUIRE_REFERENCE:-0}" = 1 ] && exit 1
    exit 77
fi
fail=0
for pre in llama-bpe qwen2 gpt2; do
    node "$SRC/pretok_ref.mjs" "$pre" "$CORPUS" "$WORK/$pre.hex" "$WORK/$pre.ref" || exit 1
    "$DRV" "$pre" "$WORK/$pre.hex" > "$WORK/$pre.got" || exit 1
    n=$(wc -l < "$WORK/$pre.ref")
    if cmp -s "$WORK/$pre.ref" "$WORK/$pre.got"; then
        echo "$pre: $n texts, every piece boundary as the regex cuts it"
    else
        echo "$pre: DIFFERENT from the regex:"; diff "$WORK/$pre.ref" "$WORK/$pre.got" | head -10; fail=1
    fi
done
exit $fail
