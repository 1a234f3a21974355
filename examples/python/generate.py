#!/usr/bin/env python3
"""Generate text with libbitnet from Python (the counterpart of bitnet-cli).

    generate.py -m MODEL.gguf -p "Once upon a time" [-n 64] [--temp 0.8] [--seed 1] [-t 2]
"""
import argparse
import sys

import bitnet


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-m", "--model", required=True)
    ap.add_argument("-p", "--prompt", default="Once upon a time")
    ap.add_argument("-n", "--max-tokens", type=int, default=64)
    ap.add_argument("-t", "--threads", type=int, default=0)
    ap.add_argument("-c", "--ctx", type=int, default=0)
    ap.add_argument("--temp", type=float, default=0.8)
    ap.add_argument("--top-k", type=int, default=40)
    ap.add_argument("--top-p", type=float, default=0.95)
    ap.add_argument("--seed", type=int, default=None)
    args = ap.parse_args()
    try:
        with bitnet.Model(args.model) as model:
            s = model.session(ctx=args.ctx, threads=args.threads)
            sys.stdout.write(args.prompt)
            for piece in s.generate(args.prompt, max_tokens=args.max_tokens, temperature=args.temp,
                                    top_k=args.top_k, top_p=args.top_p, seed=args.seed):
                sys.stdout.write(piece)
                sys.stdout.flush()
            sys.stdout.write("\n")
    except bitnet.BitnetError as e:
        sys.exit("generate.py: %s" % e)


if __name__ == "__main__":
    main()
