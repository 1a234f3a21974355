#!/usr/bin/python3
"""ref_spm.py -- the SentencePiece reference for libbitnet's tokenizer tests.

Trains a small SentencePiece BPE model (byte fallback, identity normalisation, dummy
prefix, extra whitespace kept: the LLaMA-2 settings) with Debian's python3-sentencepiece
on text built from the corpus plus generated sentences, writes its pieces in
bitnet-mkvocab's format (tokenizer.ggml.model = llama) and the reference encoding of
every corpus entry as a cases file for bitnet-tokcompare.

usage: /usr/bin/python3 ref_spm.py corpus.json OUT_SPEC OUT_CASES
"""
import io
import json
import random
import sys

import sentencepiece as spm

corpus_path, spec_path, cases_path = sys.argv[1:4]
corpus = json.load(open(corpus_path, encoding="utf-8"))

# Training text: the corpus lines, and sentences from a small word list (deterministic).
words = ("the of and to in is that it was for on are with as his they be at one have this from or had by "
         "word but what some we can out other were all there when up use your how said an each she which do "
         "their time if will way about many then them write would like so these her long make thing see him "
         "two has look more day could go come did number sound no most people my over know water than call "
         "first who may down side been now find any new work part take get place made live where after back "
         "little only round man year came show every good me give our under name very through just form "
         "sentence great think say help low line differ turn cause much mean before move right boy old too "
         "same tell does set three want air well also play small end put home read hand port large spell add "
         "even land here must big high such follow act why ask men change went light kind off need house "
         "picture try us again animal point mother world near build self earth father don't can't I'm it's "
         "tokenizer model training token merge byte piece score 2024 1999 42 3.14 café naïve 中文 한국어").split()
rng = random.Random(1234)
lines = []
for t in corpus:
    lines.extend(x for x in t.split("\n") if x)
for _ in range(3000):
    n = rng.randint(3, 14)
    s = " ".join(rng.choice(words) for _ in range(n))
    lines.append(s[0].upper() + s[1:] + rng.choice([".", "!", "?", ",", ";", ":"]))

model = io.BytesIO()
spm.SentencePieceTrainer.train(
    sentence_iterator=iter(lines), model_writer=model, model_type="bpe", vocab_size=700,
    hard_vocab_limit=False, byte_fallback=True, normalization_rule_name="identity",
    remove_extra_whitespaces=False, add_dummy_prefix=True, split_digits=True,
    allow_whitespace_only_pieces=True, character_coverage=0.995, unk_id=0, bos_id=1, eos_id=2,
    pad_id=-1, num_threads=1, minloglevel=2)
sp = spm.SentencePieceProcessor(model_proto=model.getvalue())


def hexs(s):
    b = s.encode("utf-8")
    return b.hex() if b else "-"


n = sp.get_piece_size()
out = ["model llama", "bos 1", "eos 2", "unk 0", "add_bos 1", "tokens %d" % n]
for i in range(n):
    if sp.is_unknown(i):
        t = 2
    elif sp.is_control(i):
        t = 3
    elif sp.is_unused(i):
        t = 5
    elif sp.is_byte(i):
        t = 6
    else:
        t = 1
    out.append("%s %d %r" % (hexs(sp.id_to_piece(i)), t, sp.get_score(i)))
open(spec_path, "w", encoding="utf-8").write("\n".join(out) + "\n")

with open(cases_path, "w", encoding="utf-8") as f:
    for t in corpus:
        f.write("%s\t%s\n" % (hexs(t), " ".join(str(x) for x in sp.encode(t))))
print("spm: %d pieces, %d cases" % (n, len(corpus)))
