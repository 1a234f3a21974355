"""Builds small Hugging Face checkpoints in the layouts of the real repositories, and an
independent numpy reference of what a converted GGUF must compute.

Layouts (config.json keys, tensor names, dtypes and tokenizer files as the real repos
have them; only the sizes are small):
  bitnet-2b4t-bf16   microsoft/bitnet-b1.58-2B-4T-bf16: BitNetForCausalLM, relu2, GQA,
                     bf16 master weights, tied embeddings, tokenizer.json (LLaMA-3 style
                     byte-level BPE, synthetic small vocabulary) + tokenizer_config.json
                     with the chat template
  bitnet-2b4t-packed microsoft/bitnet-b1.58-2B-4T: the same model packed: uint8 weights,
                     4 rows per byte along dim 0 (row k*(out/4)+p in bits 2k of
                     packed[p], value code-1), bf16 weight_scale (BitLinear divides),
                     quantization_config; sharded with model.safetensors.index.json
  1bitllm-fp16       1bitLLM/bitnet_b1_58-large: BitnetForCausalLM, silu, fp16 masters,
                     inner_attn_ln / ffn_layernorm sub-norms, tokenizer.model
                     (SentencePiece, trained here) + added_tokens.json (<pad>, </line>)
  llama-packed       HF1BitLLM/Llama3-8B-1.58 style: LlamaForCausalLM, packed weights,
                     untied lm_head, LLaMA-3 BPE tokenizer
The reference (forward()) reads only the safetensors files written here, ternarizes by
absmean per tensor (or unpacks), quantizes activations per token to int8 and runs the
forward pass of docs/spec.md §5 in float64 (int8 steps in float32, as the C code does).
"""
import json
import os
import re
import struct

import numpy as np

LLAMA3_RE = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
             r"\s*[\r\n]+|\s+(?!\S)|\s+")

CHAT_2B4T = ("{% for message in messages %}{% if loop.first %}{{ bos_token }}{% endif %}"
             "{% if message['role'] == 'user' %}{{ 'User: ' + message['content'] + '<|eot_id|>' }}"
             "{% elif message['role'] == 'assistant' %}{{ 'Assistant: ' + message['content'] + '<|eot_id|>' }}"
             "{% endif %}{% endfor %}{% if add_generation_prompt %}{{ 'Assistant: ' }}{% endif %}")

TEXT = ("The quick brown fox jumps over the lazy dog. A ternary network stores every weight as minus one, "
        "zero or plus one, and the activations as eight-bit integers. Models are converted once and run "
        "many times on ordinary processors; the tokenizer must match the one used in training. ") * 3


# ---------------------------------------------------------------------------------- files

def f32_to_bf16_bits(a):
    b = np.asarray(a, dtype=np.float32).view(np.uint32).astype(np.uint64)
    return ((b + 0x7FFF + ((b >> 16) & 1)) >> 16).astype(np.uint16)


def bf16_bits_to_f32(b):
    return (b.astype(np.uint32) << 16).view(np.float32)


def write_safetensors(path, tensors):
    """tensors: list of (name, dtype string, shape, raw bytes)."""
    header, off, blobs = {"__metadata__": {"format": "pt"}}, 0, []
    for name, dt, shape, raw in tensors:
        header[name] = {"dtype": dt, "shape": list(shape), "data_offsets": [off, off + len(raw)]}
        off += len(raw)
        blobs.append(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack_from("<Q", data, 0)
    header = json.loads(data[8:8 + n])
    out = {}
    base = 8 + n
    for name, e in header.items():
        if name == "__metadata__":
            continue
        b, en = e["data_offsets"]
        raw = data[base + b:base + en]
        shape = e["shape"]
        if e["dtype"] == "BF16":
            a = bf16_bits_to_f32(np.frombuffer(raw, dtype="<u2"))
        elif e["dtype"] == "F16":
            a = np.frombuffer(raw, dtype="<f2").astype(np.float32)
        elif e["dtype"] == "F32":
            a = np.frombuffer(raw, dtype="<f4").copy()
        elif e["dtype"] == "U8":
            a = np.frombuffer(raw, dtype=np.uint8).copy()
        else:
            raise ValueError(e["dtype"])
        out[name] = a.reshape(shape)
    return out


def load_checkpoint(d):
    idx = os.path.join(d, "model.safetensors.index.json")
    if os.path.exists(idx):
        files = sorted(set(json.load(open(idx))["weight_map"].values()))
    else:
        files = ["model.safetensors"]
    t = {}
    for f in files:
        t.update(read_safetensors(os.path.join(d, f)))
    return t


# ---------------------------------------------------------------------------------- tokenizers

def bytes_to_unicode():
    bs = list(range(0x21, 0x7F)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


def pretok_ascii(text):
    """The LLaMA-3 split for ASCII text (\\p{L} = letters, \\p{N} = digits)."""
    pat = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\nA-Za-z0-9]?[A-Za-z]+|[0-9]{1,3}"
           r"| ?[^\sA-Za-z0-9]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
    return re.findall(pat, text)


def train_bpe(text, n_merges):
    b2u = bytes_to_unicode()
    words = {}
    for w in pretok_ascii(text):
        s = tuple(b2u[b] for b in w.encode())
        words[s] = words.get(s, 0) + 1
    merges = []
    for _ in range(n_merges):
        pairs = {}
        for w, c in words.items():
            for a, b in zip(w, w[1:]):
                pairs[(a, b)] = pairs.get((a, b), 0) + c
        if not pairs:
            break
        best = max(sorted(pairs), key=lambda p: pairs[p])
        merges.append(best)
        nw = {}
        for w, c in words.items():
            out, i = [], 0
            while i < len(w):
                if i + 1 < len(w) and (w[i], w[i + 1]) == best:
                    out.append(w[i] + w[i + 1])
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            nw[tuple(out)] = nw.get(tuple(out), 0) + c
        words = nw
    return merges


def bpe_encode(text, vocab, merges):
    """Reference byte-level BPE (lowest merge rank first, ties leftmost; whole pieces that
    are tokens are kept, LLaMA-3's ignore_merges)."""
    b2u = bytes_to_unicode()
    rank = {m: i for i, m in enumerate(merges)}
    ids = []
    for piece in pretok_ascii(text):
        s = "".join(b2u[b] for b in piece.encode())
        if s in vocab:
            ids.append(vocab[s])
            continue
        sym = list(s)
        while True:
            best = None
            for i in range(len(sym) - 1):
                r = rank.get((sym[i], sym[i + 1]))
                if r is not None and (best is None or r < best[0]):
                    best = (r, i)
            if best is None:
                break
            i = best[1]
            sym[i:i + 2] = [sym[i] + sym[i + 1]]
        ids.extend(vocab[x] for x in sym)
    return ids


def make_bpe_tokenizer(d, n_vocab, merges_as_pairs=False):
    b2u = bytes_to_unicode()
    vocab = {b2u[b]: i for i, b in enumerate(range(256))}
    merges = train_bpe(TEXT, 120)
    for a, b in merges:
        if a + b not in vocab:
            vocab[a + b] = len(vocab)
    n_base = len(vocab)
    specials = ["<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>",
                "<|reserved_special_token_1|>", "<|reserved_special_token_2|>", "<|reserved_special_token_3|>",
                "<|start_header_id|>", "<|end_header_id|>", "<|reserved_special_token_4|>", "<|eot_id|>"]
    specials += ["<|reserved_special_token_%d|>" % i for i in range(5, 5 + n_vocab - n_base - len(specials))]
    added = [{"id": n_base + i, "content": s, "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": True} for i, s in enumerate(specials)]
    tj = {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": added, "normalizer": None,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": LLAMA3_RE}, "behavior": "Isolated", "invert": False},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]},
        "post_processor": {"type": "Sequence", "processors": [
            {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True},
            {"type": "TemplateProcessing",
             "single": [{"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}},
                        {"Sequence": {"id": "A", "type_id": 0}}],
             "pair": [], "special_tokens": {"<|begin_of_text|>": {"id": "<|begin_of_text|>",
                                                                  "ids": [n_base], "tokens": ["<|begin_of_text|>"]}}}]},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": True,
                  "vocab": vocab,
                  "merges": [[a, b] for a, b in merges] if merges_as_pairs else ["%s %s" % m for m in merges]},
    }
    json.dump(tj, open(os.path.join(d, "tokenizer.json"), "w"), ensure_ascii=False)
    tc = {"added_tokens_decoder": {str(a["id"]): {k: v for k, v in a.items() if k != "id"} for a in added},
          "bos_token": "<|begin_of_text|>", "chat_template": CHAT_2B4T, "clean_up_tokenization_spaces": True,
          "eos_token": "<|eot_id|>", "model_input_names": ["input_ids", "attention_mask"],
          "model_max_length": 4096, "tokenizer_class": "PreTrainedTokenizerFast"}
    json.dump(tc, open(os.path.join(d, "tokenizer_config.json"), "w"), ensure_ascii=False)
    return {"vocab": vocab, "merges": merges, "bos": n_base, "eos": n_base + 9}


def make_spm_tokenizer(d):
    import io
    import sentencepiece as spm
    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(TEXT.split(". ") * 4), model_writer=buf,
                                   vocab_size=400, model_type="bpe", byte_fallback=True,
                                   character_coverage=1.0, minloglevel=2)
    open(os.path.join(d, "tokenizer.model"), "wb").write(buf.getvalue())
    sp = spm.SentencePieceProcessor(model_proto=buf.getvalue())
    n = sp.get_piece_size()
    json.dump({"<pad>": n, "</line>": n + 1}, open(os.path.join(d, "added_tokens.json"), "w"))
    json.dump({"add_bos_token": True, "add_eos_token": False, "bos_token": "<s>", "eos_token": "</s>",
               "unk_token": "<unk>", "pad_token": "<pad>", "legacy": False, "tokenizer_class": "LlamaTokenizer"},
              open(os.path.join(d, "tokenizer_config.json"), "w"))
    return {"sp": sp, "n_vocab": n + 2}


# ---------------------------------------------------------------------------------- models

def pack_rows(q):
    """Ternary int matrix [out, in] -> uint8 [out/4, in], the HF packed layout."""
    out = q.shape[0]
    p = out // 4
    packed = np.zeros((p, q.shape[1]), dtype=np.uint8)
    for k in range(4):
        packed |= ((q[k * p:(k + 1) * p] + 1).astype(np.uint8) << (2 * k))
    return packed


def make_model(d, kind, seed=1, n_layer=2, n_embd=256, n_ff=512, n_head=4, n_head_kv=2, shards=1):
    os.makedirs(d, exist_ok=True)
    rng = np.random.default_rng(seed)
    if kind == "1bitllm":
        tok = make_spm_tokenizer(d)
        n_vocab, n_head_kv = tok["n_vocab"], n_head
    else:
        n_vocab = 512
        tok = make_bpe_tokenizer(d, n_vocab, merges_as_pairs=(kind == "llama"))
    hd = n_embd // n_head
    packed = kind in ("2b4t-packed", "llama")
    fdt = {"1bitllm": "F16"}.get(kind, "BF16")

    def store(a):
        a = np.asarray(a, dtype=np.float32)
        if fdt == "F16":
            return "F16", a.astype("<f2").tobytes()
        return "BF16", f32_to_bf16_bits(a).astype("<u2").tobytes()

    tensors = []

    def add_float(name, a):
        dt, raw = store(a)
        tensors.append((name, dt, a.shape, raw))

    def add_linear(name, out, inp):
        w = rng.standard_normal((out, inp)).astype(np.float32) * 0.05
        if packed:
            q = rng.integers(-1, 2, size=(out, inp))
            ws = np.float32(rng.uniform(8, 30))  # BitLinear: value = code / weight_scale
            tensors.append((name + ".weight", "U8", (out // 4, inp), pack_rows(q).tobytes()))
            add_float(name + ".weight_scale", np.array([ws], dtype=np.float32))
        else:
            add_float(name + ".weight", w)

    # tied models: small embeddings (as trained models have), so that the last token's own
    # embedding does not dominate the residual stream and greedy output is not one token
    add_float("model.embed_tokens.weight", rng.standard_normal((n_vocab, n_embd)) * (1.0 if kind == "llama" else 0.05))
    for i in range(n_layer):
        p = "model.layers.%d." % i
        add_float(p + "input_layernorm.weight", 1 + 0.1 * rng.standard_normal(n_embd))
        add_linear(p + "self_attn.q_proj", n_head * hd, n_embd)
        add_linear(p + "self_attn.k_proj", n_head_kv * hd, n_embd)
        add_linear(p + "self_attn.v_proj", n_head_kv * hd, n_embd)
        add_linear(p + "self_attn.o_proj", n_embd, n_head * hd)
        add_float(p + "post_attention_layernorm.weight", 1 + 0.1 * rng.standard_normal(n_embd))
        add_linear(p + "mlp.gate_proj", n_ff, n_embd)
        add_linear(p + "mlp.up_proj", n_ff, n_embd)
        add_linear(p + "mlp.down_proj", n_embd, n_ff)
        if kind == "1bitllm":
            add_float(p + "self_attn.inner_attn_ln.weight", 1 + 0.1 * rng.standard_normal(n_embd))
            add_float(p + "mlp.ffn_layernorm.weight", 1 + 0.1 * rng.standard_normal(n_ff))
        elif kind != "llama":
            add_float(p + "self_attn.attn_sub_norm.weight", 1 + 0.1 * rng.standard_normal(n_embd))
            add_float(p + "mlp.ffn_sub_norm.weight", 1 + 0.1 * rng.standard_normal(n_ff))
    add_float("model.norm.weight", 1 + 0.1 * rng.standard_normal(n_embd))
    if kind == "llama":
        add_float("lm_head.weight", rng.standard_normal((n_vocab, n_embd)))

    if shards == 1:
        write_safetensors(os.path.join(d, "model.safetensors"), tensors)
    else:
        per = (len(tensors) + shards - 1) // shards
        wm = {}
        for s in range(shards):
            fn = "model-%05d-of-%05d.safetensors" % (s + 1, shards)
            part = tensors[s * per:(s + 1) * per]
            write_safetensors(os.path.join(d, fn), part)
            for t in part:
                wm[t[0]] = fn
        json.dump({"metadata": {"total_size": sum(len(t[3]) for t in tensors)}, "weight_map": wm},
                  open(os.path.join(d, "model.safetensors.index.json"), "w"), indent=2)

    if kind in ("2b4t-bf16", "2b4t-packed"):
        cfg = {"architectures": ["BitNetForCausalLM"], "attention_bias": False, "attention_dropout": 0.0,
               "bos_token_id": tok["bos"], "eos_token_id": tok["bos"] + 1, "hidden_act": "relu2",
               "hidden_size": n_embd, "initializer_range": 0.02, "intermediate_size": n_ff,
               "max_position_embeddings": 4096, "model_type": "bitnet", "rms_norm_eps": 1e-05,
               "num_attention_heads": n_head, "num_hidden_layers": n_layer, "num_key_value_heads": n_head_kv,
               "rope_theta": 500000.0, "tie_word_embeddings": True, "torch_dtype": "bfloat16",
               "use_cache": True, "vocab_size": n_vocab}
        if packed:
            cfg["quantization_config"] = {"linear_class": "bitlinear", "quant_method": "bitnet",
                                          "quantization_mode": "offline"}
    elif kind == "1bitllm":
        cfg = {"architectures": ["BitnetForCausalLM"], "attention_bias": False, "bos_token_id": 1,
               "eos_token_id": 2, "hidden_act": "silu", "hidden_size": n_embd, "initializer_range": 0.02,
               "input_bits": 8, "intermediate_size": n_ff, "max_position_embeddings": 2048, "model_type": "llama",
               "num_attention_heads": n_head, "num_hidden_layers": n_layer, "num_key_value_heads": n_head,
               "pad_token_id": n_vocab - 2, "pretraining_tp": 1, "rms_norm_eps": 1e-05, "rope_scaling": None,
               "rope_theta": 10000.0, "tie_word_embeddings": True, "torch_dtype": "float16",
               "transformers_version": "4.39.0", "use_cache": True, "vocab_size": n_vocab, "weight_bits": 1}
    else:
        cfg = {"architectures": ["LlamaForCausalLM"], "attention_bias": False, "bos_token_id": tok["bos"],
               "eos_token_id": tok["eos"], "hidden_act": "silu", "hidden_size": n_embd, "intermediate_size": n_ff,
               "max_position_embeddings": 8192, "model_type": "llama", "num_attention_heads": n_head,
               "num_hidden_layers": n_layer, "num_key_value_heads": n_head_kv, "rms_norm_eps": 1e-05,
               "rope_theta": 500000.0, "tie_word_embeddings": False, "torch_dtype": "bfloat16",
               "vocab_size": n_vocab,
               "quantization_config": {"modules_to_not_convert": None, "quant_method": "bitnet"}}
    json.dump(cfg, open(os.path.join(d, "config.json"), "w"), indent=2)
    return cfg, tok


# ---------------------------------------------------------------------------------- reference

def f16r(a):
    return np.asarray(a, dtype=np.float32).astype(np.float16).astype(np.float32)


def ternary(t, name, cfg):
    """(codes int8 [out, in], scale float32) of a projection, as the converter must make it."""
    w = t[name + ".weight"]
    if w.dtype == np.uint8:
        p = w.shape[0]
        codes = np.concatenate([((w >> (2 * k)) & 3).astype(np.int8) - 1 for k in range(4)], axis=0)
        ws = np.float32(t[name + ".weight_scale"].reshape(-1)[0])
        lc = cfg.get("quantization_config", {}).get("linear_class", "bitlinear")
        scale = np.float32(ws) if lc == "autobitlinear" else np.float32(np.float32(1.0) / ws)
        assert codes.shape[0] == 4 * p
        return codes, scale
    w = w.astype(np.float32)
    mean = np.float32(np.abs(w.astype(np.float64)).sum() / w.size)
    mean = max(mean, np.float32(1e-5))
    s = np.float32(np.float32(1.0) / mean)
    codes = np.clip(np.rint(w * s), -1, 1).astype(np.int8)
    return codes, np.float32(np.float32(1.0) / s)


TIE_EPS = 3e-5
_ties = []


def act_quant(x):
    """Per-token int8 (docs/spec.md §4.1): returns (q int rows, a float32 per row).  Also
    records, per row, how close x*a came to a rounding boundary (k + 0.5): a C
    implementation computing x in float32 may round such a value the other way."""
    x = x.astype(np.float32)
    m = np.maximum(np.abs(x).max(axis=-1).astype(np.float64), 1e-5)
    a = (127.0 / m).astype(np.float32)
    v = x * a[:, None]
    _ties.append(np.abs(np.abs(v - np.floor(v)) - 0.5).min(axis=-1))
    q = np.clip(np.rint(v), -128, 127)
    return q, a


def q8_0_roundtrip(x):
    """ggml's reference Q8_0 quantizer and dequantizer (blocks of 32 along rows)."""
    x = x.astype(np.float32)
    b = x.reshape(x.shape[0], -1, 32)
    d = (np.abs(b).max(axis=-1) / np.float32(127)).astype(np.float32)
    inv = np.where(d != 0, np.float32(1) / np.where(d != 0, d, 1), 0).astype(np.float32)
    q = np.clip(np.sign(b * inv[..., None]) * np.floor(np.abs(b * inv[..., None]) + 0.5), -127, 127)
    return (q * f16r(d)[..., None]).reshape(x.shape), q, f16r(d)


class Reference:
    def __init__(self, d, wtype, etype):
        self.cfg = cfg = json.load(open(os.path.join(d, "config.json")))
        t = load_checkpoint(d)
        self.arch = cfg["architectures"][0]
        self.E = cfg["hidden_size"]
        self.nh = cfg["num_attention_heads"]
        self.nkv = cfg.get("num_key_value_heads", self.nh)
        self.hd = self.E // self.nh
        self.eps = cfg.get("rms_norm_eps", 1e-5)
        self.theta = cfg.get("rope_theta", 10000.0)
        self.etype = etype
        emb = t["model.embed_tokens.weight"].astype(np.float32)
        out = t.get("lm_head.weight") if self.arch == "LlamaForCausalLM" else None
        out = emb if out is None else out.astype(np.float32)
        self.emb = self.store_embd(emb)
        self.out_w = out
        self.out = self.store_embd(out)
        self.layers = []
        for i in range(cfg["num_hidden_layers"]):
            p = "model.layers.%d." % i
            L = {"attn_norm": t[p + "input_layernorm.weight"], "ffn_norm": t[p + "post_attention_layernorm.weight"]}
            for k, n in (("q", "self_attn.q_proj"), ("k", "self_attn.k_proj"), ("v", "self_attn.v_proj"),
                         ("o", "self_attn.o_proj"), ("gate", "mlp.gate_proj"), ("up", "mlp.up_proj"),
                         ("down", "mlp.down_proj")):
                codes, scale = ternary(t, p + n, cfg)
                # F16 stores f16(+-scale); TQ1_0/TQ2_0 store the scale as the f16 block scale
                if wtype != "i2_s":
                    scale = f16r(scale)
                L[k] = (codes.astype(np.float64), np.float32(scale))
            if self.arch == "BitNetForCausalLM":
                L["attn_sub"] = t[p + "self_attn.attn_sub_norm.weight"]
                L["ffn_sub"] = t[p + "mlp.ffn_sub_norm.weight"]
            elif self.arch == "BitnetForCausalLM":
                L["attn_sub"] = t[p + "self_attn.inner_attn_ln.weight"]
                L["ffn_sub"] = t[p + "mlp.ffn_layernorm.weight"]
            self.layers.append(L)
        self.norm = t["model.norm.weight"]

    def store_embd(self, e):
        if self.etype == "f16":
            return f16r(e)
        if self.etype == "q8_0":
            return q8_0_roundtrip(e)[0]
        return e  # q6_k: not modelled exactly (see test_convert.py)

    def rms(self, x, w):
        x = x.astype(np.float32)
        ms = (x.astype(np.float64) ** 2).mean(axis=-1, keepdims=True)
        return x / np.sqrt(ms + self.eps) * w.astype(np.float64)

    @staticmethod
    def lin(x, W):
        codes, scale = W
        q, a = act_quant(x)
        return (q @ codes.T) / a[:, None].astype(np.float64) * np.float64(scale)

    def rope(self, x, pos):
        # NEOX / HF rotate_half on the HF row order
        hd, half = self.hd, self.hd // 2
        inv = self.theta ** (-np.arange(half) * 2.0 / hd)
        ang = pos[:, None] * inv[None, :]
        c, s = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
        x1, x2 = x[..., :half], x[..., half:]
        return np.concatenate([x1 * c - x2 * s, x2 * c + x1 * s], axis=-1)

    def forward(self, ids):
        """Logits [n, n_vocab].  Sets self.tie_pos: the first position where an int8
        activation was within TIE_EPS of a rounding boundary (len(ids) if none); from
        there on (attention carries it forward) an exact implementation may differ by
        one int8 step."""
        _ties.clear()
        r = self._forward(ids)
        near = np.where(np.array(_ties).min(axis=0) < TIE_EPS)[0]
        self.tie_pos = int(near[0]) if len(near) else len(ids)
        return r

    def _forward(self, ids):
        n = len(ids)
        h = self.emb[ids].astype(np.float64)
        pos = np.arange(n, dtype=np.float64)
        relu2 = self.arch == "BitNetForCausalLM"
        sub = self.arch != "LlamaForCausalLM"
        grp = self.nh // self.nkv
        for L in self.layers:
            x = self.rms(h, L["attn_norm"])
            q = self.rope(self.lin(x, L["q"]).reshape(n, self.nh, self.hd), pos)
            k = self.rope(self.lin(x, L["k"]).reshape(n, self.nkv, self.hd), pos)
            v = self.lin(x, L["v"]).reshape(n, self.nkv, self.hd)
            att = np.zeros((n, self.nh, self.hd))
            mask = np.triu(np.full((n, n), -np.inf), 1)
            for hh in range(self.nh):
                kv = hh // grp
                sc = q[:, hh, :] @ k[:, kv, :].T / np.sqrt(self.hd) + mask
                sc = np.exp(sc - sc.max(axis=1, keepdims=True))
                sc /= sc.sum(axis=1, keepdims=True)
                att[:, hh, :] = sc @ v[:, kv, :]
            att = att.reshape(n, -1)
            if sub:
                att = self.rms(att, L["attn_sub"])
            h = h + self.lin(att, L["o"])
            x = self.rms(h, L["ffn_norm"])
            g, u = self.lin(x, L["gate"]), self.lin(x, L["up"])
            f = (np.maximum(g, 0) ** 2 if relu2 else g / (1 + np.exp(-g))) * u
            if sub:
                f = self.rms(f, L["ffn_sub"])
            h = h + self.lin(f, L["down"])
        x = self.rms(h, self.norm)
        if self.etype == "f16":
            return f16r(x).astype(np.float64) @ self.out.T.astype(np.float64)
        if self.etype == "q8_0":
            xq = q8_0_roundtrip(x)[0]
            return xq.astype(np.float64) @ self.out.T.astype(np.float64)
        return x @ self.out.T.astype(np.float64)

    def greedy(self, ids, n_gen):
        ids = list(ids)
        out = []
        for _ in range(n_gen):
            t = int(np.argmax(self.forward(ids)[-1]))
            out.append(t)
            ids.append(t)
        return out
