#!/usr/bin/env python3
"""Measure chat turn cost with and without KV-cache reuse (by hand, not part of ctest).

    BITNET_LIBRARY_PATH=build PYTHONPATH=bindings/python /usr/bin/python3 tests/python/chat_turns.py \
        MODEL.gguf [--turns 10] [--reply 16] [--threads 2] [--reps 3] [--template chatml]

Each turn appends a user message and asks Session.chat for a reply of --reply tokens.
"reuse" keeps the session (only the new part of the conversation is evaluated); "reset"
clears it before every turn (the whole conversation is evaluated, as before prompt reuse).
Prints, per mode and repetition, turn 1 and the last turn as
prompt-tokens/evaluated-tokens:milliseconds, then the medians.
"""
import argparse
import statistics
import time

import bitnet


def run(model, turns, reply, threads, template, reset):
    s = model.session(ctx=4096, threads=threads)
    history, rows = [], []
    for turn in range(turns):
        history.append({"role": "user", "content": "Tell me about topic number %d in a few words, please." % turn})
        if reset:
            s.reset()
        t0 = time.perf_counter()
        text = s.chat(history, max_tokens=reply, temperature=0, template=template, ignore_eog=True)
        ms = 1e3 * (time.perf_counter() - t0)
        g = s.last_generation
        rows.append((g.prompt_tokens, g.prompt_tokens - g.cached_tokens, ms))
        history.append({"role": "assistant", "content": text})
    s.close()
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("--turns", type=int, default=10)
    ap.add_argument("--reply", type=int, default=16)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--template", default=None)
    args = ap.parse_args()
    with bitnet.Model(args.model) as m:
        first = {"reuse": [], "reset": []}
        last = {"reuse": [], "reset": []}
        for rep in range(args.reps):
            for mode in ("reuse", "reset"):  # interleaved, so load changes hit both
                rows = run(m, args.turns, args.reply, args.threads, args.template, mode == "reset")
                first[mode].append(rows[0][2])
                last[mode].append(rows[-1][2])
                print("%-5s rep %d: turn 1 %d/%d:%.1fms  turn %d %d/%d:%.1fms" % (
                    mode, rep, rows[0][0], rows[0][1], rows[0][2], args.turns, rows[-1][0], rows[-1][1], rows[-1][2]))
        for mode in ("reuse", "reset"):
            print("%-5s median: turn 1 %.1f ms, turn %d %.1f ms" % (mode, statistics.median(first[mode]), args.turns,
                                                                   statistics.median(last[mode])))


if __name__ == "__main__":
    main()
