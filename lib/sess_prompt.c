/*
 * sess_prompt.c -- prompts that reuse the KV cache (bitnet_session_common_prefix,
 * bitnet_session_eval_prompt).  Uses the session only through the public API and sess.h.
 *
 * A caller that re-sends a growing prompt (a chat re-rendering the whole conversation
 * every turn, a server receiving full prompts) names the whole context it wants.  The
 * cache rows of the longest common prefix of that and the session's tokens are still
 * valid (a row depends only on the tokens before it), so the context is truncated to the
 * prefix and only the rest is evaluated.  The last token is evaluated again when it is
 * already in the context but its logits are gone (a truncate drops them), so after the
 * call the logits always belong to the prompt's last token.
 */
#include "sess.h"

size_t bitnet_session_common_prefix(const bitnet_session *s, const bitnet_token *tokens, size_t n) {
    if (!s || !tokens) return 0;
    size_t have = 0;
    const bitnet_token *cur = bn_session_tokens(s, &have);
    size_t lim = have < n ? have : n, i = 0;
    while (i < lim && cur[i] == tokens[i]) i++;
    return i;
}

bitnet_status bitnet_session_eval_prompt(bitnet_session *s, const bitnet_token *tokens, size_t n,
                                         size_t *n_evaluated) {
    if (n_evaluated) *n_evaluated = 0;
    if (!s) return bn_err(BITNET_E_INVALID_ARG, "bitnet_session_eval_prompt: session is NULL");
    if (!tokens || n == 0)
        return bn_session_fail(s, bn_err(BITNET_E_INVALID_ARG, "bitnet_session_eval_prompt: %s",
                                         !tokens ? "tokens is NULL" : "no tokens (n = 0)"));
    /* Check everything before the context is touched: on these errors nothing changes. */
    uint32_t n_ctx = bitnet_session_n_ctx(s);
    if (n > n_ctx)
        return bn_session_fail(s, bn_err(BITNET_E_CONTEXT_FULL, "bitnet_session_eval_prompt: %zu tokens do not "
                                         "fit in n_ctx %u", n, n_ctx));
    int64_t n_vocab = bitnet_model_get_info(bn_session_model(s), BITNET_INFO_N_VOCAB);
    for (size_t i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= n_vocab)
            return bn_session_fail(s, bn_err(BITNET_E_INVALID_ARG, "bitnet_session_eval_prompt: token %zu has id "
                                             "%d, outside the vocabulary [0, %lld)", i, (int)tokens[i],
                                             (long long)n_vocab));
    size_t keep = bitnet_session_common_prefix(s, tokens, n);
    if (keep == n && bitnet_session_n_past(s) == n && bn_session_has_logits(s))
        return BITNET_OK; /* the context is already exactly the prompt, logits current */
    if (keep == n) keep = n - 1; /* evaluate the last token again for its logits */
    bitnet_status st = bitnet_session_truncate(s, (uint32_t)keep);
    if (st == BITNET_OK) st = bitnet_session_eval(s, tokens + keep, n - keep);
    if (st != BITNET_OK) return bn_session_fail(s, st);
    if (n_evaluated) *n_evaluated = n - keep;
    return BITNET_OK;
}
