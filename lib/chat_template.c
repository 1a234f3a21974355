/*
 * chat_template.c -- chat templates.  There is no Jinja engine: the template text of a model is
 * recognised by distinctive markers and rendered by a fixed function that produces
 * exactly what that template produces for the supported models.
 *
 *   bitnet     bitnet.cpp's hard-coded rendering, chosen when the template text contains
 *              "BITNET" (the GGUF of BitNet-b1.58-2B-4T has the "Human: ...
 *              BITNETAssistant:" template; bitnet.cpp ignores its text and renders):
 *                system     "System: " + content
 *                user       "User: " + content + "<|eot_id|>Assistant: "
 *                assistant  content
 *              add_generation_prompt has no effect (the user turn already ends with it).
 *   bitnet-hf  the Hugging Face template of 2B-4T: "Role: " + content + "<|eot_id|>"
 *              per message (role capitalised), generation prompt "Assistant: ".
 *   llama3     "<|start_header_id|>" role "<|end_header_id|>\n\n" + trimmed content +
 *              "<|eot_id|>"; generation prompt "<|start_header_id|>assistant<|end_header_id|>\n\n".
 *              Recognised by "<|start_header_id|>".
 *   chatml     "<|im_start|>" role "\n" content "<|im_end|>\n"; generation prompt
 *              "<|im_start|>assistant\n".  Recognised by "<|im_start|>".
 *   plain      for a model without a template: "Role: content\n" per message,
 *              generation prompt "Assistant:".
 * BOS is never written: bitnet_tokenize adds it (BITNET_TOKENIZE_ADD_BOS).  Any other
 * template text gives BITNET_E_UNSUPPORTED.
 */
#include "model.h"

#include <stdio.h>

typedef enum chat_kind { CHAT_BITNET, CHAT_BITNET_HF, CHAT_LLAMA3, CHAT_CHATML, CHAT_PLAIN } chat_kind;

typedef struct sink {
    char  *buf;
    size_t cap, n;
} sink;

static void put(sink *s, const char *p, size_t n) {
    if (s->n + n <= s->cap && n) memcpy(s->buf + s->n, p, n);
    s->n += n;
}
static void puts_(sink *s, const char *p) { put(s, p, strlen(p)); }

/* Role with its first letter upper-cased (ASCII). */
static void put_role_cap(sink *s, const char *role) {
    if (!*role) return;
    char c = role[0];
    if (c >= 'a' && c <= 'z') c = (char)(c - 32);
    put(s, &c, 1);
    puts_(s, role + 1);
}

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

static void put_trimmed(sink *s, const char *p) {
    size_t n = strlen(p), a = 0;
    while (a < n && is_space(p[a])) a++;
    while (n > a && is_space(p[n - 1])) n--;
    put(s, p + a, n - a);
}

static int kind_from_name(const char *t, chat_kind *k) {
    static const struct { const char *name; chat_kind kind; } names[] = {
        {"bitnet", CHAT_BITNET}, {"bitnet-hf", CHAT_BITNET_HF}, {"llama3", CHAT_LLAMA3},
        {"chatml", CHAT_CHATML}, {"plain", CHAT_PLAIN},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(t, names[i].name) == 0) { *k = names[i].kind; return 1; }
    return 0;
}

static int kind_from_text(const char *t, chat_kind *k) {
    if (strstr(t, "BITNET")) *k = CHAT_BITNET;
    else if (strstr(t, "<|start_header_id|>")) *k = CHAT_LLAMA3;
    else if (strstr(t, "<|im_start|>")) *k = CHAT_CHATML;
    else return 0;
    return 1;
}

bitnet_status bn_chat_apply(const bn_vocab *v, const char *tmpl, const bitnet_chat_message *msgs, size_t n_msgs,
                            int add_generation_prompt, char *buf, size_t cap, size_t *n_bytes) {
    if (!n_bytes) return bn_err(BITNET_E_INVALID_ARG, "bitnet_chat_apply: n_bytes is NULL");
    if (!buf && cap) return bn_err(BITNET_E_INVALID_ARG, "bitnet_chat_apply: buf is NULL but cap is %zu", cap);
    if (!msgs && n_msgs) return bn_err(BITNET_E_INVALID_ARG, "bitnet_chat_apply: msgs is NULL");
    for (size_t i = 0; i < n_msgs; i++)
        if (!msgs[i].role || !msgs[i].content)
            return bn_err(BITNET_E_INVALID_ARG, "bitnet_chat_apply: message %zu has a NULL %s", i,
                          !msgs[i].role ? "role" : "content");
    chat_kind k;
    if (tmpl) {
        if (!kind_from_name(tmpl, &k) && !kind_from_text(tmpl, &k))
            return bn_err(BITNET_E_UNSUPPORTED,
                          "bitnet_chat_apply: template '%.40s%s' is neither a known name (bitnet, bitnet-hf, llama3, "
                          "chatml, plain) nor a recognised template text", tmpl, strlen(tmpl) > 40 ? "..." : "");
    } else if (!v) {
        return bn_err(BITNET_E_INVALID_ARG, "bitnet_chat_apply: model and tmpl are both NULL");
    } else if (!v->chat_template) {
        k = CHAT_PLAIN;
    } else if (!kind_from_text(v->chat_template, &k)) {
        return bn_err(BITNET_E_UNSUPPORTED,
                      "bitnet_chat_apply: the model's tokenizer.chat_template is not one libbitnet recognises "
                      "(BitNet, LLaMA-3, ChatML); pass a template name (bitnet, llama3, chatml, plain) instead");
    }

    sink s = {buf, cap, 0};
    for (size_t i = 0; i < n_msgs; i++) {
        const char *role = msgs[i].role, *c = msgs[i].content;
        switch (k) {
        case CHAT_BITNET:
            if (strcmp(role, "system") == 0) { puts_(&s, "System: "); puts_(&s, c); }
            else if (strcmp(role, "user") == 0) { puts_(&s, "User: "); puts_(&s, c); puts_(&s, "<|eot_id|>Assistant: "); }
            else if (strcmp(role, "assistant") == 0) puts_(&s, c);
            break;
        case CHAT_BITNET_HF:
            put_role_cap(&s, role); puts_(&s, ": "); puts_(&s, c); puts_(&s, "<|eot_id|>");
            break;
        case CHAT_LLAMA3:
            puts_(&s, "<|start_header_id|>"); puts_(&s, role); puts_(&s, "<|end_header_id|>\n\n");
            put_trimmed(&s, c); puts_(&s, "<|eot_id|>");
            break;
        case CHAT_CHATML:
            puts_(&s, "<|im_start|>"); puts_(&s, role); puts_(&s, "\n"); puts_(&s, c); puts_(&s, "<|im_end|>\n");
            break;
        case CHAT_PLAIN:
            put_role_cap(&s, role); puts_(&s, ": "); puts_(&s, c); puts_(&s, "\n");
            break;
        }
    }
    if (add_generation_prompt) {
        switch (k) {
        case CHAT_BITNET: break;
        case CHAT_BITNET_HF: puts_(&s, "Assistant: "); break;
        case CHAT_LLAMA3: puts_(&s, "<|start_header_id|>assistant<|end_header_id|>\n\n"); break;
        case CHAT_CHATML: puts_(&s, "<|im_start|>assistant\n"); break;
        case CHAT_PLAIN: puts_(&s, "Assistant:"); break;
        }
    }
    *n_bytes = s.n;
    if (s.n > cap) return bn_err(BITNET_E_BUFFER_TOO_SMALL, "bitnet_chat_apply: %zu bytes do not fit in %zu", s.n, cap);
    return BITNET_OK;
}

bitnet_status bitnet_chat_apply(const bitnet_model *m, const char *tmpl, const bitnet_chat_message *msgs,
                                size_t n_msgs, int add_generation_prompt, char *buf, size_t cap, size_t *n_bytes) {
    if (!m && !tmpl) return bn_err(BITNET_E_INVALID_ARG, "bitnet_chat_apply: model is NULL");
    return bn_chat_apply(m ? m->vocab : NULL, tmpl, msgs, n_msgs, add_generation_prompt, buf, cap, n_bytes);
}
