"""bitnet-server with speculation (--lookup): each slot's draft is verified in the same
batched forward step as the other slots' tokens, so greedy text must be exactly the text
of a server without speculation, for concurrent requests too; the drafted / accepted
counts are reported per response (usage.completion_tokens_details, timings) and in
/metrics.  Servers on 127.0.0.1, requests bounded in count and time."""
import os
import threading

import pytest

from conftest import Server

# Prompts with repeated stretches (what lookup drafts from) and one without.
PROMPTS = ["Item %d: the cat sat on the mat. The cat sat on the mat. The cat sat on" % i for i in range(5)] + \
          ["%d little pigs built %s houses, and the wolf blew them down; " % (i, "straw " * (1 + i)) * 3
           for i in range(4)] + ["An unrepeated prompt: quick brown foxes vex jumpy dwarves."]


# ThreadSanitizer builds (server_http_tsan) run the server about 30x slower: less work there.
TSAN = "TSAN_OPTIONS" in os.environ
N_TOK = 16 if TSAN else 40
if TSAN:
    PROMPTS = PROMPTS[:3] + PROMPTS[5:7]


def body(p, **kw):
    b = {"prompt": p, "max_tokens": N_TOK, "temperature": 0}
    b.update(kw)
    return b


def parallel(server, bodies):
    got = [None] * len(bodies)

    def worker(i):
        st, _, r = server.post("/v1/completions", bodies[i], timeout=600)
        got[i] = r if st == 200 else (st, r)

    th = [threading.Thread(target=worker, args=(i,)) for i in range(len(bodies))]
    for t in th:
        t.start()
    for t in th:
        t.join(600)
    return got


@pytest.fixture(scope="module")
def plain_and_lookup(model):
    args = ["-np", "4", "-c", "512", "-t", "2", "--timeout", "600"]
    a = Server(model, args)
    b = Server(model, args + ["--lookup", "--draft", "6"])
    yield a, b
    assert a.stop() == 0, a.output()
    assert b.stop() == 0, b.output()


def test_lookup_greedy_identical_concurrent(plain_and_lookup):
    plain, look = plain_and_lookup
    bodies = [body(p) for p in PROMPTS]
    want = [r["choices"][0]["text"] for r in parallel(plain, bodies)]
    before = look.metrics()
    got = parallel(look, bodies)
    assert all(isinstance(r, dict) for r in got), got
    assert [r["choices"][0]["text"] for r in got] == want
    drafted = accepted = 0
    for r in got:
        u, t = r["usage"], r["timings"]
        d = u["completion_tokens_details"]
        assert u["completion_tokens"] == t["predicted_n"] == N_TOK
        assert t["draft_n_accepted"] == d["accepted_prediction_tokens"] <= t["draft_n"]
        assert d["rejected_prediction_tokens"] == t["draft_n"] - t["draft_n_accepted"]
        drafted += t["draft_n"]
        accepted += t["draft_n_accepted"]
    assert accepted > 0 and drafted > accepted  # drafts were verified, some kept, some not
    after = look.metrics()
    assert after["bitnet_spec_drafted_tokens_total"] - before["bitnet_spec_drafted_tokens_total"] == drafted
    assert after["bitnet_spec_accepted_tokens_total"] - before["bitnet_spec_accepted_tokens_total"] == accepted
    assert after["bitnet_spec_steps_total"] > before["bitnet_spec_steps_total"]
    # the plain server drafts nothing
    assert plain.metrics()["bitnet_spec_drafted_tokens_total"] == 0


def test_lookup_stop_strings_and_stream(plain_and_lookup):
    plain, look = plain_and_lookup
    p = PROMPTS[0]
    full = plain.post("/v1/completions", body(p))[2]["choices"][0]["text"]
    stop = full[10:13]
    for srv in (plain, look):
        st, _, r = srv.post("/v1/completions", body(p, stop=[stop]))
        assert st == 200 and r["choices"][0]["text"] == full[:full.index(stop)]
        assert r["choices"][0]["finish_reason"] == "stop"
    st, events, done = look.stream("/v1/completions", body(p, stream=True, stream_options={"include_usage": True}))
    assert st == 200 and done
    assert "".join(e["choices"][0]["text"] for e in events if e["choices"]) == full
    assert events[-1]["usage"]["completion_tokens_details"]["accepted_prediction_tokens"] > 0


def test_lookup_sampling_runs(plain_and_lookup):
    """Sampled requests through the same acceptance rule (its distribution is tested in
    test_spec): the tokens asked for, reproducible with a seed."""
    _, look = plain_and_lookup
    b = body(PROMPTS[1], temperature=0.8, seed=42)
    r1, r2 = parallel(look, [b, b])
    assert r1["usage"]["completion_tokens"] == N_TOK and r1["choices"][0]["text"] == r2["choices"][0]["text"]
    assert r1["timings"]["draft_n"] > 0


def test_draft_model_greedy_identical(model, plain_and_lookup):
    """-md: every slot drafts with its own session of the draft model (here the model
    itself, so drafts are almost always kept)."""
    plain, _ = plain_and_lookup
    srv = Server(model, ["-np", "3", "-c", "512", "-t", "2", "--timeout", "600", "-md", model, "--draft", "4",
                         "--draft-p-min", "0"])
    try:
        bodies = [body(p, max_tokens=min(N_TOK, 24)) for p in PROMPTS[:6]]
        want = [r["choices"][0]["text"] for r in parallel(plain, bodies)]
        got = parallel(srv, bodies)
        assert [r["choices"][0]["text"] for r in got] == want
        drafted = sum(r["timings"]["draft_n"] for r in got)
        accepted = sum(r["timings"]["draft_n_accepted"] for r in got)
        assert drafted > 0 and accepted >= 0.9 * drafted
        assert srv.metrics()["bitnet_spec_accepted_tokens_total"] == accepted
    finally:
        assert srv.stop() == 0, srv.output()
