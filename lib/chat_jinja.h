/*
 * chat_jinja.h -- the Jinja renderer for chat templates (lib/chat_jinja_*.c).
 *
 * Renders the subset of Jinja2 that Hugging Face chat templates use, the way
 * transformers renders them (jinja2 sandbox with trim_blocks, lstrip_blocks and the
 * loop-control extension; its own tojson; raise_exception and strftime_now).  Every
 * output byte is marked when it came from the conversation (a message's role or
 * content), so that the tokenizer can refuse to read special tokens there.  Time,
 * memory, output size and recursion are bounded.  See docs/chat.md.
 */
#ifndef BN_CHAT_JINJA_H
#define BN_CHAT_JINJA_H

#include "internal.h"

/* Limits of one rendering.  Zero fields take the defaults (BN_JINJA_DEFAULT_*). */
typedef struct bn_jinja_limits {
    size_t   max_template; /* bytes of template text                                  */
    size_t   max_output;   /* bytes of rendered text                                  */
    size_t   max_memory;   /* bytes of working memory (values, strings, syntax tree)  */
    uint64_t max_steps;    /* evaluation steps (nodes, loop iterations, bytes / 16)   */
    uint32_t max_depth;    /* nesting of the syntax tree and of evaluation            */
} bn_jinja_limits;

#define BN_JINJA_DEFAULT_MAX_TEMPLATE (1u << 20)
#define BN_JINJA_DEFAULT_MAX_OUTPUT   (16u << 20)
#define BN_JINJA_DEFAULT_MAX_MEMORY   (128u << 20)
#define BN_JINJA_DEFAULT_MAX_STEPS    20000000u
#define BN_JINJA_DEFAULT_MAX_DEPTH    200u

typedef struct bn_jinja_input {
    const bitnet_chat_message *msgs; /* role and content: valid UTF-8, NUL-terminated  */
    size_t                     n_msgs;
    int                        add_generation_prompt;
    /* Special-token strings handed to the template (NULL: undefined there). */
    const char *bos_token, *eos_token, *unk_token, *pad_token;
    /* The time strftime_now() formats (seconds since the epoch, local time zone);
     * 0 = the current time. */
    int64_t now;
    const bn_jinja_limits *limits; /* NULL: defaults */
} bn_jinja_input;

/* Rendered text.  content[i] is 1 when byte i came from a message (role or content),
 * 0 when the template wrote it.  Both buffers have n bytes (text is also
 * NUL-terminated) and are freed with bn_chat_text_free. */
typedef struct bn_chat_text {
    char    *text;
    uint8_t *content;
    size_t   n;
} bn_chat_text;

void bn_chat_text_free(bn_chat_text *t);

/* Render template text tmpl[0..len) for `in`.  Errors (message names the template
 * line and the construct):
 *   BITNET_E_FORMAT       a syntax error, or an error jinja2 would raise as well
 *                         (an undefined value used, a type mismatch, ...)
 *   BITNET_E_INVALID_ARG  the template called raise_exception (its message is in the
 *                         error), or the input is malformed (invalid UTF-8, NULL)
 *   BITNET_E_UNSUPPORTED  a Jinja construct, filter, test or method libbitnet does not
 *                         implement (named), or a limit was exceeded
 *   BITNET_E_NOMEM        an allocation failed */
bitnet_status bn_jinja_render(const char *tmpl, size_t len, const bn_jinja_input *in, bn_chat_text *out);

#endif
