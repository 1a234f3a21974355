#!/usr/bin/env python3
"""Interactive chat with libbitnet from Python (the counterpart of bitnet-chat).

    chat.py -m MODEL.gguf [--system "You are helpful."] [-n 256] [--temp 0.8]

Type a message and press Enter; /reset starts over, /quit (or end of input) leaves.
The conversation is kept as a message list and rendered with the model's chat template
each turn; the session keeps its KV cache, so a turn evaluates only what is new.
Ctrl-C stops the current answer.
"""
import argparse
import sys

import bitnet


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-m", "--model", required=True)
    ap.add_argument("--system", default=None)
    ap.add_argument("-n", "--max-tokens", type=int, default=256)
    ap.add_argument("-t", "--threads", type=int, default=0)
    ap.add_argument("-c", "--ctx", type=int, default=2048)
    ap.add_argument("--temp", type=float, default=0.8)
    ap.add_argument("--seed", type=int, default=None)
    args = ap.parse_args()
    try:
        model = bitnet.Model(args.model)
    except bitnet.BitnetError as e:
        sys.exit("chat.py: %s" % e)
    with model:
        s = model.session(ctx=args.ctx, threads=args.threads, seed=args.seed)
        history = [{"role": "system", "content": args.system}] if args.system else []
        while True:
            sys.stdout.write("> ")
            sys.stdout.flush()
            line = sys.stdin.readline()
            if not line or line.strip() == "/quit":
                break
            if line.strip() == "/reset":
                history = history[:1] if args.system else []
                print("(conversation reset)")
                continue
            history.append({"role": "user", "content": line.rstrip("\n")})
            reply = []
            try:
                for piece in s.chat_stream(history, max_tokens=args.max_tokens, temperature=args.temp):
                    reply.append(piece)
                    sys.stdout.write(piece)
                    sys.stdout.flush()
            except KeyboardInterrupt:
                pass  # Ctrl-C ends this answer; the conversation goes on
            except bitnet.BitnetError as e:
                print("\n(error: %s)" % e)
                history.pop()
                continue
            sys.stdout.write("\n")
            history.append({"role": "assistant", "content": "".join(reply)})


if __name__ == "__main__":
    main()
