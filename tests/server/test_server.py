"""bitnet-server over HTTP: OpenAI-shaped endpoints, errors and limits, exactness under
concurrency, disconnects, timeouts and shutdown.  Every server listens on 127.0.0.1;
every load test is bounded in count and time."""
import base64
import http.client
import json
import math
import os
import signal
import socket
import struct
import subprocess
import threading
import time

import pytest

from conftest import BIN, Server


def chat(messages, **kw):
    body = {"messages": messages, "temperature": 0, "max_tokens": 16}
    body.update(kw)
    return body


def tokens_plain(model, text):
    """Token count of text tokenized as plain text (no BOS, no special tokens), by bitnet-tokenize."""
    r = subprocess.run([os.path.join(BIN, "bitnet-tokenize"), "-m", model, "--no-bos"], input=text.encode(),
                       capture_output=True, check=True)
    return len(r.stdout.split())


# ---- endpoints ---------------------------------------------------------------------------------------

def test_health_models_metrics_page(server):
    st, _, p = server.request("GET", "/health")
    assert st == 200 and json.loads(p) == {"status": "ok"}
    st, _, p = server.request("GET", "/v1/models")
    m = json.loads(p)
    assert st == 200 and m["object"] == "list" and m["data"][0]["object"] == "model"
    mid = m["data"][0]["id"]
    st, _, p = server.request("GET", "/v1/models/" + mid)
    assert st == 200 and json.loads(p)["id"] == mid
    assert server.request("GET", "/v1/models/nope")[0] == 404
    met = server.metrics()
    assert met["bitnet_slots"] == 4 and "bitnet_queue_length" in met and "bitnet_active_slots" in met
    st, h, p = server.request("GET", "/")
    assert st == 200 and h["Content-Type"].startswith("text/html") and b"/v1/chat/completions" in p


def test_completion_and_usage(server):
    body = {"prompt": "Once upon a time", "max_tokens": 12, "temperature": 0}
    st, _, a = server.post("/v1/completions", body)
    assert st == 200, a
    assert a["object"] == "text_completion" and a["id"].startswith("cmpl-")
    ch = a["choices"][0]
    assert ch["finish_reason"] == "length" and isinstance(ch["text"], str)
    u = a["usage"]
    assert u["completion_tokens"] == 12 and u["total_tokens"] == u["prompt_tokens"] + 12
    st, _, b = server.post("/v1/completions", body)
    assert b["choices"][0]["text"] == ch["text"]  # greedy is reproducible
    # token-id prompts work too
    st, _, c = server.post("/v1/completions", {"prompt": [1, 2, 3], "max_tokens": 3, "temperature": 0})
    assert st == 200 and c["usage"]["prompt_tokens"] == 3


def test_chat_stream_equals_plain(server):
    msgs = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Tell me about ternary weights."}]
    st, _, plain = server.post("/v1/chat/completions", chat(msgs, max_tokens=20))
    assert st == 200, plain
    assert plain["object"] == "chat.completion" and plain["choices"][0]["message"]["role"] == "assistant"
    st, events, done = server.stream("/v1/chat/completions",
                                     chat(msgs, max_tokens=20, stream=True, stream_options={"include_usage": True}))
    assert st == 200 and done
    assert events[0]["choices"][0]["delta"].get("role") == "assistant"
    text = "".join(e["choices"][0]["delta"].get("content", "") for e in events if e["choices"])
    assert text == plain["choices"][0]["message"]["content"]
    finals = [e for e in events if e["choices"] and e["choices"][0]["finish_reason"]]
    assert len(finals) == 1 and finals[0]["choices"][0]["finish_reason"] == plain["choices"][0]["finish_reason"]
    assert events[-1]["choices"] == [] and events[-1]["usage"]["completion_tokens"] == plain["usage"]["completion_tokens"]
    assert all(e["object"] == "chat.completion.chunk" and e["id"] == events[0]["id"] for e in events)


def test_stop_strings(server):
    st, _, full = server.post("/v1/completions", {"prompt": "abc", "max_tokens": 24, "temperature": 0})
    text = full["choices"][0]["text"]
    cut = text[len(text) // 2: len(text) // 2 + 2]
    assert len(cut) == 2
    st, _, r = server.post("/v1/completions", {"prompt": "abc", "max_tokens": 24, "temperature": 0, "stop": [cut]})
    assert st == 200 and r["choices"][0]["finish_reason"] == "stop"
    assert r["choices"][0]["text"] == text[:text.index(cut)]


def test_sampling_seed(server):
    body = {"prompt": "The", "max_tokens": 16, "temperature": 1.0, "top_k": 50, "seed": 42}
    a = server.post("/v1/completions", body)[2]["choices"][0]["text"]
    b = server.post("/v1/completions", body)[2]["choices"][0]["text"]
    assert a == b
    texts = {server.post("/v1/completions", dict(body, seed=s))[2]["choices"][0]["text"] for s in range(6)}
    assert len(texts) > 1


def test_embeddings(server):
    st, _, r = server.post("/v1/embeddings", {"input": ["hello world", "something else"], "model": "x"})
    assert st == 200, r
    assert r["object"] == "list" and len(r["data"]) == 2 and r["data"][1]["index"] == 1
    v = r["data"][0]["embedding"]
    assert len(v) == 256 and abs(math.sqrt(sum(x * x for x in v)) - 1) < 1e-4
    assert r["usage"]["prompt_tokens"] > 0
    st, _, b = server.post("/v1/embeddings", {"input": "hello world", "encoding_format": "base64"})
    raw = base64.b64decode(b["data"][0]["embedding"])
    w = struct.unpack("<%df" % (len(raw) // 4), raw)
    assert max(abs(x - y) for x, y in zip(v, w)) < 1e-6  # same input, same vector


# ---- bad input -----------------------------------------------------------------------------------------

BAD = [
    (b"{not json", "not valid JSON"),
    (b'{"messages": [{"role": "user", "content": "x"}]} trailing', "JSON"),
    (b"[1, 2]", "JSON object"),
    (b'{"messages": "hi"}', "messages"),
    (b'{"messages": []}', "messages"),
    (b'{}', "messages"),
    (b'{"messages": [{"role": "user"}], "max_tokens": "10"}', "max_tokens"),
    (b'{"messages": [{"role": "user", "content": "x"}], "max_tokens": 0}', "max_tokens"),
    (b'{"messages": [{"role": "user", "content": "x"}], "temperature": -1}', "temperature"),
    (b'{"messages": [{"role": "user", "content": "x"}], "top_p": 2}', "top_p"),
    (b'{"messages": [{"role": "user", "content": "x"}], "stop": 5}', "stop"),
    (b'{"messages": [{"role": "user", "content": "x"}], "stop": ["a","b","c","d","e","f","g","h","i","j","k","l","m","n","o","p","q"]}', "stop"),
    (b'{"messages": [{"role": "user", "content": "x"}], "n": 2}', "n"),
    (b'{"messages": [{"role": "user", "content": "x"}], "stream": "yes"}', "stream"),
    (b'{"messages": [{"role": "wizard", "content": "x"}]}', "role"),
    (b'{"messages": [{"role": "user", "content": 7}]}', "content"),
    (b'{"messages": [{"role": "user", "content": [{"type": "image_url"}]}]}', "not supported"),
    (b'{"messages": [{"role": "user", "content": "a\\u0000b"}]}', "NUL"),
    (b'{"messages": [{"role": null, "content": "x"}]}', "role"),
    (b'{"messages": [{"role": "user", "content": "\xff\xfe"}]}', "JSON"),
    (b'{"messages": [{"role": "user", "content": "x"}], "logprobs": true}', "logprobs"),
    (b"[" * 100000 + b"]" * 100000, "JSON"),
]


@pytest.mark.parametrize("raw,needle", BAD)
def test_bad_chat_requests(server, raw, needle):
    st, _, p = server.request("POST", "/v1/chat/completions", raw=raw)
    assert st == 400, p
    e = json.loads(p)["error"]
    assert needle.lower() in e["message"].lower() and e["type"]


def test_bad_other_requests(server):
    assert server.post("/v1/completions", {"max_tokens": 3})[0] == 400  # no prompt
    assert server.post("/v1/completions", {"prompt": [999999]})[0] == 400  # id outside the vocabulary
    st, _, r = server.post("/v1/completions", {"prompt": "", "max_tokens": 2})  # BOS alone
    assert st == 200 and r["usage"]["prompt_tokens"] == 1
    assert server.post("/v1/embeddings", {"input": []})[0] == 400
    assert server.post("/v1/embeddings", {"input": "x", "encoding_format": "hex"})[0] == 400
    assert server.request("GET", "/v1/chat/completions")[0] == 405
    assert server.request("POST", "/v1/models")[0] == 405
    st, _, p = server.request("GET", "/nothing/here")
    assert st == 404 and json.loads(p)["error"]["type"] == "not_found_error"
    # null means "not given"
    st, _, r = server.post("/v1/chat/completions", {"messages": [{"role": "user", "content": "x"}], "temperature": None,
                                                     "max_tokens": 2, "stop": None, "seed": None})
    assert st == 200, r


def test_context_limits(server):
    long_prompt = "word " * 600  # more than the 512-token context
    st, _, r = server.post("/v1/completions", {"prompt": long_prompt, "max_tokens": 4})
    assert st == 400 and "maximum context length" in r["error"]["message"]
    st, _, r = server.post("/v1/completions", {"prompt": "hi", "max_tokens": 100000})
    assert st == 400 and "max_tokens" in r["error"]["message"]
    st, _, r = server.post("/v1/completions", {"prompt": "word " * 300, "max_tokens": 300})
    assert st == 400 and r["error"]["type"] == "context_length_exceeded"
    # without max_tokens, generation stops at the end of the context
    st, _, r = server.post("/v1/completions", {"prompt": "word " * 200, "temperature": 0, "ignore_eos": True})
    assert st == 200 and r["choices"][0]["finish_reason"] in ("length", "stop")
    assert r["usage"]["total_tokens"] <= 512


def test_body_limit(model):
    s = Server(model, ["-np", "1", "-c", "128", "--max-body", "2048"])
    try:
        st, _, p = s.request("POST", "/v1/chat/completions", raw=b'{"messages":[' + b' ' * 4096 + b']}')
        assert st == 413 and "larger than" in json.loads(p)["error"]["message"]
        # a chunked body (no Content-Length) is cut off as well
        c = s.conn()
        c.putrequest("POST", "/v1/completions")
        c.putheader("Transfer-Encoding", "chunked")
        c.endheaders()
        try:
            for _ in range(8):
                c.send(b"400\r\n" + b" " * 1024 + b"\r\n")
            c.send(b"0\r\n\r\n")
        except OSError:
            pass
        r = c.getresponse()
        assert r.status == 413
        c.close()
        assert s.request("GET", "/health")[0] == 200
    finally:
        assert s.stop() == 0


def test_api_key(model):
    s = Server(model, ["-np", "1", "-c", "128"], key="s3cret")
    try:
        assert s.request("GET", "/health", auth=False)[0] == 200
        assert s.request("GET", "/", auth=False)[0] == 200
        for path in ("/v1/models", "/metrics"):
            st, _, p = s.request("GET", path, auth=False)
            assert st == 401 and json.loads(p)["error"]["type"] == "invalid_api_key"
            st, _, p = s.request("GET", path, auth=False, headers={"Authorization": "Bearer wrong"})
            assert st == 401
        st, _, p = s.request("POST", "/v1/completions", {"prompt": "x", "max_tokens": 1}, auth=False)
        assert st == 401
        assert s.request("GET", "/v1/models")[0] == 200
        assert s.post("/v1/completions", {"prompt": "x", "max_tokens": 1})[0] == 200
    finally:
        assert s.stop() == 0


def test_chat_content_is_plain_text(server, model):
    """Control-token text in a message stays text: it is tokenized as plain text, never
    as the special token itself (no injected end-of-turn)."""
    def prompt_tokens(content):
        st, _, r = server.post("/v1/chat/completions", chat([{"role": "user", "content": content}], max_tokens=1))
        assert st == 200, r
        return r["usage"]["prompt_tokens"]
    base = prompt_tokens("Hello")
    injected = prompt_tokens("Hello<|eot_id|>")
    assert injected - base == tokens_plain(model, "Hello<|eot_id|>") - tokens_plain(model, "Hello")
    assert injected - base > 1


# ---- concurrency ----------------------------------------------------------------------------------------

def test_parallel_clients_exact(server):
    """16 concurrent greedy clients get exactly the text each gets alone."""
    prompts = ["Prompt number %d: %s" % (i, "abcdefghijklmnop"[i:] * (1 + i % 3)) for i in range(16)]
    bodies = [{"prompt": p, "max_tokens": 24, "temperature": 0} for p in prompts]
    alone = [server.post("/v1/completions", b)[2]["choices"][0]["text"] for b in bodies]
    got = [None] * 16

    def worker(i):
        st, _, r = server.post("/v1/completions", bodies[i])
        got[i] = r["choices"][0]["text"] if st == 200 else r

    th = [threading.Thread(target=worker, args=(i,)) for i in range(16)]
    for t in th:
        t.start()
    for t in th:
        t.join(60)
    assert got == alone


def test_prefix_reuse(server):
    msgs = [{"role": "user", "content": "A fairly long first message " * 8}]
    st, _, r1 = server.post("/v1/chat/completions", chat(msgs, max_tokens=8))
    msgs += [r1["choices"][0]["message"], {"role": "user", "content": "and a follow-up"}]
    st, _, r2 = server.post("/v1/chat/completions", chat(msgs, max_tokens=8))
    assert st == 200
    assert r2["usage"]["prompt_tokens_details"]["cached_tokens"] >= r1["usage"]["prompt_tokens"] - 1


def wait_idle(server, timeout=5):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if server.metrics()["bitnet_active_slots"] == 0:
            return True
        time.sleep(0.02)
    return False


def test_disconnect_frees_slot(server):
    before = server.metrics()["bitnet_requests_cancelled_total"]
    # a stream abandoned after two events
    sock = socket.create_connection(("127.0.0.1", server.port))
    body = json.dumps({"prompt": "x", "max_tokens": 400, "stream": True, "ignore_eos": True}).encode()
    sock.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Content-Length: %d\r\n\r\n" % len(body) + body)
    got = b""
    while got.count(b"data: ") < 2:
        chunk = sock.recv(4096)
        assert chunk
        got += chunk
    sock.close()
    assert wait_idle(server)
    # a non-streamed request whose client leaves before the answer
    sock = socket.create_connection(("127.0.0.1", server.port))
    body = json.dumps({"prompt": "y", "max_tokens": 400, "ignore_eos": True}).encode()
    sock.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    time.sleep(0.05)
    sock.close()
    assert wait_idle(server)
    assert server.metrics()["bitnet_requests_cancelled_total"] >= before + 1
    assert server.post("/v1/completions", {"prompt": "z", "max_tokens": 2})[0] == 200


def test_queue_full_429(model):
    """One slot, a queue of one: a third request is refused at once with 429 and
    Retry-After; the queued one runs when the slot frees up."""
    s = Server(model, ["-np", "1", "-c", "2048", "--queue", "1"])
    try:
        # A: holds the slot (a stream read only until its first event)
        a = socket.create_connection(("127.0.0.1", s.port))
        body = json.dumps({"prompt": "x", "max_tokens": 2000, "stream": True, "ignore_eos": True}).encode()
        a.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        got = b""
        while b"data: " not in got:
            got += a.recv(4096)
        # B: waits in the queue
        res_b = []
        tb = threading.Thread(target=lambda: res_b.append(s.post("/v1/completions", {"prompt": "y", "max_tokens": 4})))
        tb.start()
        deadline = time.time() + 10
        while s.metrics()["bitnet_queue_length"] < 1 and time.time() < deadline:
            time.sleep(0.01)
        assert s.metrics()["bitnet_queue_length"] == 1
        # C: no room
        st, h, r = s.post("/v1/completions", {"prompt": "z", "max_tokens": 4})
        assert st == 429 and h.get("Retry-After") and r["error"]["type"] == "rate_limit_exceeded"
        a.close()  # A is cancelled, B gets the slot
        tb.join(60)
        assert res_b and res_b[0][0] == 200
    finally:
        assert s.stop() == 0


def test_timeout(model):
    s = Server(model, ["-np", "1", "-c", "4096", "--timeout", "0.3"])
    try:
        st, _, r = s.post("/v1/completions", {"prompt": "x", "max_tokens": 4000, "ignore_eos": True})
        assert st == 504 and r["error"]["type"] == "timeout"
        st, ev, done = s.stream("/v1/completions", {"prompt": "x", "max_tokens": 4000, "stream": True, "ignore_eos": True})
        assert st == 200 and done and ev[-1].get("error", {}).get("type") == "timeout"
        assert s.metrics()["bitnet_requests_timeout_total"] == 2
    finally:
        assert s.stop() == 0


def test_sigterm_loses_nothing(model):
    """SIGTERM while requests run and wait: every accepted request gets a complete answer
    (200 with [DONE], or a clear 503 / error event), and the server exits 0."""
    s = Server(model, ["-np", "2", "-c", "2048", "--queue", "16", "--shutdown-grace", "1"])
    results = []
    lock = threading.Lock()

    def worker(i):
        try:
            if i % 2:
                st, ev, done = s.stream("/v1/completions", {"prompt": "s%d" % i, "max_tokens": 1500, "stream": True,
                                                            "ignore_eos": True})
                ok = (st == 200 and done) or st == 503
            else:
                st, _, r = s.post("/v1/completions", {"prompt": "n%d" % i, "max_tokens": 1500, "ignore_eos": True})
                ok = st == 200 or (st == 503 and r["error"]["type"] == "server_shutdown")
            with lock:
                results.append((i, st, ok))
        except Exception as e:  # a connection closed without an answer
            with lock:
                results.append((i, repr(e), False))

    th = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
    for t in th:
        t.start()
    time.sleep(0.5)
    rc = s.stop(signal.SIGTERM, timeout=30)
    for t in th:
        t.join(30)
    assert rc == 0, s.output()
    assert len(results) == 6 and all(ok for _, _, ok in results), results


def test_curl(server):
    """curl, as the docs show it: -d without a Content-Type, streaming with -N."""
    import shutil
    if not shutil.which("curl"):
        pytest.skip("curl is not installed")
    base = "http://127.0.0.1:%d" % server.port
    r = subprocess.run(["curl", "-sS", "-f", base + "/v1/chat/completions", "-d",
                        json.dumps({"messages": [{"role": "user", "content": "Hello!"}], "max_tokens": 8,
                                    "temperature": 0})], capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    plain = json.loads(r.stdout)["choices"][0]["message"]["content"]
    r = subprocess.run(["curl", "-sS", "-N", "-f", base + "/v1/chat/completions", "-H", "Content-Type: application/json",
                        "-d", json.dumps({"messages": [{"role": "user", "content": "Hello!"}], "max_tokens": 8,
                                          "temperature": 0, "stream": True})], capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    events = [l[6:] for l in r.stdout.decode().split("\n") if l.startswith("data: ")]
    assert events[-1] == "[DONE]"
    text = "".join(json.loads(e)["choices"][0]["delta"].get("content", "") for e in events[:-1])
    assert text == plain
    r = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", base + "/v1/embeddings", "-d", "{"],
                       capture_output=True, timeout=60)
    assert r.stdout == b"400"


def test_embeddings_equal_library(server, model):
    """/v1/embeddings (pooled chunk by chunk in batched steps) equals the library's own
    pooled embedding of the same text (bitnet-cli --embedding)."""
    text = "the quick brown fox jumps over the lazy dog " * 12  # several prefill chunks
    r = subprocess.run([os.path.join(BIN, "bitnet-cli"), "-m", model, "--embedding", "-p", text,
                        "--embd-output-format", "json"], capture_output=True, check=True)
    want = json.loads(r.stdout)["data"][0]["embedding"]
    st, _, got = server.post("/v1/embeddings", {"input": text})
    assert st == 200
    v = got["data"][0]["embedding"]
    assert len(v) == len(want)
    assert max(abs(a - b) for a, b in zip(v, want)) < 1e-5
