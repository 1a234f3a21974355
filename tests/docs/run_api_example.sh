#!/bin/sh
# run_api_example.sh EXAMPLE GEN CLI WORK -- run docs/api.md's example program on a small
# dummy model (SentencePiece and byte-level BPE vocabularies) and check that it prints
# exactly the text bitnet-cli prints for the same greedy request (bitnet-cli
# --no-display-prompt: the continuation without the echoed prompt), and that it reports
# errors with status 1 and usage errors with status 2.
set -eu
example=$1 gen=$2 cli=$3 work=$4
rm -rf "$work"; mkdir -p "$work"
fail() { echo "api_example: $*" >&2; exit 1; }

"$gen" --layers 2 --embd 256 --heads 4 --heads-kv 2 --ff 512 --vocab 1000 --seed 3 --type i2_s -q \
    -o "$work/spm.gguf"
"$gen" --layers 2 --embd 256 --heads 4 --heads-kv 2 --ff 512 --vocab 2000 --seed 4 --vocab-kind bpe \
    --arch bitnet-b1.58 --type tq2_0 -q -o "$work/bpe.gguf"
for m in spm bpe; do
    "$example" "$work/$m.gguf" "Once upon a time" 24 > "$work/$m.example.out" 2> "$work/$m.example.err" ||
        { cat "$work/$m.example.err"; fail "$m: the example failed"; }
    "$cli" -m "$work/$m.gguf" -p "Once upon a time" -n 24 --temp 0 --no-display-prompt > "$work/$m.cli.out" 2> "$work/$m.cli.err" ||
        { cat "$work/$m.cli.err"; fail "$m: bitnet-cli failed"; }
    [ -s "$work/$m.example.out" ] || fail "$m: the example printed nothing"
    cmp -s "$work/$m.example.out" "$work/$m.cli.out" ||
        fail "$m: the example printed '$(cat "$work/$m.example.out")', bitnet-cli '$(cat "$work/$m.cli.out")'"
    grep -q "generated" "$work/$m.example.err" || fail "$m: no summary on stderr"
done
rc=0; "$example" "$work/missing.gguf" "x" > /dev/null 2> "$work/missing.err" || rc=$?
[ "$rc" -eq 1 ] && grep -q "missing.gguf" "$work/missing.err" || fail "a missing model gave status $rc"
rc=0; "$example" > /dev/null 2>&1 || rc=$?
[ "$rc" -eq 2 ] || fail "no arguments gave status $rc"
echo "api_example: ok"
