/* Generated from include/bitnet.h by bindings/python/gen_cdef.py: do not edit. */
#define BITNET_TOKENIZE_ADD_BOS 1
#define BITNET_TOKENIZE_PARSE_SPECIAL 2
#define BITNET_TOKENIZE_NO_ADD_EOS 4
#define BITNET_DETOK_RENDER_SPECIAL 1
#define BITNET_DETOK_KEEP_LEADING_SPACE 2
#define BITNET_BATCH_LOGITS_ALL 1
#define BITNET_BATCH_NO_LOGITS 2
const char *bitnet_version(void);
uint32_t bitnet_version_number(void);
typedef enum bitnet_status {
    BITNET_OK                  = 0,
    BITNET_E_INVALID_ARG       = -1,  
    BITNET_E_NOMEM             = -2,  
    BITNET_E_IO                = -3,  
    BITNET_E_FORMAT            = -4,  
    BITNET_E_UNSUPPORTED       = -5,  
    BITNET_E_NOT_FOUND         = -6,  
    BITNET_E_TYPE              = -7,  
    BITNET_E_BUFFER_TOO_SMALL  = -8,  
    BITNET_E_CONTEXT_FULL      = -9,  
    BITNET_E_CANCELLED         = -10, 
    BITNET_E_INVALID_UTF8      = -11, 
    BITNET_E_INTERNAL          = -12  
} bitnet_status;
const char *bitnet_strerror(bitnet_status status);
const char *bitnet_last_error(void);
typedef enum bitnet_log_level {
    BITNET_LOG_ERROR = 0,
    BITNET_LOG_WARN  = 1,
    BITNET_LOG_INFO  = 2,
    BITNET_LOG_DEBUG = 3
} bitnet_log_level;
typedef void (*bitnet_log_callback)(bitnet_log_level level, const char *message, void *user);
void bitnet_set_log_callback(bitnet_log_callback cb, void *user, bitnet_log_level max_level);
typedef enum bitnet_isa {
    BITNET_ISA_AUTO   = 0,
    BITNET_ISA_SCALAR = 1,  
    BITNET_ISA_AVX2   = 2,  
    BITNET_ISA_AVX512 = 3,  
    BITNET_ISA_NEON   = 4,  
    BITNET_ISA_AMX    = 5,  
    BITNET_ISA_AVXVNNI = 6  
} bitnet_isa;
const char *bitnet_cpu_features(void);
int bitnet_isa_supported(bitnet_isa isa);
const char *bitnet_isa_name(bitnet_isa isa);
typedef struct bitnet_gguf bitnet_gguf;
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
const char *bitnet_type_name(bitnet_type type);
int bitnet_type_is_supported(bitnet_type type);
uint64_t bitnet_type_row_size(bitnet_type type, int64_t n);
bitnet_status bitnet_gguf_open(const char *path, bitnet_gguf **out);
bitnet_status bitnet_gguf_open_memory(const void *data, size_t size, bitnet_gguf **out);
void bitnet_gguf_close(bitnet_gguf *g);
uint32_t bitnet_gguf_version(const bitnet_gguf *g);   
uint64_t bitnet_gguf_alignment(const bitnet_gguf *g); 
uint64_t bitnet_gguf_data_offset(const bitnet_gguf *g); 
uint64_t bitnet_gguf_file_size(const bitnet_gguf *g);
typedef struct bitnet_gguf_value {
    bitnet_gguf_type type;      
    bitnet_gguf_type elem_type; 
    uint64_t         count;     
    uint64_t         ref;       
} bitnet_gguf_value;
uint64_t bitnet_gguf_n_kv(const bitnet_gguf *g);
bitnet_status bitnet_gguf_kv(const bitnet_gguf *g, uint64_t i, const char **key,
                                        bitnet_gguf_value *value);
int64_t bitnet_gguf_find_key(const bitnet_gguf *g, const char *key);
bitnet_status bitnet_gguf_array_get(const bitnet_gguf *g, const bitnet_gguf_value *array,
                                               uint64_t j, bitnet_gguf_value *elem);
bitnet_status bitnet_gguf_array_data(const bitnet_gguf *g, const bitnet_gguf_value *array,
                                                const void **data);
bitnet_status bitnet_gguf_value_int(const bitnet_gguf *g, const bitnet_gguf_value *v, int64_t *out);
bitnet_status bitnet_gguf_value_uint(const bitnet_gguf *g, const bitnet_gguf_value *v, uint64_t *out);
bitnet_status bitnet_gguf_value_float(const bitnet_gguf *g, const bitnet_gguf_value *v, double *out);
bitnet_status bitnet_gguf_value_bool(const bitnet_gguf *g, const bitnet_gguf_value *v, int *out);
bitnet_status bitnet_gguf_value_str(const bitnet_gguf *g, const bitnet_gguf_value *v,
                                               const char **data, uint64_t *len);
const char *bitnet_gguf_type_name(bitnet_gguf_type type);
uint64_t bitnet_gguf_n_tensors(const bitnet_gguf *g);
int64_t bitnet_gguf_find_tensor(const bitnet_gguf *g, const char *name);
const char *bitnet_gguf_tensor_name(const bitnet_gguf *g, uint64_t i);
bitnet_type bitnet_gguf_tensor_type(const bitnet_gguf *g, uint64_t i);
uint32_t bitnet_gguf_tensor_n_dims(const bitnet_gguf *g, uint64_t i);
int64_t bitnet_gguf_tensor_dim(const bitnet_gguf *g, uint64_t i, uint32_t d);
uint64_t bitnet_gguf_tensor_n_elements(const bitnet_gguf *g, uint64_t i);
uint64_t bitnet_gguf_tensor_offset(const bitnet_gguf *g, uint64_t i);
uint64_t bitnet_gguf_tensor_size(const bitnet_gguf *g, uint64_t i);
const void *bitnet_gguf_tensor_data(const bitnet_gguf *g, uint64_t i);
bitnet_status bitnet_gguf_tensor_to_f32(const bitnet_gguf *g, uint64_t i, int64_t row0,
                                                   int64_t n_rows, float *dst);
typedef struct bitnet_gguf_writer bitnet_gguf_writer;
bitnet_status bitnet_gguf_writer_create(bitnet_gguf_writer **out);
void bitnet_gguf_writer_free(bitnet_gguf_writer *w);
bitnet_status bitnet_gguf_writer_set_alignment(bitnet_gguf_writer *w, uint32_t alignment);
bitnet_status bitnet_gguf_writer_set_scalar(bitnet_gguf_writer *w, const char *key,
                                                       bitnet_gguf_type type, const void *value);
bitnet_status bitnet_gguf_writer_set_str(bitnet_gguf_writer *w, const char *key,
                                                    const char *s, size_t len);
bitnet_status bitnet_gguf_writer_set_array(bitnet_gguf_writer *w, const char *key,
                                                      bitnet_gguf_type elem_type, const void *data,
                                                      uint64_t n);
bitnet_status bitnet_gguf_writer_set_str_array(bitnet_gguf_writer *w, const char *key,
                                                          const char *const *strs, const size_t *lens,
                                                          uint64_t n);
bitnet_status bitnet_gguf_writer_add_tensor(bitnet_gguf_writer *w, const char *name,
                                                       uint32_t n_dims, const int64_t *ne,
                                                       bitnet_type type);
bitnet_status bitnet_gguf_writer_begin(bitnet_gguf_writer *w, const char *path);
bitnet_status bitnet_gguf_writer_write(bitnet_gguf_writer *w, const void *data, size_t size);
bitnet_status bitnet_gguf_writer_finish(bitnet_gguf_writer *w);
bitnet_status bitnet_quantize(bitnet_type type, const float *src, int64_t n_rows,
                                         int64_t n_per_row, void *dst, size_t dst_size, size_t *written);
typedef struct bitnet_model bitnet_model;
typedef int32_t bitnet_token;
typedef struct bitnet_model_params {
    size_t      struct_size;  
    int         vocab_only;   
    bitnet_isa  isa;          
    const char *arch;         
    const char *pretokenizer; 
    int         use_mmap;     
} bitnet_model_params;
void bitnet_model_default_params(bitnet_model_params *p, size_t struct_size);
bitnet_status bitnet_model_load(const char *path, const bitnet_model_params *params,
                                           bitnet_model **out);
void bitnet_model_free(bitnet_model *m);
const bitnet_gguf *bitnet_model_gguf(const bitnet_model *m);
const char *bitnet_model_arch(const bitnet_model *m);
const char *bitnet_model_desc(const bitnet_model *m);
typedef enum bitnet_model_info {
    BITNET_INFO_N_VOCAB     = 0,
    BITNET_INFO_N_CTX_TRAIN = 1,
    BITNET_INFO_N_EMBD      = 2,
    BITNET_INFO_N_LAYER     = 3,
    BITNET_INFO_N_HEAD      = 4,
    BITNET_INFO_N_HEAD_KV   = 5,
    BITNET_INFO_N_FF        = 6,
    BITNET_INFO_HEAD_DIM    = 7,
    BITNET_INFO_N_PARAMS    = 8,  
    BITNET_INFO_SIZE_BYTES  = 9,  
    BITNET_INFO_WEIGHT_TYPE = 10, 
    BITNET_INFO_ISA         = 11  
} bitnet_model_info;
int64_t bitnet_model_get_info(const bitnet_model *m, bitnet_model_info what);
bitnet_token bitnet_token_bos(const bitnet_model *m);
bitnet_token bitnet_token_eos(const bitnet_model *m);
bitnet_token bitnet_token_eot(const bitnet_model *m);
int bitnet_token_is_eog(const bitnet_model *m, bitnet_token t);
const char *bitnet_token_text(const bitnet_model *m, bitnet_token t);
bitnet_status bitnet_tokenize(const bitnet_model *m, const char *text, size_t len,
                                         uint32_t flags, bitnet_token *tokens, size_t cap,
                                         size_t *n_tokens);
bitnet_status bitnet_detokenize(const bitnet_model *m, const bitnet_token *tokens,
                                           size_t n_tokens, uint32_t flags, char *buf, size_t cap,
                                           size_t *n_bytes);
typedef struct bitnet_decoder bitnet_decoder;
bitnet_status bitnet_decoder_create(const bitnet_model *m, uint32_t flags, bitnet_decoder **out);
void bitnet_decoder_free(bitnet_decoder *d);
bitnet_status bitnet_decoder_push(bitnet_decoder *d, bitnet_token t, char *buf, size_t cap,
                                             size_t *n_bytes);
bitnet_status bitnet_decoder_flush(bitnet_decoder *d, char *buf, size_t cap, size_t *n_bytes);
typedef struct bitnet_chat_message {
    const char *role;    
    const char *content; 
} bitnet_chat_message;
bitnet_status bitnet_chat_apply(const bitnet_model *m, const char *tmpl,
                                           const bitnet_chat_message *msgs, size_t n_msgs,
                                           int add_generation_prompt, char *buf, size_t cap,
                                           size_t *n_bytes);
typedef struct bitnet_session bitnet_session;
typedef enum bitnet_kv_type {
    BITNET_KV_F16 = 0,
    BITNET_KV_F32 = 1
} bitnet_kv_type;
typedef struct bitnet_session_params {
    size_t         struct_size;
    uint32_t       n_ctx;      
    uint32_t       n_threads;  
    uint32_t       n_batch;    
    bitnet_kv_type kv_type;    
    int            logits_all; 
    int            embeddings; 
    uint64_t       seed;       
} bitnet_session_params;
void bitnet_session_default_params(bitnet_session_params *p, size_t struct_size);
bitnet_status bitnet_session_create(const bitnet_model *m, const bitnet_session_params *params,
                                               bitnet_session **out);
void bitnet_session_free(bitnet_session *s);
const char *bitnet_session_last_error(const bitnet_session *s);
uint32_t bitnet_session_n_ctx(const bitnet_session *s);
uint32_t bitnet_session_n_past(const bitnet_session *s);
void bitnet_session_reset(bitnet_session *s);
bitnet_status bitnet_session_truncate(bitnet_session *s, uint32_t n_keep);
bitnet_status bitnet_session_eval(bitnet_session *s, const bitnet_token *tokens, size_t n);
bitnet_status bitnet_session_logits(const bitnet_session *s, int32_t i, const float **logits);
bitnet_status bitnet_session_embeddings(const bitnet_session *s, int32_t i, const float **embd);
typedef struct bitnet_sampler_params {
    size_t   struct_size;
    float    temperature;       
    int32_t  top_k;             
    float    top_p;             
    float    min_p;             
    float    repeat_penalty;    
    int32_t  repeat_last_n;     
    float    frequency_penalty; 
    float    presence_penalty;  
} bitnet_sampler_params;
void bitnet_sampler_default_params(bitnet_sampler_params *p, size_t struct_size);
bitnet_status bitnet_session_sample(bitnet_session *s, const bitnet_sampler_params *sp,
                                               bitnet_token *out);
void bitnet_session_set_seed(bitnet_session *s, uint64_t seed);
typedef int (*bitnet_stream_callback)(void *user, bitnet_token token, const char *text, size_t len);
typedef enum bitnet_stop_reason {
    BITNET_STOP_NONE       = 0,
    BITNET_STOP_MAX_TOKENS = 1, 
    BITNET_STOP_EOG        = 2, 
    BITNET_STOP_STRING     = 3, 
    BITNET_STOP_CALLBACK   = 4, 
    BITNET_STOP_CONTEXT    = 5  
} bitnet_stop_reason;
typedef struct bitnet_generate_params {
    size_t                  struct_size;
    int32_t                 max_tokens;  
    const char *const      *stop;        
    size_t                  n_stop;
    int                     ignore_eog;  
    bitnet_stream_callback  callback;    
    void                   *user;
} bitnet_generate_params;
void bitnet_generate_default_params(bitnet_generate_params *p, size_t struct_size);
bitnet_status bitnet_session_generate(bitnet_session *s, const bitnet_token *prompt, size_t n_prompt,
                                                 const bitnet_sampler_params *sp,
                                                 const bitnet_generate_params *gp, bitnet_token *out,
                                                 size_t cap, size_t *n_out, bitnet_stop_reason *reason);
bitnet_status bitnet_gguf_writer_set_raw(bitnet_gguf_writer *w, const char *key,
                                                    bitnet_gguf_type type, const void *payload,
                                                    size_t size);
size_t bitnet_isa_list(bitnet_isa *out, size_t cap);
bitnet_status bitnet_isa_from_name(const char *name, bitnet_isa *out);
typedef struct bitnet_batch bitnet_batch;
typedef struct bitnet_batch_params {
    size_t   struct_size;
    uint32_t n_tokens;  
    uint32_t n_threads; 
} bitnet_batch_params;
void bitnet_batch_default_params(bitnet_batch_params *p, size_t struct_size);
bitnet_status bitnet_batch_create(const bitnet_model *m, const bitnet_batch_params *params,
                                             bitnet_batch **out);
void bitnet_batch_free(bitnet_batch *b);
bitnet_status bitnet_batch_add(bitnet_batch *b, bitnet_session *s, const bitnet_token *tokens, size_t n,
                                          uint32_t flags);
size_t bitnet_batch_n_tokens(const bitnet_batch *b);
bitnet_status bitnet_batch_eval(bitnet_batch *b);
void bitnet_batch_clear(bitnet_batch *b);
typedef struct bitnet_profile {
    size_t   struct_size;
    uint64_t steps;          
    uint64_t tokens;         
    uint64_t ns_total;       
    uint64_t ns_embed;       
    uint64_t ns_token_ops;   
    uint64_t ns_qkv;         
    uint64_t ns_attention;   
    uint64_t ns_attn_out;    
    uint64_t ns_ffn_gate_up; 
    uint64_t ns_ffn_down;    
    uint64_t ns_output;      
} bitnet_profile;
void bitnet_session_set_profiling(bitnet_session *s, int on);
void bitnet_session_get_profile(const bitnet_session *s, bitnet_profile *p, size_t struct_size);
void bitnet_batch_set_profiling(bitnet_batch *b, int on);
void bitnet_batch_get_profile(const bitnet_batch *b, bitnet_profile *p, size_t struct_size);
bitnet_status bitnet_session_copy(bitnet_session *dst, const bitnet_session *src);
bitnet_status bitnet_session_beam_search(bitnet_session *s, const bitnet_token *prompt,
                                                    size_t n_prompt, uint32_t n_beams, int32_t max_tokens,
                                                    bitnet_token *out, size_t cap, size_t *n_out);
bitnet_status bitnet_session_state_save(const bitnet_session *s, void *buf, size_t cap,
                                                   size_t *n_bytes);
bitnet_status bitnet_session_state_load(bitnet_session *s, const void *buf, size_t size);
size_t bitnet_session_common_prefix(const bitnet_session *s, const bitnet_token *tokens, size_t n);
bitnet_status bitnet_session_eval_prompt(bitnet_session *s, const bitnet_token *tokens, size_t n,
                                                    size_t *n_evaluated);
typedef struct bitnet_generator bitnet_generator;
typedef struct bitnet_generator_step {
    bitnet_token       token;  
    const char        *text;   
    size_t             len;    
    bitnet_stop_reason reason; 
} bitnet_generator_step;
bitnet_status bitnet_generator_create(bitnet_session *s, const bitnet_sampler_params *sp,
                                                 const bitnet_generate_params *gp, const bitnet_token *prompt,
                                                 size_t n_prompt, bitnet_generator **out);
bitnet_status bitnet_generator_next(bitnet_generator *g, bitnet_generator_step *step);
void bitnet_generator_stop(bitnet_generator *g);
typedef struct bitnet_generator_stats {
    size_t struct_size;
    size_t n_prompt;        
    size_t n_prompt_cached; 
    size_t n_generated;     
    size_t n_evaluated;     
    size_t n_drafted;       
    size_t n_accepted;      
    size_t n_spec_steps;    
} bitnet_generator_stats;
void bitnet_generator_get_stats(const bitnet_generator *g, bitnet_generator_stats *stats,
                                           size_t struct_size);
void bitnet_generator_free(bitnet_generator *g);
typedef enum bitnet_spec_mode {
    BITNET_SPEC_NONE   = 0,
    BITNET_SPEC_LOOKUP = 1, 
    BITNET_SPEC_DRAFT  = 2  
} bitnet_spec_mode;
typedef struct bitnet_spec_params {
    size_t          struct_size;
    int32_t         mode;        
    int32_t         n_draft_max; 
    int32_t         n_draft_min; 
    int32_t         ngram_min;   
    int32_t         ngram_max;   
    float           p_min;       
    bitnet_session *draft;       
} bitnet_spec_params;
void bitnet_spec_default_params(bitnet_spec_params *p, size_t struct_size);
bitnet_status bitnet_session_set_speculation(bitnet_session *s, const bitnet_spec_params *p);
void bitnet_session_get_spec_stats(const bitnet_session *s, bitnet_generator_stats *stats,
                                              size_t struct_size);
bitnet_status bitnet_generator_draft(bitnet_generator *g, bitnet_token *tokens, size_t cap,
                                                size_t *n_tokens);
typedef struct bitnet_chat_params {
    size_t      struct_size;
    const char *tmpl;                  
    int         add_generation_prompt; 
    uint32_t    flags;                 
    size_t      n_prefix;              
} bitnet_chat_params;
void bitnet_chat_default_params(bitnet_chat_params *p, size_t struct_size);
bitnet_status bitnet_chat_tokenize(const bitnet_model *m, const bitnet_chat_message *msgs,
                                              size_t n_msgs, const bitnet_chat_params *params,
                                              bitnet_token *tokens, size_t cap, size_t *n_tokens);
typedef enum bitnet_pooling {
    BITNET_POOLING_MODEL = -1, 
    BITNET_POOLING_NONE  = 0,  
    BITNET_POOLING_MEAN  = 1,  
    BITNET_POOLING_CLS   = 2,  
    BITNET_POOLING_LAST  = 3,  
    BITNET_POOLING_RANK  = 4   
} bitnet_pooling;
bitnet_pooling bitnet_model_pooling(const bitnet_model *m);
typedef struct bitnet_embed_params {
    size_t  struct_size;
    int32_t pooling;   
    int32_t normalize; 
} bitnet_embed_params;
void bitnet_embed_default_params(bitnet_embed_params *p, size_t struct_size);
bitnet_status bitnet_session_embed(bitnet_session *s, const bitnet_token *tokens, size_t n,
                                              const bitnet_embed_params *params, float *out, size_t cap);
bitnet_status bitnet_session_embed_text(bitnet_session *s, const char *text, size_t len,
                                                   const bitnet_embed_params *params, float *out, size_t cap,
                                                   size_t *n_tokens);
bitnet_status bitnet_session_pool(const bitnet_session *s, const bitnet_embed_params *params,
                                             float *out, size_t cap);
typedef enum bitnet_screen_mode {
    BITNET_SCREEN_OFF   = 0,
    BITNET_SCREEN_EXACT = 1,
    BITNET_SCREEN_INT8  = 2,
    BITNET_SCREEN_INT6  = 3
} bitnet_screen_mode;
bitnet_status bitnet_model_set_output_screening(bitnet_model *m, bitnet_screen_mode mode);
void bitnet_session_screen_stats(const bitnet_session *s, uint64_t *n_screened, uint64_t *n_rescored,
                                            uint64_t *n_full);
