#!/bin/sh
# cli_flags.sh BIN HEADER MODEL MODEL_BPE WORK -- the programs accept llama.cpp's spellings.
#
# BIN holds the programs, HEADER is include/bitnet.h (the version they must print),
# MODEL / MODEL_BPE are the smoke tests' tiny SentencePiece / byte-level BPE models.
# Every check compares two runs of our programs that must agree because they ask for
# the same thing in different spellings, or checks a property the option promises (the
# prompt echo is the prompt, an escape becomes its byte, a reverse prompt ends the
# output, ...).  Each check names itself when it fails.
set -u
bin=$1 header=$2 model=$3 model_bpe=$4 work=$5
cli=$bin/bitnet-cli
rm -rf "$work"
mkdir -p "$work"
failures=0
fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}
# run NAME CMD... : stdout -> $work/NAME.out, stderr -> $work/NAME.err, status -> $rc
run() {
    name=$1
    shift
    "$@" > "$work/$name.out" 2> "$work/$name.err" < /dev/null
    rc=$?
}
# run_in NAME INPUT CMD... : the same with stdin from the file INPUT
run_in() {
    name=$1 input=$2
    shift 2
    "$@" > "$work/$name.out" 2> "$work/$name.err" < "$input"
    rc=$?
}
out() { cat "$work/$1.out"; }
expect_ok() { [ "$rc" -eq 0 ] || fail "$1: exit $rc: $(head -c 400 "$work/$1.err")"; }
expect_usage() { # NAME PATTERN: exit 2 and "<prog>: error: ... PATTERN" on stderr
    [ "$rc" -eq 2 ] || fail "$1: exit $rc, expected 2 (bad arguments)"
    grep -q "^bitnet-[a-z-]*: error: .*$2" "$work/$1.err" || fail "$1: no '$2' error: $(head -c 400 "$work/$1.err")"
}
same() { # A B: identical stdout
    cmp -s "$work/$1.out" "$work/$2.out" || fail "$1 and $2 differ: [$(out "$1")] vs [$(out "$2")]"
}

P="Once upon a time"

# ---- the same request, spelled differently ----------------------------------------------
run base "$cli" -m "$model" -p "$P" -n 8 --temp 0 -t 1
expect_ok base
[ -s "$work/base.out" ] || fail "base: no output"
for spelling in "-n 8" "--n-predict 8" "--predict 8" "--n-predict=8" "--n_predict 8" "-n8" "-n=8"; do
    # shellcheck disable=SC2086
    run n "$cli" -m "$model" -p "$P" $spelling --temp 0 -t 1
    expect_ok "n ($spelling)"
    same base n
done
for spelling in "-t 1" "-t1" "--threads 1" "--threads=1" "-t=1"; do
    # shellcheck disable=SC2086
    run t "$cli" -m "$model" -p "$P" -n 8 --temp 0 $spelling
    expect_ok "t ($spelling)"
    same base t
done
for spelling in "--temp 0" "-temp 0" "--temp=0" "-temp0" "--temp=0.0"; do
    # shellcheck disable=SC2086
    run temp "$cli" -m "$model" -p "$P" -n 8 -t 1 $spelling
    expect_ok "temp ($spelling)"
    same base temp
done
run long "$cli" --model="$model" --prompt="$P" --n-predict=8 --temp=0 --threads=1
expect_ok long
same base long

# seeds: -s is the seed in every program, in every spelling
run s1 "$cli" -m "$model" -p "$P" -n 16 --temp 1.5 -s 7
expect_ok s1
for spelling in "--seed 7" "-s7" "--seed=7"; do
    # shellcheck disable=SC2086
    run s2 "$cli" -m "$model" -p "$P" -n 16 --temp 1.5 $spelling
    expect_ok "seed ($spelling)"
    same s1 s2
done
run srand "$cli" -m "$model" -p "$P" -n 4 --temp 1.5 -s -1
expect_ok srand
grep -q "seed [0-9]" "$work/srand.err" || fail "-s -1: no random seed reported"

# ---- llama.cpp's GPU flags: accepted, one note, no effect --------------------------------
run gpu "$cli" -m "$model" -p "$P" -n 8 --temp 0 -t 1 -ngl 0 -b 1
expect_ok gpu
same base gpu
[ "$(grep -c "note: ignoring" "$work/gpu.err")" -eq 1 ] || fail "-ngl: expected one note: $(cat "$work/gpu.err")"
grep -q "note: ignoring -ngl 0" "$work/gpu.err" || fail "-ngl: the note does not name it"
run gpu2 "$cli" -m "$model" -p "$P" -n 8 --temp 0 -t 1 --n-gpu-layers 99 -fa -sm none -mg 0 -ts 3,1 -nkvo \
    --numa distribute -tb 2 -ub 4 --no-warmup
expect_ok gpu2
same base gpu2
[ "$(grep -c "note: ignoring" "$work/gpu2.err")" -eq 1 ] || fail "gpu2: expected exactly one note"
for o in "--n-gpu-layers 99" "-fa" "-sm none" "-tb 2"; do
    grep -q -- "$o" "$work/gpu2.err" || fail "gpu2: the note does not list '$o'"
done
run kv "$cli" -m "$model" -p "$P" -n 8 --temp 0 -t 1 -ctk f32 -ctv f32 --no-mmap
expect_ok kv
run nommap "$cli" -m "$model" -p "$P" -n 8 --temp 0 -t 1 --no-mmap --mlock
expect_ok nommap
same base nommap
# --screen exact: the int8 copy ranks the vocabulary, greedy picks the F16 layer's token
run screen "$cli" -m "$model" -p "$P" -n 8 --temp 0 -t 1 --screen exact
expect_ok screen
same base screen
grep -q "screened [1-9][0-9]* steps" "$work/screen.err" || fail "--screen exact: no step was screened: $(tail -c 300 "$work/screen.err")"
run screen_off "$cli" -m "$model" -p "$P" -n 8 --temp 0 -t 1 --screen off
same base screen_off
run screen_bad "$cli" -m "$model" -p "$P" -n 1 --screen fast
expect_usage screen_bad "--screen"
"$bin/bitnet-gen-dummy" -q --layers 1 --embd 256 --heads 4 --ff 256 --vocab 300 --embd-type q8_0 -o "$work/q8out.gguf" \
    > "$work/gen_q8.log" 2>&1 || fail "bitnet-gen-dummy --embd-type q8_0: $(tail -c 300 "$work/gen_q8.log")"
run screen_q8 "$cli" -m "$work/q8out.gguf" -p "$P" -n 1 --screen exact
[ "$rc" -eq 1 ] || fail "--screen on a Q8_0 output layer: exit $rc, expected 1"
grep -q "^bitnet-cli: error: --screen: .*F16" "$work/screen_q8.err" || fail "--screen on Q8_0: no clear error: $(head -c 300 "$work/screen_q8.err")"
run screen_q8_chat "$bin/bitnet-chat" -m "$work/q8out.gguf" --screen exact
[ "$rc" -eq 1 ] || fail "bitnet-chat --screen on a Q8_0 output layer: exit $rc, expected 1"
grep -q "^bitnet-chat: error: --screen: .*F16" "$work/screen_q8_chat.err" || fail "bitnet-chat --screen on Q8_0: $(head -c 300 "$work/screen_q8_chat.err")"

# ---- the prompt: echo, files, escapes ----------------------------------------------------
run echo0 "$cli" -m "$model" -p "Hello world, the people" -n 0
expect_ok echo0
[ "$(out echo0)" = "Hello world, the people" ] || fail "echo: stdout is [$(out echo0)], not the prompt"
run noecho "$cli" -m "$model" -p "$P" -n 8 --temp 0 -t 1 --no-display-prompt
expect_ok noecho
[ "$P$(out noecho)" = "$(out base)" ] || fail "echo + continuation: [$(out base)] is not '$P' + [$(out noecho)]"
printf '%s\n' "$P" > "$work/prompt.txt"
run file "$cli" -m "$model" -f "$work/prompt.txt" -n 8 --temp 0 -t 1
expect_ok file
same base file # the final newline of -f is dropped, as llama-cli does
run file2 "$cli" -m "$model" --file="$work/prompt.txt" -n 8 --temp 0 -t 1
same base file2
run bfile "$cli" -m "$model" -bf "$work/prompt.txt" -n 0
[ "$(od -An -c "$work/bfile.out" | tr -d ' ')" = "$(od -An -c "$work/prompt.txt" | tr -d ' ')" ] ||
    fail "-bf: the prompt is not the file's exact bytes"
run esc "$cli" -m "$model" -p 'a\nb\tc' -e -n 0
expect_ok esc
[ "$(od -An -c "$work/esc.out" | tr -d ' ')" = 'a\nb\tc' ] || fail "-e: [$(od -An -c "$work/esc.out")]"
run esc2 "$cli" -m "$model" -p 'a\nb\tc' -n 0
same esc esc2 # escapes are processed by default, as in llama-cli
run noesc "$cli" -m "$model" -p 'a\nb' --no-escape -n 0
[ "$(out noesc)" = 'a\nb' ] || fail "--no-escape: [$(out noesc)]"
run hex "$cli" -m "$model" -p 'x\x41y' -n 0
[ "$(out hex)" = 'xAy' ] || fail "\\x41: [$(out hex)]"
run color "$cli" -m "$model" -p "$P" -n 0 --color
grep -q "$(printf '\033')\\[" "$work/color.out" || fail "--color: no colour escape in the echo"
run color_off "$cli" -m "$model" -p "$P" -n 0 --color off
[ "$(out color_off)" = "$P" ] || fail "--color off: [$(out color_off)]"
grep -q "$(printf '\033')" "$work/color_off.out" && fail "--color off: colour escapes"
run sp "$cli" -m "$model_bpe" -p "$P" -n 0 -sp
expect_ok sp
case "$(out sp)" in "<|begin_of_text|>$P") ;; *) fail "-sp: the echo does not show BOS: [$(out sp)]" ;; esac
run vp "$cli" -m "$model" -p "$P" -n 0 --verbose-prompt
n_tok=$(sed -n 's/.*prompt: \([0-9]*\) tokens.*/\1/p' "$work/vp.err" | head -1)
[ "$(grep -c "^ *[0-9]* -> '" "$work/vp.err")" = "$n_tok" ] || fail "--verbose-prompt: not one line per token"
run nobos "$cli" -m "$model" -p "$P" -n 0 --no-bos --verbose-prompt
[ "$(grep -c "^ *[0-9]* -> '" "$work/nobos.err")" -eq $((n_tok - 1)) ] || fail "--no-bos: BOS still there"
run noperf "$cli" -m "$model" -p "$P" -n 4 --no-perf
grep -q "tok/s" "$work/noperf.err" && fail "--no-perf: the summary is printed"
run ctx "$cli" -m "$model" -p "$P" -n 1 -c 3000
expect_ok ctx
[ "$(grep -c "warn: the model was trained on only 2048 context tokens (n_ctx 3000).*KV cache of n_ctx 3000 takes [0-9.]* MiB" "$work/ctx.err")" = 1 ] ||
    fail "-c beyond the training context: no warning: $(cat "$work/ctx.err")"
run ieos "$cli" -m "$model" -p "$P" -n 4 --ignore-eos --log-disable -v
expect_ok ieos

# ---- reverse prompts and interactive mode ------------------------------------------------
run gen "$cli" -m "$model_bpe" -p "$P" -n 24 --temp 0 -t 1 --no-display-prompt
gen=$(out gen)
# a reverse prompt taken from the middle of the greedy continuation ends it there
rp=$(printf '%s' "$gen" | cut -c 9-12)
run rev "$cli" -m "$model_bpe" -p "$P" -n 24 --temp 0 -t 1 --no-display-prompt -r "$rp"
expect_ok rev
rev=$(out rev)
case "$gen" in "$rev"*) ;; *) fail "-r: [$rev] is not a prefix of [$gen]" ;; esac
case "$rev" in *"$rp"*) ;; *) fail "-r: [$rev] does not contain the reverse prompt [$rp]" ;; esac
[ ${#rev} -lt ${#gen} ] || fail "-r '$rp': generation did not stop early"
grep -q "stopped by reverse prompt" "$work/rev.err" || fail "-r: the summary does not say why it stopped"
run rev2 "$cli" -m "$model_bpe" -p "$P" -n 24 --temp 0 -t 1 --no-display-prompt --reverse-prompt="$rp"
same rev rev2
# interactive: at end of input the first answer is all there is
run_in i0 /dev/null "$cli" -m "$model_bpe" -p "$P" -n 24 --temp 0 -t 1 --no-display-prompt -i -r "$rp"
expect_ok i0
same rev i0
# one line typed: the answer goes on after it, with --in-prefix / --in-suffix printed around
printf 'more words\n' > "$work/in1.txt"
run_in i1 "$work/in1.txt" "$cli" -m "$model_bpe" -p "$P" -n 24 --temp 0 -t 1 --no-display-prompt -i -r "$rp" \
    --in-prefix "<<" --in-suffix ">>"
expect_ok i1
case "$(out i1)" in "$rev<<>>"?*) ;; *) fail "-i: [$(out i1)] is not [$rev] + '<<>>' + a second answer" ;; esac
# -if: the user speaks first; the same line as a prompt gives the same continuation
printf 'the people\n' > "$work/in2.txt"
run_in if "$work/in2.txt" "$cli" -m "$model" -n 6 --temp 0 -t 1 -if --no-escape
expect_ok if
[ -s "$work/if.out" ] || fail "-if: no answer"
run_in if2 "$work/in2.txt" "$cli" -m "$model" -n 6 --temp 0 -t 1 --interactive-first --no-escape
same if if2

# ---- errors: one style, status 2, the option named -----------------------------------------
run bad1 "$cli" -m "$model" --bogus
expect_usage bad1 "unknown option '--bogus'"
run bad2 "$cli" -m "$model" -n
expect_usage bad2 "'-n' needs a value"
run bad3 "$cli" -m "$model" -n abc
expect_usage bad3 "-n expects an integer"
run bad4 "$cli" -m "$model" --no-bos=1
expect_usage bad4 "takes no value"
run bad5 "$cli" -m "$model" --mirostat 2
expect_usage bad5 "mirostat: not implemented"
run bad6 "$cli" -m "$model" -ctk q8_0
expect_usage bad6 "f16 or f32"
run bad7 "$cli" -m "$model" -ctk f32 -ctv f16
expect_usage bad7 "one type"
run bad8 "$cli" -m "$model" -t2x
expect_usage bad8 "-t expects an integer"
run missing "$cli" -m "$work/missing.gguf" -p x
[ "$rc" -eq 1 ] || fail "missing model: exit $rc, expected 1"
grep -q "^bitnet-cli: error: .*missing.gguf" "$work/missing.err" || fail "missing model: $(cat "$work/missing.err")"

# ---- bitnet-chat: -s is the seed, the system prompt is -sys -------------------------------
printf 'hello\n/quit\n' > "$work/chat.txt"
run_in chat1 "$work/chat.txt" "$bin/bitnet-chat" -m "$model" -n 6 --temp 0 -sys "You are terse." -s 3
expect_ok chat1
run_in chat2 "$work/chat.txt" "$bin/bitnet-chat" -m "$model" -n 6 --temp 0 --system-prompt="You are terse." --seed 3
same chat1 chat2
run_in chat3 "$work/chat.txt" "$bin/bitnet-chat" -m "$model" -n 6 --temp 0 -s "You are terse."
expect_usage chat3 "-s expects an integer"

# ---- bitnet-tokenize: -p, -f and stdin agree --------------------------------------------------
tok=$bin/bitnet-tokenize
printf 'Hello world, the people' > "$work/tok.txt"
run_in tstdin "$work/tok.txt" "$tok" -m "$model_bpe"
expect_ok tstdin
run tp "$tok" -m "$model_bpe" -p "Hello world, the people"
expect_ok tp
same tstdin tp
run tf "$tok" -m "$model_bpe" -f "$work/tok.txt"
same tstdin tf
run_in tstdin2 "$work/tok.txt" "$tok" -m "$model_bpe" --stdin
same tstdin tstdin2
printf 'a\nb' > "$work/tok_nl.txt"
run_in tnl "$work/tok_nl.txt" "$tok" -m "$model_bpe"
run tpe "$tok" -m "$model_bpe" -p 'a\nb'
same tnl tpe
run tids "$tok" -m "$model_bpe" -p "Hello world, the people" --ids --show-count
[ "$(head -1 "$work/tids.out")" = "[$(out tp | sed 's/ /, /g')]" ] || fail "--ids: [$(head -1 "$work/tids.out")]"
[ "$(sed -n 2p "$work/tids.out")" = "Total number of tokens: $(out tp | wc -w | tr -d ' ')" ] ||
    fail "--show-count: [$(sed -n 2p "$work/tids.out")]"

# ---- bitnet-bench: llama-bench's -o csv and -o md -------------------------------------------
bench=$bin/bitnet-bench
run bcsv "$bench" -m "$model" -p 16 -n 4 -t 1 -r 2 -o csv -ngl 99
expect_ok bcsv
head -1 "$work/bcsv.out" | grep -q '^build_commit,build_number,cpu_info,.*,n_prompt,n_gen,test_time,avg_ns,stddev_ns,avg_ts,stddev_ts' ||
    fail "-o csv: header [$(head -1 "$work/bcsv.out")]"
[ "$(wc -l < "$work/bcsv.out")" -eq 3 ] || fail "-o csv: expected a header and 2 rows"
awk -F'","' 'NR > 1 && !($17 == "16" && $18 == "0" || $17 == "0" && $18 == "4") { bad = 1 } END { exit bad }' \
    "$work/bcsv.out" || fail "-o csv: n_prompt/n_gen columns: $(cat "$work/bcsv.out")"
run bmd "$bench" -m "$model" -p 16 -n 4 -t 1 -r 2 -o md
expect_ok bmd
grep -q '^| model *| *size | *params | backend *| *threads | *test | *t/s |' "$work/bmd.out" || fail "-o md: header"
grep -q '| *pp16 | *[0-9.]* ± [0-9.]* |' "$work/bmd.out" || fail "-o md: no pp16 row"
grep -q '| *tg4 | *[0-9.]* ± [0-9.]* |' "$work/bmd.out" || fail "-o md: no tg4 row"
run bjson "$bench" -m "$model" -p 16 -n 0 -t 1 -r 1 -o json
grep -q '^{"test": "pp", "n": 16' "$work/bjson.out" || fail "-o json"
run btable "$bench" -m "$model" -p 16 -n 0 -t 1 -r 1
grep -q '^| pp16 ' "$work/btable.out" || fail "-o table"
run bbad "$bench" -m "$model" -o xml
expect_usage bbad "'xml' is not one of"

# ---- bitnet-perplexity: progress with an ETA, a warning for -c past the training context ----------
i=0
: > "$work/ppl.txt"
while [ $i -lt 60 ]; do
    echo "the people of the city were in a hurry to see what the king would say to them" >> "$work/ppl.txt"
    i=$((i + 1))
done
run ppl "$bin/bitnet-perplexity" -m "$model" -f "$work/ppl.txt" -c 64 --chunks 3 -t 1 -ngl 99
expect_ok ppl
grep -q "seconds per pass - ETA [0-9.]* minutes" "$work/ppl.err" || fail "perplexity: no ETA: $(cat "$work/ppl.err")"
[ "$(head -1 "$work/ppl.out" | tr ',' '\n' | grep -c '^\[[0-9]\]')" -eq 3 ] || fail "perplexity: running values"
grep -q "^Final estimate: PPL = " "$work/ppl.out" || fail "perplexity: no final estimate"
run ppl2 "$bin/bitnet-perplexity" -m "$model" -f "$work/ppl.txt" -c 2560 --chunks 1 -t 1
# (the text is shorter than one chunk of 2560: refused before any session exists, so the
# library's n_ctx warning, given when a session is created, does not appear)
grep -q "fewer than one chunk of 2560" "$work/ppl2.err" || fail "perplexity -c 2560: no refusal"
# lossy output layers against the F16 one (--agree): both perplexities, top-1 agreement, KL
run ppl6 "$bin/bitnet-perplexity" -m "$model" -f "$work/ppl.txt" -c 64 --chunks 2 -t 1 --output-int6 --agree
expect_ok ppl6
grep -q "^Final estimate: PPL = " "$work/ppl6.out" || fail "perplexity --output-int6: no final estimate"
grep -q "^F16 output layer: PPL = [0-9.]*   top-1 agreement [0-9]*/62 (.*)   mean KL(F16 || int6) = [0-9.]*$" \
    "$work/ppl6.out" || fail "perplexity --agree: [$(tail -1 "$work/ppl6.out")]"
run ppla "$bin/bitnet-perplexity" -m "$model" -f "$work/ppl.txt" -c 64 --chunks 2 -t 1 --agree
expect_usage ppla "--agree compares a lossy output layer"

# bitnet-bench --load: repeated loads, one JSON object
run bload "$bench" -m "$model" --load 2 -o json
expect_ok bload
grep -q '^{"test": "load", "cold": 0, "reps": 2, "load_ms_median": [0-9.]*, .*"peak_rss_mib": [0-9.]*' \
    "$work/bload.out" || fail "bench --load: [$(cat "$work/bload.out")]"

# ---- every program: --version, -h, one error style -------------------------------------------
version=$(sed -n 's/^#define BITNET_VERSION_STRING "\(.*\)"/\1/p' "$header")
for p in bitnet-cli bitnet-chat bitnet-bench bitnet-perplexity bitnet-tokenize bitnet-inspect bitnet-gen-dummy \
    bitnet-convert; do
    [ -x "$bin/$p" ] || continue # bitnet-convert needs json-c
    run v "$bin/$p" --version
    expect_ok "$p --version"
    [ "$(head -1 "$work/v.out")" = "$p (libbitnet) $version" ] || fail "$p --version: [$(head -1 "$work/v.out")]"
    run h "$bin/$p" -h
    expect_ok "$p -h"
    grep -q "usage: $p" "$work/h.out" || fail "$p -h: no usage on stdout"
    run b "$bin/$p" --bogus
    [ "$rc" -eq 2 ] || fail "$p --bogus: exit $rc"
    grep -q "^$p: error: unknown option '--bogus'" "$work/b.err" || fail "$p --bogus: [$(head -1 "$work/b.err")]"
done


# speculation: --lookup and -md print exactly the plain greedy text, report drafted
# tokens in the timing line; a draft model with another vocabulary is refused
sp_prompt="one two three four one two three four one two three"
run sp0 "$cli" -m "$model" -p "$sp_prompt" -n 48 --temp 0 --ignore-eos
expect_ok sp0
run sp1 "$cli" -m "$model" -p "$sp_prompt" -n 48 --temp 0 --ignore-eos --lookup --draft 6
expect_ok sp1
cmp -s "$work/sp0.out" "$work/sp1.out" || fail "--lookup changed the greedy text"
grep -q "| lookup: .* drafted tokens accepted" "$work/sp1.err" || fail "--lookup: no statistics in the timing line"
run sp2 "$cli" -m "$model" -p "$sp_prompt" -n 48 --temp 0 --ignore-eos -md "$model" --draft-max 4 --draft-min 1
expect_ok sp2
cmp -s "$work/sp0.out" "$work/sp2.out" || fail "-md changed the greedy text"
grep -q "| draft: .* drafted tokens accepted" "$work/sp2.err" || fail "-md: no statistics in the timing line"
run sp3 "$cli" -m "$model" -p "x" -n 4 -md "$model_bpe"
[ "$rc" -eq 1 ] && grep -q "vocabulary" "$work/sp3.err" || fail "-md with another vocabulary: exit $rc [$(head -1 "$work/sp3.err")]"
run sp4 "$cli" -m "$model" -p "x" -n 4 --draft 0 --lookup
[ "$rc" -eq 2 ] || fail "--draft 0: exit $rc"

if [ "$failures" -ne 0 ]; then
    echo "cli_flags: $failures check(s) failed" >&2
    exit 1
fi
echo "cli_flags: ok"
