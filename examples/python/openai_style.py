#!/usr/bin/env python3
"""The llama-cpp-python / OpenAI shapes of the binding: a completion, a chat completion
(whole and streamed) and an embedding, printed as JSON.

    openai_style.py -m MODEL.gguf [-n 32] [-c 2048]
"""
import argparse
import json
import sys

import bitnet


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-m", "--model", required=True)
    ap.add_argument("-n", "--max-tokens", type=int, default=32)
    ap.add_argument("-c", "--ctx", type=int, default=2048)
    args = ap.parse_args()
    try:
        llm = bitnet.Llama(model_path=args.model, n_ctx=args.ctx, embedding=True)
    except bitnet.BitnetError as e:
        sys.exit("openai_style.py: %s" % e)
    with llm:
        out = llm("Q: Name the planets in the solar system. A: ", max_tokens=args.max_tokens, stop=["Q:", "\n"])
        print(json.dumps(out, indent=2))
        messages = [{"role": "system", "content": "You are a helpful assistant."},
                    {"role": "user", "content": "Write a haiku about ternary weights."}]
        reply = llm.create_chat_completion(messages, max_tokens=args.max_tokens)
        print(json.dumps(reply, indent=2))
        for chunk in llm.create_chat_completion(messages, max_tokens=args.max_tokens, stream=True):
            sys.stdout.write(chunk["choices"][0]["delta"].get("content", ""))
            sys.stdout.flush()
        print()
        emb = llm.create_embedding("ternary weights")
        print(json.dumps({"object": emb["object"], "dims": len(emb["data"][0]["embedding"]),
                          "usage": emb["usage"]}))


if __name__ == "__main__":
    main()
