/*
 * tok_vocab.h -- tokenizer internals: the vocabulary (lib/tok_vocab.c), the pre-tokenizers
 * (lib/tok_pre.c), the BPE / SentencePiece encoders (lib/tok_bpe.c), and the public
 * entry points built on them (lib/tok_api.c, lib/chat_template.c).  See docs/tokenizers.md.
 */
#ifndef BN_VOCAB_H
#define BN_VOCAB_H

#include "gguf.h"

typedef struct bn_vocab bn_vocab;

/* Build the vocabulary from tokenizer.ggml.* metadata, validating it.
 * pretokenizer: NULL (from the file / recognised vocabulary) or a forced name. */
bitnet_status bn_vocab_load(const bitnet_gguf *g, const char *pretokenizer, bn_vocab **out);
void bn_vocab_free(bn_vocab *v);
int32_t bn_vocab_n_tokens(const bn_vocab *v);

/* ---- the vocabulary ----------------------------------------------------------------- */

typedef enum bn_vocab_kind {
    BN_VOCAB_BPE = 1, /* tokenizer.ggml.model = gpt2: byte-level BPE      */
    BN_VOCAB_SPM = 2  /* tokenizer.ggml.model = llama: SentencePiece BPE  */
} bn_vocab_kind;

typedef enum bn_pre_kind {
    BN_PRE_DEFAULT = 0, /* llama.cpp / bitnet.cpp "default": 4 regexes in sequence */
    BN_PRE_LLAMA3  = 1, /* llama-bpe                                               */
    BN_PRE_GPT2    = 2, /* gpt2                                                    */
    BN_PRE_QWEN2   = 3  /* qwen2: llama-bpe's regex with single digits, no ignore_merges */
} bn_pre_kind;

/* tokenizer.ggml.token_type values */
enum {
    BN_TOK_UNDEFINED = 0, BN_TOK_NORMAL = 1, BN_TOK_UNKNOWN = 2, BN_TOK_CONTROL = 3,
    BN_TOK_USER_DEFINED = 4, BN_TOK_UNUSED = 5, BN_TOK_BYTE = 6
};

typedef struct bn_merge_slot {
    uint64_t key;    /* (left id << 32 | right id) + 1; 0 = empty slot */
    uint32_t rank;
    int32_t  result; /* id of the merged token */
} bn_merge_slot;

struct bn_vocab {
    bn_vocab_kind kind;
    bn_pre_kind   pre;
    int32_t       n;
    char        **text;     /* NUL-terminated token strings (may contain NUL; see len) */
    uint32_t     *len;
    float        *score;
    uint8_t      *type;     /* BN_TOK_* */
    uint8_t      *eog;      /* 1 for end-of-generation tokens */
    char         *pool;     /* storage of all texts */
    int32_t      *index;    /* open-addressing hash text -> id (-1 empty) */
    uint64_t      index_cap;
    bn_merge_slot *merges;  /* open-addressing hash (left,right) -> rank, result */
    uint64_t      merge_cap;
    uint64_t      n_merges;
    int32_t       byte_tok[256]; /* BPE: the token of each byte's mapped character;
                                    SPM: the <0xNN> token; -1 when absent */
    int32_t       bos, eos, eot, unk, pad; /* -1 when absent */
    int           add_bos, add_eos, add_space_prefix, ignore_merges;
    int32_t      *specials;  /* CONTROL / USER_DEFINED / UNKNOWN ids, longest text first */
    int32_t       n_specials;
    char         *chat_template; /* NUL-terminated copy, or NULL */
};

/* Everything bn_vocab_build needs, as plain arrays (the GGUF loader fills it from the
 * file; tests fill it directly).  Strings are (pointer, length); lens arrays may be
 * NULL when every string is NUL-terminated. */
typedef struct bn_vocab_desc {
    const char         *model;        /* "gpt2" or "llama" (required)              */
    const char         *pre;          /* tokenizer.ggml.pre, or NULL when absent    */
    size_t              pre_len;
    const char *const  *tokens;       /* n_tokens strings                           */
    const uint64_t     *token_lens;
    int64_t             n_tokens;
    const float        *scores;       /* NULL: all 0                                */
    const int32_t      *types;        /* NULL: all NORMAL                           */
    const char *const  *merges;       /* "left right" strings                       */
    const uint64_t     *merge_lens;
    int64_t             n_merges;
    int64_t             bos, eos, eot, unk, pad; /* -1: absent                      */
    int                 add_bos, add_eos, add_space_prefix; /* -1: absent            */
    const char         *chat_template; /* NULL: absent                              */
    size_t              chat_template_len;
} bn_vocab_desc;

/* A desc with every optional field marked absent. */
void bn_vocab_desc_init(bn_vocab_desc *d);
/* Validate and build.  force_pre as for bn_vocab_load. */
bitnet_status bn_vocab_build(const bn_vocab_desc *d, const char *force_pre, bn_vocab **out);

/* Token id of the string s[0..n), or -1. */
int32_t bn_vocab_find(const bn_vocab *v, const char *s, size_t n);
/* Merge of (left, right): rank and result id, or 0 when the pair does not merge. */
int bn_vocab_merge(const bn_vocab *v, int32_t left, int32_t right, uint32_t *rank, int32_t *result);

/* GPT-2 byte <-> character map: the code point byte b is written as, and the byte of
 * code point cp (-1 when cp is not one of the 256). */
uint32_t bn_byte_to_cp(uint8_t b);
int bn_cp_to_byte(uint32_t cp);

/* ---- pre-tokenizers (lib/tok_pre.c) --------------------------------------------------- */

/* Split the code points cps[0..n) (BN_CP_INVALID for invalid bytes) into pieces with
 * the rules of `pre`.  Writes the end index of each piece to ends and returns the
 * number of pieces; pieces cover the input without gaps.  ends and scratch each have
 * room for n entries. */
size_t bn_pretok_split(bn_pre_kind pre, const uint32_t *cps, size_t n, size_t *ends, size_t *scratch);

/* ---- encoders (lib/tok_bpe.c) ----------------------------------------------------------- */

/* A growable token list. */
typedef struct bn_toklist {
    bitnet_token *v;
    size_t        n, cap;
} bn_toklist;
bitnet_status bn_toklist_push(bn_toklist *l, bitnet_token t);

/* Tokenize raw text (no special tokens) and append the ids to out.  For SentencePiece
 * vocabularies add_prefix says whether to prepend the space prefix. */
bitnet_status bn_tokenize_raw(const bn_vocab *v, const char *text, size_t len, int add_prefix,
                              bn_toklist *out);
/* The whole tokenizer: special-token splitting, raw text, BOS/EOS (BITNET_TOKENIZE_*). */
bitnet_status bn_tokenize(const bn_vocab *v, const char *text, size_t len, uint32_t flags,
                          bn_toklist *out);
/* The same, where content[i] = 1 marks byte i as message text (chat rendering): special
 * tokens are only recognised where they touch no message byte (USER_DEFINED tokens that
 * are not BOS/EOS/EOT/end-of-generation/padding excepted), and message text that would
 * still produce such a token is an error.  content NULL: as bn_tokenize. */
bitnet_status bn_tokenize_masked(const bn_vocab *v, const char *text, size_t len, uint32_t flags,
                                 const uint8_t *content, bn_toklist *out);

/* ---- chat templates (lib/chat_template.c) -------------------------------------------------------- */

/* Render msgs with template name-or-text tmpl (NULL: the vocabulary's template) into
 * text plus a per-byte mark of message text (bn_chat_text, lib/chat_jinja.h).  v may be
 * NULL when tmpl is given (then no special-token strings are known). */
struct bn_chat_text;
bitnet_status bn_chat_render(const bn_vocab *v, const char *tmpl, const bitnet_chat_message *msgs,
                             size_t n_msgs, int add_generation_prompt, struct bn_chat_text *out);
/* Render msgs with template name-or-text tmpl (NULL: the vocabulary's template). */
bitnet_status bn_chat_apply(const bn_vocab *v, const char *tmpl, const bitnet_chat_message *msgs,
                            size_t n_msgs, int add_generation_prompt, char *buf, size_t cap,
                            size_t *n_bytes);

#endif
