/*
 * model.c -- loading a model: the GGUF file, its vocabulary, and (later) its weights.
 */
#include "model.h"

#include <stdio.h>

void bitnet_model_default_params(bitnet_model_params *p, size_t struct_size) {
    if (!p || struct_size == 0) return;
    bitnet_model_params d;
    memset(&d, 0, sizeof d);
    d.struct_size = sizeof d < struct_size ? sizeof d : struct_size;
    d.isa = BITNET_ISA_AUTO;
    d.use_mmap = 1;
    memset(p, 0, struct_size);
    memcpy(p, &d, d.struct_size);
}

/* Copy the caller's params (which may come from an older, shorter header) over the
 * defaults. */
static void bn_model_params_get(const bitnet_model_params *in, bitnet_model_params *out) {
    bitnet_model_default_params(out, sizeof *out);
    if (in && in->struct_size) {
        size_t n = in->struct_size < sizeof *out ? in->struct_size : sizeof *out;
        memcpy(out, in, n);
        out->struct_size = sizeof *out;
    }
}

bitnet_status bitnet_model_load(const char *path, const bitnet_model_params *params, bitnet_model **out) {
    if (!out) return bn_err(BITNET_E_INVALID_ARG, "bitnet_model_load: out is NULL");
    *out = NULL;
    if (!path) return bn_err(BITNET_E_INVALID_ARG, "bitnet_model_load: path is NULL");
    bitnet_model_params p;
    bn_model_params_get(params, &p);

    bitnet_model *m = bn_calloc(1, sizeof *m);
    if (!m) return bn_err(BITNET_E_NOMEM, "out of memory allocating the model");
    bitnet_status st = bn_gguf_open_file(path, p.use_mmap, &m->gguf);
    if (st != BITNET_OK) goto fail;
    st = bn_vocab_load(m->gguf, p.pretokenizer, &m->vocab);
    if (st != BITNET_OK) goto fail;
    m->vocab_only = p.vocab_only != 0;
    if (!m->vocab_only) {
        st = bn_err(BITNET_E_UNSUPPORTED, "%s: running models is not implemented yet (load with vocab_only)", path);
        goto fail;
    }
    snprintf(m->arch, sizeof m->arch, "%s", "vocab");
    snprintf(m->desc, sizeof m->desc, "vocabulary only, %d tokens", (int)bn_vocab_n_tokens(m->vocab));
    *out = m;
    return BITNET_OK;
fail:
    bitnet_model_free(m);
    return st;
}

void bitnet_model_free(bitnet_model *m) {
    if (!m) return;
    bn_vocab_free(m->vocab);
    bitnet_gguf_close(m->gguf);
    bn_free(m);
}

const bitnet_gguf *bitnet_model_gguf(const bitnet_model *m) { return m ? m->gguf : NULL; }
const char *bitnet_model_arch(const bitnet_model *m) { return m ? m->arch : NULL; }
const char *bitnet_model_desc(const bitnet_model *m) { return m ? m->desc : NULL; }

int64_t bitnet_model_get_info(const bitnet_model *m, bitnet_model_info what) {
    if (!m) return 0;
    switch (what) {
    case BITNET_INFO_N_VOCAB: return bn_vocab_n_tokens(m->vocab);
    case BITNET_INFO_ISA: return BITNET_ISA_SCALAR;
    default: return 0;
    }
}
