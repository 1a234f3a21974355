/*
 * chat_template.c -- chat templates: which template renders a conversation, the
 * built-in formats, and the public entry points bitnet_chat_apply (text) and
 * bitnet_chat_tokenize (tokens, with message text never read as special tokens).
 * See docs/chat.md.
 *
 * Which template (tmpl argument, else the model's tokenizer.chat_template):
 *   a name     "bitnet", "plain": fixed formats written here in C;
 *              "bitnet-hf", "llama3", "chatml": the real templates of those models,
 *              rendered by the Jinja renderer (lib/chat_jinja_*.c);
 *   a text     containing "BITNET": the "bitnet" format.  bitnet.cpp's converter writes a
 *              "Human: ... BITNETAssistant:" template into every 2B-4T GGUF; bitnet.cpp
 *              never renders that text but recognises the marker and uses its hard-coded
 *              format, and that is what users of those files get there, so libbitnet
 *              does the same;
 *   a text     otherwise: rendered as Jinja, with messages, add_generation_prompt,
 *              bos/eos/unk/pad_token (the model's token texts) and tools = None.
 *   none       (no tmpl, the model has no template): "plain".
 *
 *   bitnet     system: "System: " + content; user: "User: " + content +
 *              "<|eot_id|>Assistant: "; assistant: content.  add_generation_prompt has no
 *              effect (the user turn already ends with the prompt).
 *   plain      "Role: content\n" per message (role capitalised), generation prompt
 *              "Assistant:".
 */
#include "chat_jinja.h"
#include "model.h"

#include <stdio.h>

/* The official template of microsoft/bitnet-b1.58-2B-4T (tokenizer_config.json): the
 * LLaMA-3 instruct loop with "Role: " headers; tests/chat/README.md says where it is
 * from. */
static const char k_tmpl_bitnet_hf[] =
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = message['role'] | "
    "capitalize + ': '+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = "
    "bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ 'Assistant: ' }}"
    "{% endif %}";
/* meta-llama/Meta-Llama-3-8B-Instruct */
static const char k_tmpl_llama3[] =
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + "
    "message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 "
    "%}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}";
/* ChatML as in teknium/OpenHermes-2.5-Mistral-7B */
static const char k_tmpl_chatml[] =
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' "
    "+ '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

typedef enum chat_kind { CHAT_BITNET, CHAT_PLAIN, CHAT_JINJA } chat_kind;

/* ---- the C formats ---------------------------------------------------------------------- */

typedef struct tbuf {
    char    *p;
    uint8_t *m;
    size_t   n, cap;
    int      oom;
} tbuf;

static void bn_chat_template_put(tbuf *b, const char *s, size_t n, int from_msg) {
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap * 2 : 256;
        while (nc < b->n + n + 1) nc *= 2;
        char *np = bn_realloc(b->p, nc);
        if (np) b->p = np;
        uint8_t *nm = np ? bn_realloc(b->m, nc) : NULL;
        if (nm) b->m = nm;
        if (!np || !nm) { b->oom = 1; return; }
        b->cap = nc;
    }
    if (n) memcpy(b->p + b->n, s, n);
    memset(b->m + b->n, from_msg ? 1 : 0, n);
    b->n += n;
    b->p[b->n] = 0;
}

static void bn_chat_template_puts_(tbuf *b, const char *s) { bn_chat_template_put(b, s, strlen(s), 0); }
static void bn_chat_template_putc_msg(tbuf *b, const char *s) { bn_chat_template_put(b, s, strlen(s), 1); }

static bitnet_status bn_chat_template_render_c(chat_kind k, const bitnet_chat_message *msgs, size_t n_msgs, int agp, bn_chat_text *out) {
    tbuf b = {0};
    bn_chat_template_puts_(&b, "");
    for (size_t i = 0; i < n_msgs; i++) {
        const char *role = msgs[i].role, *c = msgs[i].content;
        if (k == CHAT_BITNET) {
            if (strcmp(role, "system") == 0) { bn_chat_template_puts_(&b, "System: "); bn_chat_template_putc_msg(&b, c); }
            else if (strcmp(role, "user") == 0) { bn_chat_template_puts_(&b, "User: "); bn_chat_template_putc_msg(&b, c); bn_chat_template_puts_(&b, "<|eot_id|>Assistant: "); }
            else if (strcmp(role, "assistant") == 0) bn_chat_template_putc_msg(&b, c);
        } else { /* plain: the role capitalised (ASCII), ": ", content, newline */
            if (*role) {
                char first = role[0];
                if (first >= 'a' && first <= 'z') first = (char)(first - 32);
                bn_chat_template_put(&b, &first, 1, 1);
                bn_chat_template_putc_msg(&b, role + 1);
            }
            bn_chat_template_puts_(&b, ": ");
            bn_chat_template_putc_msg(&b, c);
            bn_chat_template_puts_(&b, "\n");
        }
    }
    if (agp && k == CHAT_PLAIN) bn_chat_template_puts_(&b, "Assistant:");
    if (b.oom) {
        bn_free(b.p);
        bn_free(b.m);
        return bn_err(BITNET_E_NOMEM, "out of memory rendering the chat");
    }
    out->text = b.p;
    out->content = b.m;
    out->n = b.n;
    return BITNET_OK;
}

/* ---- choosing and rendering ------------------------------------------------------------------ */

static const char *bn_chat_template_tok_str(const bn_vocab *v, int32_t id) {
    return v && id >= 0 && id < v->n && strlen(v->text[id]) == v->len[id] ? v->text[id] : NULL;
}

static bitnet_status bn_chat_template_render_jinja(const bn_vocab *v, const char *text, size_t len, const bitnet_chat_message *msgs,
                                  size_t n_msgs, int agp, bn_chat_text *out) {
    bn_jinja_input in;
    memset(&in, 0, sizeof in);
    in.msgs = msgs;
    in.n_msgs = n_msgs;
    in.add_generation_prompt = agp;
    /* BOS / EOS the model lacks (or no model) are "" so that `bos_token + ...` works */
    in.bos_token = bn_chat_template_tok_str(v, v ? v->bos : -1);
    in.eos_token = bn_chat_template_tok_str(v, v ? v->eos : -1);
    if (!in.bos_token) in.bos_token = "";
    if (!in.eos_token) in.eos_token = "";
    in.unk_token = bn_chat_template_tok_str(v, v ? v->unk : -1);
    in.pad_token = bn_chat_template_tok_str(v, v ? v->pad : -1);
    return bn_jinja_render(text, len, &in, out);
}

bitnet_status bn_chat_render(const bn_vocab *v, const char *tmpl, const bitnet_chat_message *msgs, size_t n_msgs,
                             int agp, bn_chat_text *out) {
    if (!out) return bn_err(BITNET_E_INVALID_ARG, "chat: out is NULL");
    memset(out, 0, sizeof *out);
    if (!msgs && n_msgs) return bn_err(BITNET_E_INVALID_ARG, "chat: msgs is NULL");
    for (size_t i = 0; i < n_msgs; i++) {
        if (!msgs[i].role || !msgs[i].content)
            return bn_err(BITNET_E_INVALID_ARG, "chat: message %zu has a NULL %s", i, !msgs[i].role ? "role" : "content");
        if (!bn_utf8_valid(msgs[i].role, strlen(msgs[i].role)) || !bn_utf8_valid(msgs[i].content, strlen(msgs[i].content)))
            return bn_err(BITNET_E_INVALID_UTF8, "chat: message %zu: the %s is not valid UTF-8", i,
                          !bn_utf8_valid(msgs[i].role, strlen(msgs[i].role)) ? "role" : "content");
    }
    const char *text = NULL;
    size_t len = 0;
    chat_kind k;
    if (tmpl) {
        static const struct { const char *name; chat_kind kind; const char *text; } names[] = {
            {"bitnet", CHAT_BITNET, NULL},           {"plain", CHAT_PLAIN, NULL},
            {"bitnet-hf", CHAT_JINJA, k_tmpl_bitnet_hf}, {"llama3", CHAT_JINJA, k_tmpl_llama3},
            {"chatml", CHAT_JINJA, k_tmpl_chatml},
        };
        size_t i;
        for (i = 0; i < sizeof names / sizeof names[0]; i++)
            if (strcmp(tmpl, names[i].name) == 0) break;
        if (i < sizeof names / sizeof names[0]) {
            k = names[i].kind;
            text = names[i].text;
        } else {
            k = strstr(tmpl, "BITNET") ? CHAT_BITNET : CHAT_JINJA;
            text = tmpl;
        }
    } else if (!v) {
        return bn_err(BITNET_E_INVALID_ARG, "chat: model and tmpl are both NULL");
    } else if (!v->chat_template) {
        k = CHAT_PLAIN;
    } else {
        text = v->chat_template;
        k = strstr(text, "BITNET") ? CHAT_BITNET : CHAT_JINJA;
    }
    if (k != CHAT_JINJA) return bn_chat_template_render_c(k, msgs, n_msgs, agp, out);
    len = strlen(text);
    return bn_chat_template_render_jinja(v, text, len, msgs, n_msgs, agp, out);
}

/* Length of the BOS text that begins the rendering, if the model adds BOS itself when
 * tokenizing (so that bitnet_chat_apply's text, tokenized with ADD_BOS, has one). */
static size_t bn_chat_template_leading_bos(const bn_vocab *v, const bn_chat_text *t) {
    if (!v || !v->add_bos || v->bos < 0) return 0;
    size_t bl = v->len[v->bos];
    if (!bl || bl > t->n || memcmp(t->text, v->text[v->bos], bl) != 0) return 0;
    for (size_t i = 0; i < bl; i++)
        if (t->content[i]) return 0;
    return bl;
}

bitnet_status bn_chat_apply(const bn_vocab *v, const char *tmpl, const bitnet_chat_message *msgs, size_t n_msgs,
                            int add_generation_prompt, char *buf, size_t cap, size_t *n_bytes) {
    if (!n_bytes) return bn_err(BITNET_E_INVALID_ARG, "bitnet_chat_apply: n_bytes is NULL");
    if (!buf && cap) return bn_err(BITNET_E_INVALID_ARG, "bitnet_chat_apply: buf is NULL but cap is %zu", cap);
    bn_chat_text t;
    bitnet_status st = bn_chat_render(v, tmpl, msgs, n_msgs, add_generation_prompt, &t);
    if (st) return st;
    size_t skip = bn_chat_template_leading_bos(v, &t), n = t.n - skip;
    *n_bytes = n;
    if (n > cap) st = bn_err(BITNET_E_BUFFER_TOO_SMALL, "bitnet_chat_apply: %zu bytes do not fit in %zu", n, cap);
    else if (n) memcpy(buf, t.text + skip, n);
    bn_chat_text_free(&t);
    return st;
}

bitnet_status bitnet_chat_apply(const bitnet_model *m, const char *tmpl, const bitnet_chat_message *msgs,
                                size_t n_msgs, int add_generation_prompt, char *buf, size_t cap, size_t *n_bytes) {
    if (!m && !tmpl) return bn_err(BITNET_E_INVALID_ARG, "bitnet_chat_apply: model is NULL");
    return bn_chat_apply(m ? m->vocab : NULL, tmpl, msgs, n_msgs, add_generation_prompt, buf, cap, n_bytes);
}

/* ---- safe tokenization -------------------------------------------------------------------------- */

void bitnet_chat_default_params(bitnet_chat_params *p, size_t struct_size) {
    bitnet_chat_params d;
    memset(&d, 0, sizeof d);
    d.struct_size = sizeof d;
    d.tmpl = NULL;
    d.add_generation_prompt = 1;
    d.flags = BITNET_TOKENIZE_ADD_BOS;
    d.n_prefix = 0;
    bn_params_default(p, struct_size, &d, sizeof d);
}

bitnet_status bitnet_chat_tokenize(const bitnet_model *m, const bitnet_chat_message *msgs, size_t n_msgs,
                                   const bitnet_chat_params *params, bitnet_token *tokens, size_t cap,
                                   size_t *n_tokens) {
    if (!m) return bn_err(BITNET_E_INVALID_ARG, "bitnet_chat_tokenize: model is NULL");
    if (!n_tokens) return bn_err(BITNET_E_INVALID_ARG, "bitnet_chat_tokenize: n_tokens is NULL");
    if (!tokens && cap) return bn_err(BITNET_E_INVALID_ARG, "bitnet_chat_tokenize: tokens is NULL but cap is %zu", cap);
    bitnet_chat_params p;
    bitnet_chat_default_params(&p, sizeof p);
    bitnet_status st = bn_params_read(&p, sizeof p, params, "bitnet_chat_tokenize");
    if (st) return st;
    if (p.flags & ~(uint32_t)BITNET_TOKENIZE_ADD_BOS)
        return bn_err(BITNET_E_INVALID_ARG, "bitnet_chat_tokenize: flags 0x%x (only BITNET_TOKENIZE_ADD_BOS is allowed)",
                      p.flags);
    if (p.n_prefix > n_msgs)
        return bn_err(BITNET_E_INVALID_ARG, "bitnet_chat_tokenize: n_prefix %zu exceeds n_msgs %zu", p.n_prefix, n_msgs);
    const bn_vocab *v = m->vocab;
    bn_chat_text all, pre = {0};
    if ((st = bn_chat_render(v, p.tmpl, msgs, n_msgs, p.add_generation_prompt, &all))) return st;
    size_t from = 0;
    if (p.n_prefix) {
        if ((st = bn_chat_render(v, p.tmpl, msgs, p.n_prefix, 0, &pre))) goto done;
        if (pre.n > all.n || memcmp(pre.text, all.text, pre.n) != 0 || memcmp(pre.content, all.content, pre.n) != 0) {
            st = bn_err(BITNET_E_NOT_FOUND,
                        "bitnet_chat_tokenize: the template renders the first %zu messages differently once more "
                        "follow, so the conversation cannot be continued incrementally; tokenize it whole "
                        "(n_prefix = 0)", p.n_prefix);
            goto done;
        }
        from = pre.n;
    }
    if (all.n - from > 0x0fffffffu) {
        st = bn_err(BITNET_E_INVALID_ARG, "bitnet_chat_tokenize: the rendered chat of %zu bytes is too long", all.n);
        goto done;
    }
    bn_toklist l = {0};
    uint32_t flags = BITNET_TOKENIZE_PARSE_SPECIAL | BITNET_TOKENIZE_NO_ADD_EOS;
    st = bn_tokenize_masked(v, all.text + from, all.n - from, flags, all.content + from, &l);
    /* BOS: prepended when asked for, the model wants one and the template did not write it */
    int add_bos = !from && (p.flags & BITNET_TOKENIZE_ADD_BOS) && v->add_bos && v->bos >= 0 &&
                  !(l.n && l.v[0] == v->bos);
    if (st == BITNET_OK) {
        size_t n = l.n + (add_bos ? 1 : 0);
        *n_tokens = n;
        if (n > cap) {
            st = bn_err(BITNET_E_BUFFER_TOO_SMALL, "bitnet_chat_tokenize: %zu tokens do not fit in %zu", n, cap);
        } else {
            if (add_bos) tokens[0] = v->bos;
            if (l.n) memcpy(tokens + (add_bos ? 1 : 0), l.v, l.n * sizeof *tokens);
        }
    }
    bn_free(l.v);
done:
    bn_chat_text_free(&all);
    bn_chat_text_free(&pre);
    return st;
}
