/*
 * bitnet.h -- the public C API of libbitnet.
 *
 * libbitnet runs 1.58-bit (ternary) language models on ordinary CPUs.  It reads the
 * GGUF files users already have (bitnet.cpp's I2_S files, llama.cpp's TQ1_0/TQ2_0
 * files), tokenizes text exactly as the models were trained, and generates text.
 *
 * This is the only installed header.  Everything declared before the EXPERIMENTAL API
 * section at its end is part of the stable ABI of libbitnet.so.0; the experimental
 * section is opt-in (#define BITNET_EXPERIMENTAL) and may still change.  See
 * docs/api.md for a tour and docs/abi.md for the rules.
 *
 * Conventions (they hold for every function unless its comment says otherwise):
 *
 *  - Objects are opaque handles created by a *_open / *_load / *_create function and
 *    released by the matching *_close / *_free function, which accepts NULL.
 *  - Fallible functions return a bitnet_status: BITNET_OK (0) or a negative error code.
 *    Results come back through out-parameters, which are left untouched on failure
 *    unless stated otherwise.
 *  - One error rule: every call that fails records a message naming what went wrong
 *    (the key, the tensor, the argument) in the calling thread's channel,
 *    bitnet_last_error().  A call that fails on a session -- any function taking a
 *    bitnet_session, or a bitnet_generator of one, that is not NULL -- records the same
 *    message in that session too, bitnet_session_last_error(), so both channels name the
 *    call that failed last and never an earlier, unrelated failure.  Read a message
 *    right after the failing call; after a successful call its content is unspecified.
 *  - Callbacks: bitnet_stream_callback takes its user pointer first, bitnet_log_callback
 *    last (both are stable and stay so).  New callbacks take the user pointer first.
 *  - Parameter structs begin with `struct_size`.  Fill them with the matching
 *    bitnet_*_default_params(&p, sizeof p); the library reads only the fields the
 *    caller's version of this header knows about, so new fields can be appended
 *    without breaking programs built against an older header.
 *  - Buffer-filling functions take (buf, cap, &n_needed).  When cap is too small they
 *    return BITNET_E_BUFFER_TOO_SMALL and still report the size needed, so a caller
 *    can retry with a larger buffer.
 *  - Strings are UTF-8.  Strings passed in with an explicit length need not be
 *    NUL-terminated; strings returned by the library are NUL-terminated unless a
 *    length out-parameter is given (GGUF string values may contain NUL bytes).
 *  - Thread safety: a bitnet_model is read-only after loading and may be used from
 *    any number of threads at once.  A bitnet_session, bitnet_gguf_writer or
 *    bitnet_decoder must be used by one thread at a time.  A bitnet_gguf handle is
 *    read-only and may be shared.
 *
 * Since 0.1.0 unless noted.
 */
#ifndef BITNET_H
#define BITNET_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* BITNET_API marks exported functions.  The library is built with hidden visibility
 * and a linker version script, so only symbols named bitnet_* are exported. */
#ifndef BITNET_API
#  if defined(_WIN32) && defined(BITNET_BUILDING_DLL)
#    define BITNET_API __declspec(dllexport)
#  elif defined(__GNUC__) || defined(__clang__)
#    define BITNET_API __attribute__((visibility("default")))
#  else
#    define BITNET_API
#  endif
#endif

/* ==================================================================================
 * Version
 * ================================================================================== */

#define BITNET_VERSION_MAJOR 0
#define BITNET_VERSION_MINOR 1
#define BITNET_VERSION_PATCH 0
/* MAJOR*10000 + MINOR*100 + PATCH, comparable with bitnet_version_number(). */
#define BITNET_VERSION_NUMBER \
    (BITNET_VERSION_MAJOR * 10000 + BITNET_VERSION_MINOR * 100 + BITNET_VERSION_PATCH)
#define BITNET_VERSION_STRING "0.1.0"

/* The version of the library actually linked, as "MAJOR.MINOR.PATCH".  Compare with
 * BITNET_VERSION_STRING to detect a header/library mismatch. */
BITNET_API const char *bitnet_version(void);

/* The same as a number, MAJOR*10000 + MINOR*100 + PATCH. */
BITNET_API uint32_t bitnet_version_number(void);

/* ==================================================================================
 * Errors
 * ================================================================================== */

/* Status codes.  Numbers are part of the ABI: new codes are appended, none is ever
 * renumbered or reused. */
typedef enum bitnet_status {
    BITNET_OK                  = 0,
    BITNET_E_INVALID_ARG       = -1,  /* a NULL handle, an out-of-range value, bad flags   */
    BITNET_E_NOMEM             = -2,  /* an allocation failed                              */
    BITNET_E_IO                = -3,  /* a file could not be opened, read, mapped, written */
    BITNET_E_FORMAT            = -4,  /* malformed or hostile file contents                */
    BITNET_E_UNSUPPORTED       = -5,  /* valid input this build cannot handle, or a
                                         function not implemented yet                      */
    BITNET_E_NOT_FOUND         = -6,  /* no such key, tensor, token                        */
    BITNET_E_TYPE              = -7,  /* a metadata value has another type than asked for  */
    BITNET_E_BUFFER_TOO_SMALL  = -8,  /* see the buffer convention above                   */
    BITNET_E_CONTEXT_FULL      = -9,  /* the session's context window has no room left     */
    BITNET_E_CANCELLED         = -10, /* a callback asked to stop                          */
    BITNET_E_INVALID_UTF8      = -11, /* text that must be UTF-8 is not                    */
    BITNET_E_INTERNAL          = -12  /* a bug in libbitnet: please report it              */
} bitnet_status;

/* A static, human-readable description of a status code ("out of memory", ...).
 * Never NULL; unknown codes give "unknown error". */
BITNET_API const char *bitnet_strerror(bitnet_status status);

/* The detailed message of the most recent failure of a libbitnet call on the calling
 * thread, e.g. "tensor 'blk.3.attn_q.weight': data range [..] ends past the end of the
 * file" (the error rule in the conventions above).  Valid until the next libbitnet call
 * on this thread.  Never NULL ("" when no call has failed yet). */
BITNET_API const char *bitnet_last_error(void);

/* ==================================================================================
 * Logging and CPU features
 * ================================================================================== */

typedef enum bitnet_log_level {
    BITNET_LOG_ERROR = 0,
    BITNET_LOG_WARN  = 1,
    BITNET_LOG_INFO  = 2,
    BITNET_LOG_DEBUG = 3
} bitnet_log_level;

/* Receives one complete message (no trailing newline) per call.  May be called from
 * any thread that calls into the library.  The user pointer comes last here (see the
 * callback convention at the top). */
typedef void (*bitnet_log_callback)(bitnet_log_level level, const char *message, void *user);

/* Install a process-wide log callback (NULL restores the default) and the most
 * verbose level that is delivered.  The default writes WARN and ERROR messages to
 * stderr; the environment variable BITNET_LOG_LEVEL (0..3) changes the default level. */
BITNET_API void bitnet_set_log_callback(bitnet_log_callback cb, void *user, bitnet_log_level max_level);

/* Instruction-set variants of the compute kernels.  BITNET_ISA_AUTO picks the best the
 * CPU and OS support; the environment variable BITNET_ISA (amx, avx512, avxvnni, avx2,
 * neon, scalar) caps the automatic choice.  Values are append-only. */
typedef enum bitnet_isa {
    BITNET_ISA_AUTO   = 0,
    BITNET_ISA_SCALAR = 1,  /* portable C reference, always available  */
    BITNET_ISA_AVX2   = 2,  /* x86-64 AVX2 + FMA + F16C                 */
    BITNET_ISA_AVX512 = 3,  /* x86-64 AVX-512 F/BW/VL + VNNI            */
    BITNET_ISA_NEON   = 4,  /* AArch64 Advanced SIMD (+ dot product)    */
    BITNET_ISA_AMX    = 5,  /* x86-64 AVX-512 + AMX-INT8 tiles (prompts) */
    BITNET_ISA_AVXVNNI = 6  /* x86-64 AVX2 + 256-bit AVX-VNNI (no AVX-512) */
} bitnet_isa;

/* A space-separated list of the CPU features found that matter to libbitnet, each
 * verified with the OS (CPUID plus XGETBV on x86, getauxval on ARM), e.g.
 * "sse4.2 avx avx2 fma f16c avx512f avx512bw avx512vl avx512vnni".  Static string. */
BITNET_API const char *bitnet_cpu_features(void);

/* Whether this build and this CPU can run kernel variant `isa` (AUTO: always 1). */
BITNET_API int bitnet_isa_supported(bitnet_isa isa);

/* The name of an ISA variant ("scalar", "avx2", ...), or NULL for an unknown value. */
BITNET_API const char *bitnet_isa_name(bitnet_isa isa);

/* ==================================================================================
 * GGUF files: inspection
 *
 * bitnet_gguf reads any GGUF v2/v3 little-endian file, validating everything before
 * it is trusted (counts and sizes against the file size, overflow in dimension
 * products, string lengths, duplicate keys and tensor names, tensor data inside the
 * file and aligned, known tensor types only).  The file is memory-mapped read-only.
 * ================================================================================== */

typedef struct bitnet_gguf bitnet_gguf;

/* GGUF metadata value types (numbers from the GGUF specification). */
typedef enum bitnet_gguf_type {
    BITNET_GGUF_UINT8   = 0,
    BITNET_GGUF_INT8    = 1,
    BITNET_GGUF_UINT16  = 2,
    BITNET_GGUF_INT16   = 3,
    BITNET_GGUF_UINT32  = 4,
    BITNET_GGUF_INT32   = 5,
    BITNET_GGUF_FLOAT32 = 6,
    BITNET_GGUF_BOOL    = 7,
    BITNET_GGUF_STRING  = 8,
    BITNET_GGUF_ARRAY   = 9,
    BITNET_GGUF_UINT64  = 10,
    BITNET_GGUF_INT64   = 11,
    BITNET_GGUF_FLOAT64 = 12
} bitnet_gguf_type;

/* Tensor element types.  Ids 0..35 are upstream ggml's; 36 is bitnet.cpp's I2_S.  The
 * bitnet.cpp fork reuses ids 36..39 that upstream ggml gave to other (retired or
 * new) types: libbitnet reads 36 as I2_S (the only one of those ever found in model
 * files) and refuses 37 (I8_S, never stored), 38 (TL1) and 39 (bitnet.cpp TL2 or
 * upstream MXFP4: a file cannot tell which) with a clear error.  See docs/formats.md. */
typedef enum bitnet_type {
    BITNET_TYPE_F32     = 0,
    BITNET_TYPE_F16     = 1,
    BITNET_TYPE_Q4_0    = 2,
    BITNET_TYPE_Q4_1    = 3,
    BITNET_TYPE_Q5_0    = 6,
    BITNET_TYPE_Q5_1    = 7,
    BITNET_TYPE_Q8_0    = 8,
    BITNET_TYPE_Q8_1    = 9,
    BITNET_TYPE_Q2_K    = 10,
    BITNET_TYPE_Q3_K    = 11,
    BITNET_TYPE_Q4_K    = 12,
    BITNET_TYPE_Q5_K    = 13,
    BITNET_TYPE_Q6_K    = 14,
    BITNET_TYPE_Q8_K    = 15,
    BITNET_TYPE_IQ2_XXS = 16,
    BITNET_TYPE_IQ2_XS  = 17,
    BITNET_TYPE_IQ3_XXS = 18,
    BITNET_TYPE_IQ1_S   = 19,
    BITNET_TYPE_IQ4_NL  = 20,
    BITNET_TYPE_IQ3_S   = 21,
    BITNET_TYPE_IQ2_S   = 22,
    BITNET_TYPE_IQ4_XS  = 23,
    BITNET_TYPE_I8      = 24,
    BITNET_TYPE_I16     = 25,
    BITNET_TYPE_I32     = 26,
    BITNET_TYPE_I64     = 27,
    BITNET_TYPE_F64     = 28,
    BITNET_TYPE_IQ1_M   = 29,
    BITNET_TYPE_BF16    = 30,
    BITNET_TYPE_TQ1_0   = 34,
    BITNET_TYPE_TQ2_0   = 35,
    BITNET_TYPE_I2_S    = 36
} bitnet_type;

/* The name of a tensor type ("F16", "TQ2_0", "I2_S", ...), or NULL if unknown. */
BITNET_API const char *bitnet_type_name(bitnet_type type);

/* Whether libbitnet can convert tensors of `type` to float (bitnet_gguf_tensor_to_f32)
 * and use them in a model.  Types it only knows the size of return 0. */
BITNET_API int bitnet_type_is_supported(bitnet_type type);

/* Byte size of a row of n elements of `type` (n must be a multiple of the block size;
 * I2_S has no per-row size and returns 0, as do unknown types). */
BITNET_API uint64_t bitnet_type_row_size(bitnet_type type, int64_t n);

/* Open and validate a GGUF file.  On failure *out is set to NULL and the status is
 * BITNET_E_IO (cannot open/map) or BITNET_E_FORMAT / BITNET_E_UNSUPPORTED with a
 * message naming the key or tensor and the problem. */
BITNET_API bitnet_status bitnet_gguf_open(const char *path, bitnet_gguf **out);

/* The same over a caller-owned buffer, which must stay valid and unchanged until the
 * handle is closed (no copy is made). */
BITNET_API bitnet_status bitnet_gguf_open_memory(const void *data, size_t size, bitnet_gguf **out);

BITNET_API void bitnet_gguf_close(bitnet_gguf *g);

BITNET_API uint32_t bitnet_gguf_version(const bitnet_gguf *g);   /* 2 or 3               */
BITNET_API uint64_t bitnet_gguf_alignment(const bitnet_gguf *g); /* general.alignment or 32 */
BITNET_API uint64_t bitnet_gguf_data_offset(const bitnet_gguf *g); /* file offset of data */
BITNET_API uint64_t bitnet_gguf_file_size(const bitnet_gguf *g);

/* --- metadata ---------------------------------------------------------------------- */

/* A metadata value: a key's value or an array element.  Obtained from
 * bitnet_gguf_kv / bitnet_gguf_array_get and read with the bitnet_gguf_value_*
 * functions; valid while the handle is open.  `ref` is private to the library. */
typedef struct bitnet_gguf_value {
    bitnet_gguf_type type;      /* the value's type                                  */
    bitnet_gguf_type elem_type; /* arrays: the element type (ARRAY for nested arrays) */
    uint64_t         count;     /* arrays: the number of elements; otherwise 1        */
    uint64_t         ref;       /* private                                           */
} bitnet_gguf_value;

BITNET_API uint64_t bitnet_gguf_n_kv(const bitnet_gguf *g);

/* The i-th key (NUL-terminated, valid UTF-8) and its value. */
BITNET_API bitnet_status bitnet_gguf_kv(const bitnet_gguf *g, uint64_t i, const char **key,
                                        bitnet_gguf_value *value);

/* Index of `key`, or -1 when absent. */
BITNET_API int64_t bitnet_gguf_find_key(const bitnet_gguf *g, const char *key);

/* Element j of an array value (which may itself be an array). */
BITNET_API bitnet_status bitnet_gguf_array_get(const bitnet_gguf *g, const bitnet_gguf_value *array,
                                               uint64_t j, bitnet_gguf_value *elem);

/* Pointer to the packed little-endian elements of an array of a fixed-size type
 * (not STRING or ARRAY), for bulk reads.  Elements may be unaligned. */
BITNET_API bitnet_status bitnet_gguf_array_data(const bitnet_gguf *g, const bitnet_gguf_value *array,
                                                const void **data);

/* Read scalar values.  _int accepts every integer type (and BOOL) whose value fits
 * int64; _uint every integer type whose value is >= 0; _float every numeric type;
 * otherwise BITNET_E_TYPE (or BITNET_E_FORMAT for an out-of-range value). */
BITNET_API bitnet_status bitnet_gguf_value_int(const bitnet_gguf *g, const bitnet_gguf_value *v, int64_t *out);
BITNET_API bitnet_status bitnet_gguf_value_uint(const bitnet_gguf *g, const bitnet_gguf_value *v, uint64_t *out);
BITNET_API bitnet_status bitnet_gguf_value_float(const bitnet_gguf *g, const bitnet_gguf_value *v, double *out);
BITNET_API bitnet_status bitnet_gguf_value_bool(const bitnet_gguf *g, const bitnet_gguf_value *v, int *out);
/* A string value: pointer into the file (NOT NUL-terminated) and its length. */
BITNET_API bitnet_status bitnet_gguf_value_str(const bitnet_gguf *g, const bitnet_gguf_value *v,
                                               const char **data, uint64_t *len);

/* The name of a metadata type ("u32", "string", "array", ...), or NULL. */
BITNET_API const char *bitnet_gguf_type_name(bitnet_gguf_type type);

/* --- tensors ----------------------------------------------------------------------- */

BITNET_API uint64_t bitnet_gguf_n_tensors(const bitnet_gguf *g);
/* Index of the tensor `name`, or -1. */
BITNET_API int64_t bitnet_gguf_find_tensor(const bitnet_gguf *g, const char *name);
/* Accessors for tensor i (< n_tensors); out-of-range i gives NULL / 0. */
BITNET_API const char *bitnet_gguf_tensor_name(const bitnet_gguf *g, uint64_t i);
BITNET_API bitnet_type bitnet_gguf_tensor_type(const bitnet_gguf *g, uint64_t i);
BITNET_API uint32_t bitnet_gguf_tensor_n_dims(const bitnet_gguf *g, uint64_t i);
/* Dimension d (0 = innermost, contiguous); 1 for d >= n_dims. */
BITNET_API int64_t bitnet_gguf_tensor_dim(const bitnet_gguf *g, uint64_t i, uint32_t d);
BITNET_API uint64_t bitnet_gguf_tensor_n_elements(const bitnet_gguf *g, uint64_t i);
/* Offset relative to the data section, and size in bytes. */
BITNET_API uint64_t bitnet_gguf_tensor_offset(const bitnet_gguf *g, uint64_t i);
BITNET_API uint64_t bitnet_gguf_tensor_size(const bitnet_gguf *g, uint64_t i);
/* Pointer to the tensor's bytes inside the mapping. */
BITNET_API const void *bitnet_gguf_tensor_data(const bitnet_gguf *g, uint64_t i);

/* Convert rows [row0, row0 + n_rows) of tensor i to float (a row is ne[0] elements;
 * dst holds n_rows*ne[0] floats).  BITNET_E_UNSUPPORTED for types without a
 * dequantizer (see bitnet_type_is_supported). */
BITNET_API bitnet_status bitnet_gguf_tensor_to_f32(const bitnet_gguf *g, uint64_t i, int64_t row0,
                                                   int64_t n_rows, float *dst);

/* ==================================================================================
 * GGUF files: writing
 *
 * Declare metadata and tensor infos, then bitnet_gguf_writer_begin() writes the header
 * and bitnet_gguf_writer_write() streams tensor data in declaration order (any number
 * of calls per tensor; padding is inserted automatically).  finish() checks that every
 * declared byte was written.  Files are GGUF v3, alignment 32 unless set.
 * ================================================================================== */

typedef struct bitnet_gguf_writer bitnet_gguf_writer;

BITNET_API bitnet_status bitnet_gguf_writer_create(bitnet_gguf_writer **out);
BITNET_API void bitnet_gguf_writer_free(bitnet_gguf_writer *w);

/* Alignment of tensor data (a power of two, 1..65536); writes general.alignment (u32)
 * when it is not 32. */
BITNET_API bitnet_status bitnet_gguf_writer_set_alignment(bitnet_gguf_writer *w, uint32_t alignment);

/* Add a scalar metadata key.  `value` points to one value of `type` (bool: one byte
 * 0/1); type must not be STRING or ARRAY.  Duplicate keys are refused. */
BITNET_API bitnet_status bitnet_gguf_writer_set_scalar(bitnet_gguf_writer *w, const char *key,
                                                       bitnet_gguf_type type, const void *value);
BITNET_API bitnet_status bitnet_gguf_writer_set_str(bitnet_gguf_writer *w, const char *key,
                                                    const char *s, size_t len);
/* An array of n fixed-size values (not STRING or ARRAY), packed. */
BITNET_API bitnet_status bitnet_gguf_writer_set_array(bitnet_gguf_writer *w, const char *key,
                                                      bitnet_gguf_type elem_type, const void *data,
                                                      uint64_t n);
/* An array of n strings; lens may be NULL when every string is NUL-terminated. */
BITNET_API bitnet_status bitnet_gguf_writer_set_str_array(bitnet_gguf_writer *w, const char *key,
                                                          const char *const *strs, const size_t *lens,
                                                          uint64_t n);

/* Declare a tensor (1..4 dims, ne[0] innermost).  Its size follows from type and ne. */
BITNET_API bitnet_status bitnet_gguf_writer_add_tensor(bitnet_gguf_writer *w, const char *name,
                                                       uint32_t n_dims, const int64_t *ne,
                                                       bitnet_type type);

/* Create `path` (truncating it) and write the header, metadata and tensor infos. */
BITNET_API bitnet_status bitnet_gguf_writer_begin(bitnet_gguf_writer *w, const char *path);
/* Append tensor bytes, in declaration order. */
BITNET_API bitnet_status bitnet_gguf_writer_write(bitnet_gguf_writer *w, const void *data, size_t size);
/* Check completeness, flush and close the file. */
BITNET_API bitnet_status bitnet_gguf_writer_finish(bitnet_gguf_writer *w);

/* Quantize n_rows rows of n_per_row floats to `type` (F32, F16, BF16, Q8_0, Q6_K,
 * TQ1_0, TQ2_0, I2_S) into dst (dst_size bytes; the size needed is reported in
 * *written).  For I2_S the whole tensor is one call (a single scale: max |x|) and each
 * value is mapped by sign to -1/0/+1 as bitnet.cpp's quantizer does; for TQ1_0 and
 * TQ2_0 each block of 256 is scaled by its own max |x|. */
BITNET_API bitnet_status bitnet_quantize(bitnet_type type, const float *src, int64_t n_rows,
                                         int64_t n_per_row, void *dst, size_t dst_size, size_t *written);

/* ==================================================================================
 * Models
 * ================================================================================== */

typedef struct bitnet_model bitnet_model;
typedef int32_t bitnet_token;

typedef struct bitnet_model_params {
    size_t      struct_size;  /* set by bitnet_model_default_params                      */
    int         vocab_only;   /* load only the tokenizer (files without tensors work)     */
    bitnet_isa  isa;          /* kernel variant (weights are repacked for it); AUTO        */
    const char *arch;         /* override the architecture decision: "bitnet-b1.58"
                                 (ReLU^2 FFN), "bitnet" (SiLU), "llama", "qwen3", "gemma3";
                                 NULL = decide from the file and log the decision          */
    const char *pretokenizer; /* override the BPE pre-tokenizer: "llama-bpe", "default"
                                 (bitnet.cpp's fallback, for bit-exact comparisons), "gpt2",
                                 "qwen2";
                                 NULL = from tokenizer.ggml.pre, or recognised vocabulary  */
    int         use_mmap;     /* map the file (1, default) or read it (0)                 */
} bitnet_model_params;

BITNET_API void bitnet_model_default_params(bitnet_model_params *p, size_t struct_size);

/* Load a model.  Errors: BITNET_E_IO, BITNET_E_FORMAT (malformed file, missing or
 * mis-shaped tensor, bad vocabulary), BITNET_E_UNSUPPORTED (unknown architecture or
 * tensor type), BITNET_E_NOMEM.  params may be NULL for defaults. */
BITNET_API bitnet_status bitnet_model_load(const char *path, const bitnet_model_params *params,
                                           bitnet_model **out);
BITNET_API void bitnet_model_free(bitnet_model *m);

/* The file's metadata and tensor table (owned by the model). */
BITNET_API const bitnet_gguf *bitnet_model_gguf(const bitnet_model *m);

/* The architecture the model runs as ("bitnet-b1.58", "bitnet", "llama"). */
BITNET_API const char *bitnet_model_arch(const bitnet_model *m);
/* One line describing the model, e.g. "bitnet-b1.58 30L 2560d I2_S 2.41B params". */
BITNET_API const char *bitnet_model_desc(const bitnet_model *m);

/* Hyperparameters (0 for a vocab-only model). */
typedef enum bitnet_model_info {
    BITNET_INFO_N_VOCAB     = 0,
    BITNET_INFO_N_CTX_TRAIN = 1,
    BITNET_INFO_N_EMBD      = 2,
    BITNET_INFO_N_LAYER     = 3,
    BITNET_INFO_N_HEAD      = 4,
    BITNET_INFO_N_HEAD_KV   = 5,
    BITNET_INFO_N_FF        = 6,
    BITNET_INFO_HEAD_DIM    = 7,
    BITNET_INFO_N_PARAMS    = 8,  /* parameters in the file                      */
    BITNET_INFO_SIZE_BYTES  = 9,  /* bytes of weights held in memory after load  */
    BITNET_INFO_WEIGHT_TYPE = 10, /* bitnet_type of the ternary projections       */
    BITNET_INFO_ISA         = 11  /* bitnet_isa the kernels run                   */
} bitnet_model_info;
BITNET_API int64_t bitnet_model_get_info(const bitnet_model *m, bitnet_model_info what);

/* ==================================================================================
 * Tokenizer
 * ================================================================================== */

/* Special token ids, or -1 when the vocabulary has none. */
BITNET_API bitnet_token bitnet_token_bos(const bitnet_model *m);
BITNET_API bitnet_token bitnet_token_eos(const bitnet_model *m);
BITNET_API bitnet_token bitnet_token_eot(const bitnet_model *m);
/* Whether generation should stop at this token (EOS, EOT, and known end-of-turn texts). */
BITNET_API int bitnet_token_is_eog(const bitnet_model *m, bitnet_token t);
/* The token's vocabulary string (raw, e.g. "Ġthe" or "▁the"), NUL-terminated, or NULL. */
BITNET_API const char *bitnet_token_text(const bitnet_model *m, bitnet_token t);

/* Flags for bitnet_tokenize (may be OR-ed). */
#define BITNET_TOKENIZE_ADD_BOS       1u /* prepend BOS if the model asks for it        */
#define BITNET_TOKENIZE_PARSE_SPECIAL 2u /* recognise special-token texts in the input  */
#define BITNET_TOKENIZE_NO_ADD_EOS    4u /* never append EOS, even if the model asks    */

/* Tokenize len bytes of UTF-8 text into tokens[0..cap).  *n_tokens receives the count
 * needed.  Invalid UTF-8 is not an error: each invalid byte is tokenized as that raw
 * byte (byte-level BPE) or its <0xNN> byte token (SentencePiece). */
BITNET_API bitnet_status bitnet_tokenize(const bitnet_model *m, const char *text, size_t len,
                                         uint32_t flags, bitnet_token *tokens, size_t cap,
                                         size_t *n_tokens);

/* Flags for detokenization. */
#define BITNET_DETOK_RENDER_SPECIAL 1u /* write special tokens' text (else omit them)  */
#define BITNET_DETOK_KEEP_LEADING_SPACE 2u /* SentencePiece: keep the space the
                                              tokenizer added before the first word     */

/* Detokenize a whole token list into buf (NOT NUL-terminated; *n_bytes = bytes needed).
 * Invalid token ids give BITNET_E_INVALID_ARG. */
BITNET_API bitnet_status bitnet_detokenize(const bitnet_model *m, const bitnet_token *tokens,
                                           size_t n_tokens, uint32_t flags, char *buf, size_t cap,
                                           size_t *n_bytes);

/* Streaming detokenizer: feeds tokens one at a time and returns only complete UTF-8
 * text, holding back bytes of a character split across tokens. */
typedef struct bitnet_decoder bitnet_decoder;
BITNET_API bitnet_status bitnet_decoder_create(const bitnet_model *m, uint32_t flags, bitnet_decoder **out);
BITNET_API void bitnet_decoder_free(bitnet_decoder *d);
/* Add a token; writes the text that became complete (possibly none) to buf. */
BITNET_API bitnet_status bitnet_decoder_push(bitnet_decoder *d, bitnet_token t, char *buf, size_t cap,
                                             size_t *n_bytes);
/* Emit whatever is held back (an incomplete sequence comes out as U+FFFD) and reset. */
BITNET_API bitnet_status bitnet_decoder_flush(bitnet_decoder *d, char *buf, size_t cap, size_t *n_bytes);

/* Chat templates.  The model's tokenizer.chat_template (a Jinja template, as in Hugging
 * Face's tokenizer_config.json) is rendered by libbitnet's Jinja renderer (the subset
 * chat templates use; docs/chat.md); a construct it does not implement gives
 * BITNET_E_UNSUPPORTED naming it, a template that refuses the conversation
 * (raise_exception) BITNET_E_INVALID_ARG with the template's message.  `tmpl` overrides
 * the model's template: NULL (the model's; "plain" when it has none), a name ("bitnet",
 * "bitnet-hf", "llama3", "chatml", "plain") or a template text.  A template text that
 * contains "BITNET" (bitnet.cpp's converter output) renders as "bitnet", as in
 * bitnet.cpp.  The text never begins with the BOS token when the model adds BOS while
 * tokenizing (tokenize it with BITNET_TOKENIZE_ADD_BOS).  Tokenizing this text with
 * BITNET_TOKENIZE_PARSE_SPECIAL turns special-token text inside messages into control
 * tokens: prefer bitnet_chat_tokenize (experimental section), which never does. */
typedef struct bitnet_chat_message {
    const char *role;    /* "system", "user", "assistant" */
    const char *content; /* UTF-8, NUL-terminated (so it cannot hold NUL) */
} bitnet_chat_message;

BITNET_API bitnet_status bitnet_chat_apply(const bitnet_model *m, const char *tmpl,
                                           const bitnet_chat_message *msgs, size_t n_msgs,
                                           int add_generation_prompt, char *buf, size_t cap,
                                           size_t *n_bytes);

/* ==================================================================================
 * Sessions: one token stream over a model (KV cache, position, logits, sampler RNG)
 * ================================================================================== */

typedef struct bitnet_session bitnet_session;

typedef enum bitnet_kv_type {
    BITNET_KV_F16 = 0,
    BITNET_KV_F32 = 1
} bitnet_kv_type;

typedef struct bitnet_session_params {
    size_t         struct_size;
    uint32_t       n_ctx;      /* context window in tokens; 0 = the model's (capped at 4096) */
    uint32_t       n_threads;  /* worker threads; 0 = number of online CPUs                  */
    uint32_t       n_batch;    /* tokens evaluated per internal step of a long prompt (512)  */
    bitnet_kv_type kv_type;    /* KV cache element type (F16)                                */
    int            logits_all; /* keep logits of every token of each eval, not just the last */
    int            embeddings; /* keep the final hidden state (after output norm)             */
    uint64_t       seed;       /* sampler RNG seed                                           */
} bitnet_session_params;

BITNET_API void bitnet_session_default_params(bitnet_session_params *p, size_t struct_size);

/* Create a session on a loaded (not vocab-only) model.  params may be NULL. */
BITNET_API bitnet_status bitnet_session_create(const bitnet_model *m, const bitnet_session_params *params,
                                               bitnet_session **out);
BITNET_API void bitnet_session_free(bitnet_session *s);

/* The message of the most recent failing call on this session, the same text
 * bitnet_last_error() gave on the thread that made it ("" if none).  Valid until the next
 * call on the session. */
BITNET_API const char *bitnet_session_last_error(const bitnet_session *s);

BITNET_API uint32_t bitnet_session_n_ctx(const bitnet_session *s);
/* Tokens currently in the context (the position of the next token). */
BITNET_API uint32_t bitnet_session_n_past(const bitnet_session *s);

/* Clear the context (and re-seed the sampler RNG from params.seed). */
BITNET_API void bitnet_session_reset(bitnet_session *s);
/* Drop every token after the first n_keep (n_keep <= n_past). */
BITNET_API bitnet_status bitnet_session_truncate(bitnet_session *s, uint32_t n_keep);

/* Evaluate n tokens at the current position (any n >= 1; long inputs are processed in
 * batches).  Errors: BITNET_E_INVALID_ARG (token id out of range),
 * BITNET_E_CONTEXT_FULL (n_past + n > n_ctx; nothing is evaluated). */
BITNET_API bitnet_status bitnet_session_eval(bitnet_session *s, const bitnet_token *tokens, size_t n);

/* Logits (n_vocab floats) of token i of the last eval (i = -1: its last token; other i
 * need logits_all).  The pointer stays valid until the next eval, reset or free. */
BITNET_API bitnet_status bitnet_session_logits(const bitnet_session *s, int32_t i, const float **logits);

/* Final hidden state (n_embd floats, after the output norm) of token i of the last
 * eval; needs params.embeddings (except for i = -1, always kept). */
BITNET_API bitnet_status bitnet_session_embeddings(const bitnet_session *s, int32_t i, const float **embd);

/* --- sampling ---------------------------------------------------------------------- */

typedef struct bitnet_sampler_params {
    size_t   struct_size;
    float    temperature;       /* <= 0: greedy (argmax)                        0.8  */
    int32_t  top_k;             /* <= 0: off                                    40   */
    float    top_p;             /* >= 1: off                                    0.95 */
    float    min_p;             /* <= 0: off                                    0.05 */
    float    repeat_penalty;    /* 1: off                                       1.0  */
    int32_t  repeat_last_n;     /* tokens considered by the penalties; -1 = all  64   */
    float    frequency_penalty; /* 0: off                                       0    */
    float    presence_penalty;  /* 0: off                                       0    */
} bitnet_sampler_params;

BITNET_API void bitnet_sampler_default_params(bitnet_sampler_params *p, size_t struct_size);

/* Sample a token from the logits of the last evaluated token with the session's RNG
 * (penalties look at the session's tokens).  Does not evaluate it. */
BITNET_API bitnet_status bitnet_session_sample(bitnet_session *s, const bitnet_sampler_params *sp,
                                               bitnet_token *out);

/* Re-seed the session's RNG. */
BITNET_API void bitnet_session_set_seed(bitnet_session *s, uint64_t seed);

/* --- generation -------------------------------------------------------------------- */

/* Called once per generated token with the text that token completed (complete UTF-8,
 * special tokens omitted, text that may begin a stop string held back until it is
 * known not to; len may be 0).  If generation ends on an end-of-generation token while
 * text is still held back, that text arrives in one last call with token = -1.
 * Return non-zero to stop generation.  The user pointer comes first. */
typedef int (*bitnet_stream_callback)(void *user, bitnet_token token, const char *text, size_t len);

typedef enum bitnet_stop_reason {
    BITNET_STOP_NONE       = 0,
    BITNET_STOP_MAX_TOKENS = 1, /* max_tokens generated                    */
    BITNET_STOP_EOG        = 2, /* an end-of-generation token was sampled  */
    BITNET_STOP_STRING     = 3, /* a stop string appeared in the text      */
    BITNET_STOP_CALLBACK   = 4, /* the callback returned non-zero (or the
                                   caller stopped a generator)             */
    BITNET_STOP_CONTEXT    = 5  /* the context window filled up            */
} bitnet_stop_reason;

typedef struct bitnet_generate_params {
    size_t                  struct_size;
    int32_t                 max_tokens;  /* < 0: until EOG or the context is full   128 */
    const char *const      *stop;        /* stop strings (NUL-terminated), or NULL      */
    size_t                  n_stop;
    int                     ignore_eog;  /* keep going past end-of-generation tokens    */
    bitnet_stream_callback  callback;    /* may be NULL                                 */
    void                   *user;
} bitnet_generate_params;

BITNET_API void bitnet_generate_default_params(bitnet_generate_params *p, size_t struct_size);

/* Evaluate the prompt tokens (may be 0 if the session already holds some), then sample
 * and evaluate up to max_tokens tokens.  Generated ids go to out[0..cap) (out may be
 * NULL), *n_out receives how many were generated, *reason why it stopped (both may be
 * NULL).  An EOG token that stops generation is evaluated into the context (so a chat
 * can continue) but not counted or streamed.  Stopping because of the callback, EOG,
 * a stop string or max_tokens is success; a full context returns BITNET_OK with
 * reason BITNET_STOP_CONTEXT.  This is bitnet_session_eval of the prompt followed by a
 * loop over a bitnet_generator (experimental section) with the callback called per step. */
BITNET_API bitnet_status bitnet_session_generate(bitnet_session *s, const bitnet_token *prompt, size_t n_prompt,
                                                 const bitnet_sampler_params *sp,
                                                 const bitnet_generate_params *gp, bitnet_token *out,
                                                 size_t cap, size_t *n_out, bitnet_stop_reason *reason);

#ifdef __cplusplus
}
#endif

#endif /* BITNET_H */

/* ==================================================================================
 * EXPERIMENTAL API
 *
 * The declarations below are exported by libbitnet.so.0 like the rest, but they are
 * not yet covered by the ABI promise (docs/abi.md): their signatures, structs and
 * semantics may still change in a minor release.  A program opts in by defining
 * BITNET_EXPERIMENTAL before including this header:
 *
 *     #define BITNET_EXPERIMENTAL
 *     #include <bitnet.h>
 *
 * and should then be built against the exact libbitnet version it runs with.  When a
 * declaration has proven itself it moves above this line, and from then on it is
 * stable.  The ABI check (tests/abi/check_abi.sh) ignores everything in this section.
 * ================================================================================== */
#if defined(BITNET_EXPERIMENTAL) && !defined(BITNET_H_EXPERIMENTAL)
#define BITNET_H_EXPERIMENTAL

#ifdef __cplusplus
extern "C" {
#endif

/* --- GGUF: raw metadata values --------------------------------------------------------- */

/* A value already encoded in GGUF form (for nested arrays and tests): `payload` is the
 * bytes that follow the value-type field.  Not validated. */
BITNET_API bitnet_status bitnet_gguf_writer_set_raw(bitnet_gguf_writer *w, const char *key,
                                                    bitnet_gguf_type type, const void *payload,
                                                    size_t size);

/* --- kernel variants: the list ----------------------------------------------------------- */

/* Every kernel variant libbitnet knows (whether or not this build contains it, see
 * bitnet_isa_supported), best first, scalar last; BITNET_ISA_AUTO is not listed.  Writes
 * at most `cap` values to `out` (may be NULL) and returns how many there are. */
BITNET_API size_t bitnet_isa_list(bitnet_isa *out, size_t cap);

/* The variant named `name` ("auto", "scalar", "avx2", ...: bitnet_isa_name's names);
 * BITNET_E_INVALID_ARG naming the valid names for anything else. */
BITNET_API bitnet_status bitnet_isa_from_name(const char *name, bitnet_isa *out);

/* --- batched evaluation ---------------------------------------------------------------
 *
 * A batch evaluates tokens of many sessions of one model in one forward step, reading
 * each weight matrix once for all of them: N sessions decoding together cost about one
 * weight read per step instead of N.  Each session keeps its own KV cache, position and
 * outputs.  Results are exactly those of bitnet_session_eval on each session alone (bit
 * for bit): no result depends on the other tokens of a step.
 *
 *     bitnet_batch_add(b, s1, &tok1, 1, 0);      // queue one token for each session
 *     bitnet_batch_add(b, s2, prompt2, n2, 0);   // or a whole prompt
 *     bitnet_batch_eval(b);                      // one step (or several for long input)
 *     bitnet_session_logits(s1, -1, &l1);        // then read each session as after an eval
 *
 * add() validates everything and copies the tokens; a session may be in one batch at a
 * time, once, and must not be evaluated, reset, truncated or restored while its tokens
 * wait (freeing it removes it from the batch).  eval() evaluates every queued entry in
 * the order added, in steps of at most params.n_tokens tokens, then empties the batch.
 * The batch has its own threads and buffers; a session used only through batches never
 * allocates its own.  A batch, like a session, is used by one thread at a time, and its
 * sessions must not be used by other threads during eval(). */

typedef struct bitnet_batch bitnet_batch;

typedef struct bitnet_batch_params {
    size_t   struct_size;
    uint32_t n_tokens;  /* most tokens evaluated per forward step (512); larger batches
                           take several steps                                          */
    uint32_t n_threads; /* worker threads; 0 = number of online CPUs                     */
} bitnet_batch_params;

BITNET_API void bitnet_batch_default_params(bitnet_batch_params *p, size_t struct_size);

/* A batch for sessions of model m.  params may be NULL for defaults. */
BITNET_API bitnet_status bitnet_batch_create(const bitnet_model *m, const bitnet_batch_params *params,
                                             bitnet_batch **out);
BITNET_API void bitnet_batch_free(bitnet_batch *b);

/* Flags for bitnet_batch_add. */
#define BITNET_BATCH_LOGITS_ALL 1u /* keep the logits of every token of this entry (as
                                      session params.logits_all does for every eval)   */
#define BITNET_BATCH_NO_LOGITS  2u /* compute no logits for this entry (embeddings only:
                                      the output layer is skipped; bitnet_session_logits
                                      then fails until the next eval)                   */

/* Queue n >= 1 tokens to be evaluated into session s at its current position.
 * Errors (the session's message is set too): BITNET_E_INVALID_ARG (token id out of
 * range, the session already in a batch, another model), BITNET_E_CONTEXT_FULL
 * (n_past + n > n_ctx), BITNET_E_NOMEM.  Nothing is queued on error. */
BITNET_API bitnet_status bitnet_batch_add(bitnet_batch *b, bitnet_session *s, const bitnet_token *tokens, size_t n,
                                          uint32_t flags);

/* Tokens currently queued. */
BITNET_API size_t bitnet_batch_n_tokens(const bitnet_batch *b);

/* Evaluate everything queued, then empty the batch.  Afterwards each session holds its
 * tokens and outputs exactly as after bitnet_session_eval(s, tokens, n).  Errors:
 * BITNET_E_NOMEM, BITNET_E_CONTEXT_FULL (a session was changed after add); on error
 * no session's context changes (n_past stays) and their last logits are dropped. */
BITNET_API bitnet_status bitnet_batch_eval(bitnet_batch *b);

/* Drop everything queued without evaluating it. */
BITNET_API void bitnet_batch_clear(bitnet_batch *b);

/* --- profiling ------------------------------------------------------------------------
 *
 * Where the time of the forward pass goes, per kind of work: wall time measured on the
 * calling thread around each piece (parallel pieces include waiting for the slowest
 * thread).  Off by default; on, it costs a clock read per piece (about 20 per layer). */

typedef struct bitnet_profile {
    size_t   struct_size;
    uint64_t steps;          /* forward steps profiled                                      */
    uint64_t tokens;         /* tokens evaluated in them                                    */
    uint64_t ns_total;       /* their wall time; the fields below add up to it              */
    uint64_t ns_embed;       /* embedding lookups                                           */
    uint64_t ns_token_ops;   /* per-token work between the matmuls: norms, activation
                                quantization, RoPE, KV stores, FFN activation, residuals    */
    uint64_t ns_qkv;         /* the Q, K and V projections                                  */
    uint64_t ns_attention;   /* attention over the KV cache                                 */
    uint64_t ns_attn_out;    /* the attention output projection                             */
    uint64_t ns_ffn_gate_up; /* the FFN gate and up projections                             */
    uint64_t ns_ffn_down;    /* the FFN down projection                                     */
    uint64_t ns_output;      /* the output norm and the output layer (logits)               */
} bitnet_profile;

/* Start (counters reset) or stop profiling the session's own evaluations. */
BITNET_API void bitnet_session_set_profiling(bitnet_session *s, int on);
/* The counters so far, filled like a params struct (the first struct_size bytes). */
BITNET_API void bitnet_session_get_profile(const bitnet_session *s, bitnet_profile *p, size_t struct_size);
/* The same for the steps of a batch. */
BITNET_API void bitnet_batch_set_profiling(bitnet_batch *b, int on);
BITNET_API void bitnet_batch_get_profile(const bitnet_batch *b, bitnet_profile *p, size_t struct_size);

/* --- copying a session ----------------------------------------------------------------- */

/* Make dst hold exactly what src holds: its tokens, their KV cache rows, the last
 * token's logits and embedding, and the sampler RNG (a fork: both can then continue
 * independently).  Same model and KV type; dst's n_ctx must hold src's tokens
 * (BITNET_E_CONTEXT_FULL otherwise).  Costs a memory copy of the cache rows in use,
 * no evaluation. */
BITNET_API bitnet_status bitnet_session_copy(bitnet_session *dst, const bitnet_session *src);

/* --- beam search ------------------------------------------------------------------------- */

/* Beam search: evaluate the prompt, then keep the n_beams most probable continuations
 * (sum of log-probabilities) for up to max_tokens tokens or until every beam ended with
 * an EOG token; writes the best sequence (without the prompt) to out.  The session's
 * context afterwards holds the prompt followed by the best sequence. */
BITNET_API bitnet_status bitnet_session_beam_search(bitnet_session *s, const bitnet_token *prompt,
                                                    size_t n_prompt, uint32_t n_beams, int32_t max_tokens,
                                                    bitnet_token *out, size_t cap, size_t *n_out);

/* --- state --------------------------------------------------------------------------- */

/* Serialize the session's state (tokens, KV cache rows in use, RNG) to buf.  The blob
 * is tied to the model it came from and the session's KV type. */
BITNET_API bitnet_status bitnet_session_state_save(const bitnet_session *s, void *buf, size_t cap,
                                                   size_t *n_bytes);
/* Restore a state saved from a session of the same model (BITNET_E_FORMAT otherwise). */
BITNET_API bitnet_status bitnet_session_state_load(bitnet_session *s, const void *buf, size_t size);

/* --- step-wise generation, prompts that reuse the KV cache ------------------------------ */

/* The number of leading tokens of tokens[0..n) that the session's context already holds
 * (0 when tokens is NULL). */
BITNET_API size_t bitnet_session_common_prefix(const bitnet_session *s, const bitnet_token *tokens, size_t n);

/* Make the context hold exactly tokens[0..n), evaluating only what it does not hold yet:
 * the longest common prefix of tokens and the context is kept, the rest of the context
 * is dropped (as by bitnet_session_truncate) and the remaining tokens are evaluated.  A
 * chat that renders the whole conversation every turn, or a caller re-sending a growing
 * prompt, evaluates only the new part.  Unlike bitnet_session_eval, which appends at the
 * current position, `tokens` is the whole context from position 0.
 * Afterwards the logits of tokens[n-1] are current (bitnet_session_logits(s, -1)): the
 * last token is evaluated again when the context already holds all of tokens but that
 * token's logits are gone (after a truncate); nothing is evaluated when the context is
 * exactly tokens and its logits are current.  Logits of earlier tokens (logits_all) and
 * embeddings cover only the tokens this call evaluated.  *n_evaluated (may be NULL)
 * receives how many tokens were evaluated.
 * Errors that leave the session unchanged: BITNET_E_INVALID_ARG (tokens NULL, n = 0, an
 * id outside the vocabulary), BITNET_E_CONTEXT_FULL (n > n_ctx).  After another error
 * (out of memory) the context may hold only the common prefix. */
BITNET_API bitnet_status bitnet_session_eval_prompt(bitnet_session *s, const bitnet_token *tokens, size_t n,
                                                    size_t *n_evaluated);

/* A step-wise generator, in the spirit of sqlite3_step: create it on a session, call
 * bitnet_generator_next for one token at a time, free it.  bitnet_session_generate is a
 * loop over it (same tokens, text, stop strings and end-of-generation handling).
 *
 *     bitnet_generator *g = NULL;
 *     bitnet_generator_step step;
 *     if (bitnet_generator_create(s, &sp, &gp, prompt, n_prompt, &g) == BITNET_OK) {
 *         while (bitnet_generator_next(g, &step) == BITNET_OK) {
 *             fwrite(step.text, 1, step.len, stdout);
 *             if (step.reason != BITNET_STOP_NONE) break;     // the end
 *         }
 *         bitnet_generator_free(g);
 *     }
 *
 * Steps.  A successful next returns either one token (step.token >= 0, reason
 * BITNET_STOP_NONE) with the text it completed, or the end of generation (token -1,
 * reason says why).  The text follows bitnet_stream_callback's rules: complete UTF-8,
 * special tokens omitted, text that may begin a stop string held back until it is known
 * not to.  The token that completes a stop string carries the text before the stop
 * string; the next call returns the end (BITNET_STOP_STRING).  A token known in advance
 * to be the last (max_tokens, the context about to fill) carries everything still held
 * back.  When an end-of-generation token ends generation, the end step carries the text
 * that was still held back (often none).  After the end, next keeps returning it.
 * step.text is NUL-terminated, never NULL, and valid until the next call on the
 * generator.  The generate params' callback and user are not used.
 *
 * Prompt.  prompt[0..n_prompt) is the whole context generation continues from: the first
 * next evaluates it with bitnet_session_eval_prompt, so what the session already holds
 * as a common prefix is not evaluated again.  Without a prompt, generation continues
 * the session's context (which must not be empty); when its last token's logits are
 * current the first next just samples, otherwise it evaluates that token again.
 * bitnet_generator_create evaluates nothing; it copies the prompt and the stop strings.
 *
 * Evaluation contract.  Every token a step returns must be in the context before the
 * following next.  The caller may evaluate it itself (bitnet_session_eval, or a batched
 * evaluation of many sessions); next then only samples.  Otherwise next evaluates it
 * first.  next tells the two apart from the context: one token longer than when the
 * token was returned, with that token last and its logits current, means evaluated; the
 * same length means not.  Anything else (the context truncated, reset or extended by
 * other tokens in between) is BITNET_E_INVALID_ARG.  An end-of-generation token that
 * ends generation is evaluated by next itself (so a chat can continue after it) and is
 * not returned.  The last token returned before the end is evaluated by the call that
 * returns the end: call next until the end to leave every returned token in the context.
 *
 * The session must outlive the generator, which uses it only inside its own calls; use
 * one generator per session at a time.  Between calls the caller may read the session
 * (logits, n_past, ...) and evaluate the token just returned, nothing else.  A failing
 * next ends generation: later calls fail the same way. */
typedef struct bitnet_generator bitnet_generator;

typedef struct bitnet_generator_step {
    bitnet_token       token;  /* the generated token; -1 at the end                   */
    const char        *text;   /* the text it completed (NUL-terminated, never NULL)   */
    size_t             len;    /* bytes of text, may be 0                              */
    bitnet_stop_reason reason; /* BITNET_STOP_NONE with a token; at the end: why       */
} bitnet_generator_step;

/* sp and gp may be NULL (defaults).  Checks the params and the prompt (ids, length
 * against n_ctx: BITNET_E_CONTEXT_FULL), and that there is something to continue from. */
BITNET_API bitnet_status bitnet_generator_create(bitnet_session *s, const bitnet_sampler_params *sp,
                                                 const bitnet_generate_params *gp, const bitnet_token *prompt,
                                                 size_t n_prompt, bitnet_generator **out);

/* Produce the next step (see above).  Errors: those of evaluation and sampling, and
 * BITNET_E_INVALID_ARG when the session changed against the contract. */
BITNET_API bitnet_status bitnet_generator_next(bitnet_generator *g, bitnet_generator_step *step);

/* End generation early (the consumer has seen enough).  Does no work itself: the next
 * call of next evaluates the last token returned (unless the caller has), drops text
 * still held back and returns the end with BITNET_STOP_CALLBACK -- or with the reason
 * generation was already ending for (a stop string just completed).  Stopping before the
 * first next evaluates nothing, not even the prompt.  No effect after the end. */
BITNET_API void bitnet_generator_stop(bitnet_generator *g);

/* Counters of a generator, filled like a params struct: the library writes the first
 * struct_size bytes (pass sizeof *stats). */
typedef struct bitnet_generator_stats {
    size_t struct_size;
    size_t n_prompt;        /* prompt tokens given to bitnet_generator_create             */
    size_t n_prompt_cached; /* of those, found in the session and not evaluated again      */
    size_t n_generated;     /* tokens returned by next                                     */
    size_t n_evaluated;     /* tokens next evaluated itself: the prompt's new part, returned
                               tokens the caller left to it, an ending EOG token, a last
                               token evaluated again for its logits, drafted tokens verified */
    size_t n_drafted;       /* speculation: tokens drafted and verified by the target model  */
    size_t n_accepted;      /* of those, accepted (returned without a step of their own)     */
    size_t n_spec_steps;    /* verification steps (one forward step each)                    */
} bitnet_generator_stats;
BITNET_API void bitnet_generator_get_stats(const bitnet_generator *g, bitnet_generator_stats *stats,
                                           size_t struct_size);

/* Free a generator (NULL is fine).  Evaluates nothing: a token returned last and not
 * evaluated by the caller stays out of the context. */
BITNET_API void bitnet_generator_free(bitnet_generator *g);

/* --- speculative and lookup decoding ----------------------------------------------------
 *
 * Generating a token reads every weight once; evaluating k tokens in one forward step
 * costs little more.  With speculation, generators on a session draft a few tokens
 * ahead from a cheap source, evaluate the token just sampled and the drafts in one step
 * (logits of every position), and keep the drafts the target model agrees with:
 *   - BITNET_SPEC_LOOKUP: the draft is what followed the most recent earlier occurrence
 *     of the context's last n tokens (ngram_max down to ngram_min) in the prompt and the
 *     text generated so far (prompt lookup decoding: no second model);
 *   - BITNET_SPEC_DRAFT: a smaller model with the same vocabulary drafts in its own
 *     session (`draft`), which the generator keeps in step with the target's context.
 * What is generated does not change.  Greedy sampling (temperature <= 0): a draft is
 * kept while it equals the target's choice, so the tokens are those of plain decoding
 * (bit for bit on the scalar kernels; the vector kernels' results may differ in the
 * last bits between a one-token and a k-token step, so a near tie can break the other
 * way, as with any change of batch size).  Sampling: the speculative sampling rule
 * (accept draft x with probability min(1, p(x)/q(x)), otherwise sample from
 * max(0, p - q) renormalised; for lookup drafts q is a point mass), so every token has
 * exactly the target's distribution p (after the sampler chain), though a given seed
 * gives other tokens than without speculation.  Rejected drafts leave the KV cache
 * (bitnet_session_truncate).  The draft length adapts: it grows while drafts are
 * accepted, shrinks to what was accepted, and after repeated failures drafting pauses
 * for a growing number of tokens (so random text costs about nothing).
 * The session's context after generation is what it is without speculation (every
 * returned token, logits of the last current).  The caller must not evaluate returned
 * tokens itself while speculation is on (they may already be in the context): leave
 * that to next (BITNET_E_INVALID_ARG otherwise), or ask bitnet_generator_draft (below)
 * what to evaluate. */

typedef enum bitnet_spec_mode {
    BITNET_SPEC_NONE   = 0,
    BITNET_SPEC_LOOKUP = 1, /* n-gram lookup in the context                 */
    BITNET_SPEC_DRAFT  = 2  /* a draft model's session                      */
} bitnet_spec_mode;

typedef struct bitnet_spec_params {
    size_t          struct_size;
    int32_t         mode;        /* a bitnet_spec_mode                             NONE */
    int32_t         n_draft_max; /* most tokens drafted per step (1..64)              8 */
    int32_t         n_draft_min; /* fewest: shorter drafts are not verified (0..max)  0 */
    int32_t         ngram_min;   /* LOOKUP: shortest n-gram matched (1..ngram_max)    1 */
    int32_t         ngram_max;   /* LOOKUP: longest (1..16)                           4 */
    float           p_min;       /* DRAFT: stop drafting when the draft model's
                                    probability of its greedy choice is below  0.5 */
    bitnet_session *draft;       /* DRAFT: a session of the draft model (same
                                    vocabulary; the generator owns its context while
                                    it runs)                                    NULL */
} bitnet_spec_params;

BITNET_API void bitnet_spec_default_params(bitnet_spec_params *p, size_t struct_size);

/* Make generators created on s from now on (bitnet_generator_create, and so
 * bitnet_session_generate) speculate as p says (NULL or mode NONE: off).  The draft
 * session must outlive those generators.  Errors: BITNET_E_INVALID_ARG (a value out of
 * range, DRAFT without a draft session or with s itself), BITNET_E_UNSUPPORTED (the
 * draft model's vocabulary differs from s's model's: size or any token's text). */
BITNET_API bitnet_status bitnet_session_set_speculation(bitnet_session *s, const bitnet_spec_params *p);

/* Totals over the generators run on s since the last set_speculation (filled like a
 * params struct; the n_drafted, n_accepted and n_spec_steps fields of
 * bitnet_generator_stats, the others zero). */
BITNET_API void bitnet_session_get_spec_stats(const bitnet_session *s, bitnet_generator_stats *stats,
                                              size_t struct_size);

/* Speculation with the caller evaluating (a batched server: every session's token and
 * draft verified in one bitnet_batch_eval).  After next returned a token (step.token
 * >= 0), this fills tokens[0..*n_tokens) with what the caller is to evaluate into the
 * session before the following next:
 *   *n_tokens == 0: nothing -- the token is already in the context (decided by an
 *                   earlier verification), or the caller has evaluated it;
 *   *n_tokens == 1: the token alone (tokens[0]), as without speculation;
 *   *n_tokens  > 1: the token, then a draft of *n_tokens - 1 tokens, evaluated in one
 *                   eval keeping every token's logits (BITNET_BATCH_LOGITS_ALL, or a
 *                   session with params.logits_all).
 * The following next verifies the draft with the acceptance rule above, rolls rejected
 * drafts out of the KV cache and returns the decided tokens one by one (for those the
 * next call here says 0).  Evaluating only tokens[0] is allowed too (the draft is then
 * dropped); other tokens, or the draft without every row's logits, are
 * BITNET_E_INVALID_ARG at next.  Drafts are at most cap - 1 tokens (cap >= 1, else
 * BITNET_E_BUFFER_TOO_SMALL).  Without speculation on the session the answer is the
 * token alone.  Nothing to evaluate before the first next or after the end (0). */
BITNET_API bitnet_status bitnet_generator_draft(bitnet_generator *g, bitnet_token *tokens, size_t cap,
                                                size_t *n_tokens);

/* --- chat: render and tokenize a conversation safely ------------------------------------ */

typedef struct bitnet_chat_params {
    size_t      struct_size;
    const char *tmpl;                  /* NULL: the model's template; else as in bitnet_chat_apply */
    int         add_generation_prompt; /* end with the assistant's turn header          default 1 */
    uint32_t    flags;                 /* BITNET_TOKENIZE_ADD_BOS or 0        default ADD_BOS     */
    size_t      n_prefix;              /* see bitnet_chat_tokenize                    default 0   */
} bitnet_chat_params;

BITNET_API void bitnet_chat_default_params(bitnet_chat_params *p, size_t struct_size);

/* Render a conversation with the chat template (as bitnet_chat_apply) and tokenize it so
 * that text from the messages -- roles and contents -- never becomes a special token:
 * "<|eot_id|>" in a user message is tokenized as ordinary text.  Only the template's
 * own text is read as special tokens (docs/chat.md gives the exact rule).  params may be
 * NULL (the defaults).
 *   BOS: with BITNET_TOKENIZE_ADD_BOS it is prepended when the model asks for one and
 *        the rendering does not already begin with it; EOS is never appended.
 *   n_prefix > 0: the caller's context already holds msgs[0..n_prefix) rendered without a
 *        generation prompt (earlier turns, ending with the model's answer).  Only what the
 *        remaining messages add is returned, tokenized as a text of its own, without BOS
 *        (llama-cli continues a conversation this way).  When the template renders the
 *        first n_prefix messages differently once more follow, BITNET_E_NOT_FOUND: tokenize
 *        the whole conversation instead.
 * Errors as bitnet_chat_apply; BITNET_E_INVALID_UTF8 for a role or content that is not
 * UTF-8. */
BITNET_API bitnet_status bitnet_chat_tokenize(const bitnet_model *m, const bitnet_chat_message *msgs,
                                              size_t n_msgs, const bitnet_chat_params *params,
                                              bitnet_token *tokens, size_t cap, size_t *n_tokens);

/* --- pooled sentence embeddings -------------------------------------------------------
 *
 * An embedding model (the BitNet embedding models: qwen3 and gemma3 files with an
 * <arch>.pooling_type key) maps a text to one vector: the final hidden states of its
 * tokens (after the output norm, as bitnet_session_embeddings returns them) are pooled
 * and normalised, as llama.cpp's llama-embedding and server compute them.
 *
 *     bitnet_embed_params ep;
 *     bitnet_embed_default_params(&ep, sizeof ep);      // the model's pooling, L2
 *     float *v = malloc(n_embd * sizeof *v);
 *     bitnet_session_embed_text(s, "query: what is BitNet?", len, &ep, v, n_embd, NULL);
 *
 * These calls work for any model (a generative one has no pooling key: mean). */

typedef enum bitnet_pooling {
    BITNET_POOLING_MODEL = -1, /* the model's (bitnet_model_pooling)                         */
    BITNET_POOLING_NONE  = 0,  /* one vector per token: refused by the pooled calls          */
    BITNET_POOLING_MEAN  = 1,  /* the mean of every token's hidden state                     */
    BITNET_POOLING_CLS   = 2,  /* the first token's                                          */
    BITNET_POOLING_LAST  = 3,  /* the last token's (the BitNet embedding models)             */
    BITNET_POOLING_RANK  = 4   /* a reranker's classification head: not supported            */
} bitnet_pooling;

/* The pooling the model's file names (<arch>.pooling_type), BITNET_POOLING_MEAN when it
 * names none. */
BITNET_API bitnet_pooling bitnet_model_pooling(const bitnet_model *m);

typedef struct bitnet_embed_params {
    size_t  struct_size;
    int32_t pooling;   /* a bitnet_pooling (BITNET_POOLING_MODEL)                             */
    int32_t normalize; /* as llama-embedding's --embd-normalize: -1 none, 0 max-abs scaled to
                          the int16 range, 2 Euclidean (L2, the default), p in 1..64 the
                          p-norm                                                            */
} bitnet_embed_params;

BITNET_API void bitnet_embed_default_params(bitnet_embed_params *p, size_t struct_size);

/* Embed one input: tokens[0..n) are evaluated as a sequence of their own (the session's
 * context is dropped first; afterwards it holds exactly these tokens), the hidden states
 * pooled and normalised into out[0..n_embd) (cap >= n_embd floats).  The tokens are used
 * as given: nothing is added (bitnet_session_embed_text adds what the model asks for).
 * No logits are computed (bitnet_session_logits fails afterwards);
 * bitnet_session_embeddings(s, -1) gives the last token's hidden state.  params may be
 * NULL.  Errors: BITNET_E_INVALID_ARG (NULL arguments, n = 0, an id outside the
 * vocabulary, pooling NONE, a bad normalize, out too small, the session waiting in a
 * batch), BITNET_E_UNSUPPORTED (rank pooling), BITNET_E_CONTEXT_FULL (n > n_ctx),
 * BITNET_E_NOMEM. */
BITNET_API bitnet_status bitnet_session_embed(bitnet_session *s, const bitnet_token *tokens, size_t n,
                                              const bitnet_embed_params *params, float *out, size_t cap);

/* Tokenize len bytes of UTF-8 text as llama-embedding does (BOS, and EOS when the
 * vocabulary's add_eos_token says so -- the Qwen3 embedding model pools that EOS --,
 * special-token texts recognised) and embed it.  *n_tokens (may be NULL) receives the
 * number of tokens embedded. */
BITNET_API bitnet_status bitnet_session_embed_text(bitnet_session *s, const char *text, size_t len,
                                                   const bitnet_embed_params *params, float *out, size_t cap,
                                                   size_t *n_tokens);

/* Pool the outputs of the session's last evaluation (bitnet_session_eval or a
 * bitnet_batch step) into out, for callers that evaluate many inputs in one batch: each
 * input in a session of its own, reset first.  Last-token pooling works after any eval;
 * mean and CLS need every token's hidden state of the whole context from one eval
 * (session params.embeddings, the input evaluated from position 0 in one call or batch
 * entry), else BITNET_E_INVALID_ARG. */
BITNET_API bitnet_status bitnet_session_pool(const bitnet_session *s, const bitnet_embed_params *params,
                                             float *out, size_t cap);

/* --- screened output layer (docs/performance.md) ------------------------------------------
 *
 * A model whose output layer is F16 can keep an int8 copy of it (64-element blocks, one
 * scale each; 1.03 bytes per weight instead of 2) and rank the vocabulary with it.
 *
 * BITNET_SCREEN_EXACT: after bitnet_session_eval the last token's logits are screened:
 * bitnet_session_sample and generation re-score from the F16 weights every token whose
 * screened logit could still reach the sampler's cut (a proved per-logit error bound,
 * docs/spec.md), so they draw exactly what the full F16 layer gives, for greedy
 * decoding, top_k > 0, and min_p with top_p >= 1 (any penalties); other settings and
 * bitnet_session_logits compute the full F16 layer on demand (its usual result, bit for
 * bit).  Steps with several logits rows (batches of several sessions, logits_all)
 * compute the full layer.
 * BITNET_SCREEN_INT8 (lossy): logits come from the int8 copy alone, everywhere.
 * BITNET_SCREEN_INT6 (lossy): the same with 6-bit levels (-31..31, sigma = max|w| / 31),
 * stored one per byte like INT8 (no memory saved): what 6 bits cost in accuracy.
 * BITNET_SCREEN_OFF frees the copy.  Call it before creating sessions on the model (it
 * is not safe while a session of the model runs).  BITNET_E_UNSUPPORTED when the output
 * layer is not F16 or the model soft-caps its logits. */
typedef enum bitnet_screen_mode {
    BITNET_SCREEN_OFF   = 0,
    BITNET_SCREEN_EXACT = 1,
    BITNET_SCREEN_INT8  = 2,
    BITNET_SCREEN_INT6  = 3
} bitnet_screen_mode;

BITNET_API bitnet_status bitnet_model_set_output_screening(bitnet_model *m, bitnet_screen_mode mode);

/* Counters of a session since it was made: evals whose last logits were screened,
 * tokens re-scored from F16 when sampling them, full F16 passes computed on demand.
 * Any pointer may be NULL. */
BITNET_API void bitnet_session_screen_stats(const bitnet_session *s, uint64_t *n_screened, uint64_t *n_rescored,
                                            uint64_t *n_full);

#ifdef __cplusplus
}
#endif

#endif /* BITNET_EXPERIMENTAL */
