/*
 * convert.h -- internal interfaces of bitnet-convert (Hugging Face checkpoint -> GGUF).
 *
 * The converter is split by concern:
 *   safetensors.c  the checkpoint's tensors: one or many *.safetensors files (with
 *                  model.safetensors.index.json), headers validated before use, data
 *                  read tensor by tensor (or row range by row range) with pread;
 *   hfjson.c       config.json / tokenizer_config.json / tokenizer.json through json-c;
 *   spm.c          the few fields of a SentencePiece tokenizer.model (protobuf);
 *   vocab.c        the GGUF tokenizer metadata built from either tokenizer file;
 *   archmap.c      architecture detection, hyperparameters and tensor-name mapping;
 *   main.c         options, the streaming writer loop, progress, temp file + rename.
 * Every function returns 0 on success or -1 after printing one message to stderr that
 * names the file, key or tensor and the problem (cv_fail).
 */
#ifndef BN_CONVERT_H
#define BN_CONVERT_H

#include <stddef.h>
#include <stdint.h>

#include "bitnet.h"

struct json_object;

/* Print "bitnet-convert: <message>" to stderr; returns -1 for `return cv_fail(...)`. */
int cv_fail(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;
/* Informational line to stderr unless --quiet. */
void cv_info(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;
extern int cv_quiet;
extern int cv_quiet_errors; /* fuzzing: cv_fail prints nothing */

/* Read a whole (small) file; NUL-terminated.  Returns NULL (errno set) on failure. */
char *cv_read_file(const char *path, size_t max, size_t *len);
/* dir + "/" + name into buf; -1 if it does not fit. */
int cv_path(char *buf, size_t cap, const char *dir, const char *name);
int cv_file_exists(const char *path);

/* ---- string -> int64 hash map (tensor names, token texts): O(1) lookups ------------- */

typedef struct cv_smap {
    const char **keys;    /* borrowed: the caller keeps the strings alive */
    int64_t     *vals;
    size_t       cap;     /* power of two, 0 when empty */
    size_t       n;
} cv_smap;
/* Insert key -> val; returns 1 if key was new, 0 if it was present (value unchanged),
 * -1 out of memory. */
int cv_smap_put(cv_smap *m, const char *key, int64_t val);
/* The value of key, or -1. */
int64_t cv_smap_get(const cv_smap *m, const char *key);
void cv_smap_free(cv_smap *m);

/* ---- safetensors ------------------------------------------------------------------- */

typedef enum cv_dtype { CV_F32, CV_F16, CV_BF16, CV_F64, CV_U8, CV_I8 } cv_dtype;

typedef struct cv_tensor {
    char     *name;
    cv_dtype  dtype;
    int       n_dims;        /* 0..4                                   */
    int64_t   shape[4];      /* PyTorch order: shape[n_dims-1] contiguous */
    int64_t   n_elem;
    uint64_t  offset;        /* absolute file offset of the data       */
    uint64_t  size;          /* bytes                                  */
    int       file;          /* index into cv_st.fds                   */
    int       used;          /* consumed by the mapping                */
} cv_tensor;

typedef struct cv_st {
    cv_tensor *t;
    size_t     n;
    int       *fds;
    char     **files;
    size_t     n_files;
    size_t     cap;          /* allocated entries of t                  */
    cv_smap    names;        /* tensor name -> index into t             */
} cv_st;

/* Open model.safetensors, or the shards listed by model.safetensors.index.json. */
int cv_st_open_dir(cv_st *st, const char *dir);
/* Open one file (used by the above; exposed for tests of header validation). */
int cv_st_add_file(cv_st *st, const char *path);
void cv_st_close(cv_st *st);
cv_tensor *cv_st_find(cv_st *st, const char *name);
const char *cv_dtype_name(cv_dtype d);
/* Read elements [first, first + n) of a float tensor (F32/F16/BF16/F64) as float. */
int cv_st_read_f32(const cv_st *st, const cv_tensor *t, int64_t first, int64_t n, float *dst);
/* Read raw bytes [off, off + n) of a tensor. */
int cv_st_read_raw(const cv_st *st, const cv_tensor *t, uint64_t off, size_t n, void *dst);

float cv_f16_to_f32(uint16_t h);
float cv_bf16_to_f32(uint16_t h);

/* ---- JSON helpers (json-c) ---------------------------------------------------------- */

/* Parse a JSON file; NULL with a message on failure.  `required` = 0: a missing file
 * gives NULL without a message. */
struct json_object *cv_json_load(const char *path, int required);
/* Typed lookups; return 0 and set *out when present with the right type, 1 when
 * absent (or JSON null), -1 (message printed) when present with another type. */
int cv_json_int(struct json_object *o, const char *key, const char *file, int64_t *out);
int cv_json_num(struct json_object *o, const char *key, const char *file, double *out);
int cv_json_str(struct json_object *o, const char *key, const char *file, const char **out);
int cv_json_bool(struct json_object *o, const char *key, const char *file, int *out);
/* An optional JSON file: 0 with *out NULL when it does not exist, 0 with *out set when it
 * parses to an object, -1 (message printed) when it exists but is not a regular file,
 * cannot be read, is not valid JSON or is not an object. */
int cv_json_load_opt(const char *path, struct json_object **out);
/* The value v, found at `where` (a key path such as "model.merges[3][1]") in `file`,
 * must be a string: 0 and *out set, else -1 with a message naming file, path and the
 * type found ("null", "number", ...). */
int cv_json_as_str(struct json_object *v, const char *file, const char *where, const char **out);
/* The same for an integer in lo..hi. */
int cv_json_as_int(struct json_object *v, const char *file, const char *where, int64_t lo, int64_t hi, int64_t *out);
/* The JSON type of v in words, for messages. */
const char *cv_json_type_name(struct json_object *v);


/* ---- tokenizer -------------------------------------------------------------------- */

typedef struct cv_vocab {
    char    **tokens;     /* n entries, owned                       */
    float    *scores;
    int32_t  *types;      /* GGUF token types (1 normal .. 6 byte)  */
    size_t    n;
    char    **merges;     /* BPE only                               */
    size_t    n_merges;
    const char *model;    /* "gpt2" or "llama"                      */
    char     *pre;        /* pre-tokenizer name (BPE) or NULL       */
    int64_t   bos, eos, unk, pad, eot; /* -1 when absent           */
    int       add_bos, add_eos;        /* -1 when unknown           */
    int       add_space_prefix;        /* SPM: -1 when unknown      */
    char     *chat_template;
} cv_vocab;

/* Build the vocabulary from dir (tokenizer.json preferred for BPE, tokenizer.model for
 * SentencePiece), padded to n_vocab entries.  pre_override may be NULL. */
int cv_vocab_load(cv_vocab *v, const char *dir, int64_t n_vocab, const char *pre_override);
void cv_vocab_free(cv_vocab *v);
/* Write the tokenizer.* keys. */
int cv_vocab_write(const cv_vocab *v, bitnet_gguf_writer *w);

/* SentencePiece model: pieces, scores, types (GGUF numbering) and trainer ids. */
typedef struct cv_spm {
    char   **pieces;
    float   *scores;
    int32_t *types;
    size_t   n;
    int64_t  unk_id, bos_id, eos_id, pad_id;
    int      add_dummy_prefix;
} cv_spm;
int cv_spm_parse(const uint8_t *data, size_t len, const char *what, cv_spm *out);
void cv_spm_free(cv_spm *s);

/* ---- architecture ------------------------------------------------------------------ */

typedef enum cv_family {
    CV_FAM_BITNET_2B4T,  /* BitNetForCausalLM (Microsoft 2B-4T): ReLU^2, sub-norms  */
    CV_FAM_1BITLLM,      /* BitnetForCausalLM (1bitLLM): SiLU, sub-norms            */
    CV_FAM_LLAMA         /* LlamaForCausalLM ternary (Llama3-8B-1.58, Falcon3-1.58)  */
} cv_family;

typedef struct cv_hparams {
    cv_family family;
    const char *hf_arch;      /* architectures[0]                       */
    int64_t n_vocab, n_ctx, n_embd, n_layer, n_ff, n_head, n_head_kv, head_dim;
    double  eps, rope_theta;
    int     tied;             /* tie_word_embeddings                    */
    int     packed;           /* quantization_config bitnet, offline    */
    int     scale_divides;    /* packed: value = code / weight_scale    */
    char    act[32];          /* hidden_act                             */
} cv_hparams;

int cv_hparams_load(cv_hparams *hp, const char *dir);

/* Kind of a GGUF tensor, which decides its output type. */
typedef enum cv_kind { CV_K_EMBD, CV_K_OUTPUT, CV_K_NORM, CV_K_TERNARY } cv_kind;

typedef struct cv_map {
    char       gguf[64];
    cv_tensor *src;
    cv_tensor *scale;     /* packed: weight_scale tensor               */
    cv_kind    kind;
    int        permute;   /* llama q/k: heads to permute (0 = none)     */
    int64_t    ne[2];     /* GGUF order: ne[0] = input features        */
    int        n_dims;
    bitnet_type type;
} cv_map;

/* Map every checkpoint tensor; fails on missing, unexpected or mis-shaped tensors. */
int cv_map_tensors(const cv_hparams *hp, cv_st *st, cv_map **out, size_t *n_out);
/* The GGUF architecture string for a family and projection type. */
const char *cv_gguf_arch(const cv_hparams *hp, bitnet_type wtype);

#endif
