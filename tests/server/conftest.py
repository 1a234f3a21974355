"""Fixtures for the bitnet-server tests: a tiny generated model and servers on 127.0.0.1.

Every server is started on a free loopback port, waited for through /health, and
stopped with SIGTERM at the end of its test module (its exit status must be 0).
"""
import http.client
import json
import os
import signal
import socket
import subprocess
import time

import pytest

BIN = os.environ.get("BITNET_BIN_DIR", os.path.join(os.path.dirname(__file__), "..", "..", "build", "bin"))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Server:
    def __init__(self, model, args=(), key=None):
        self.port = free_port()
        self.key = key
        cmd = [os.path.join(BIN, "bitnet-server"), "-m", model, "--port", str(self.port)] + list(args)
        if key:
            cmd += ["--api-key", key]
        self.log = open(model + ".%d.log" % self.port, "w+")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("bitnet-server exited: " + self.output())
            try:
                st, _, _ = self.request("GET", "/health", auth=False)
                if st == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("bitnet-server did not come up: " + self.output())

    def output(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def conn(self, timeout=60):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(self, method, path, body=None, auth=True, headers=None, raw=None, timeout=60):
        c = self.conn(timeout)
        h = dict(headers or {})
        if auth and self.key:
            h["Authorization"] = "Bearer " + self.key
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        if data is not None:
            h.setdefault("Content-Type", "application/json")
        c.request(method, path, body=data, headers=h)
        r = c.getresponse()
        payload = r.read()
        c.close()
        return r.status, dict(r.getheaders()), payload

    def post(self, path, body, **kw):
        st, h, p = self.request("POST", path, body, **kw)
        return st, h, json.loads(p) if p else None

    def stream(self, path, body):
        """POST with stream: true; returns (status, list of decoded events, saw [DONE])."""
        c = self.conn()
        h = {"Content-Type": "application/json"}
        if self.key:
            h["Authorization"] = "Bearer " + self.key
        c.request("POST", path, body=json.dumps(body).encode(), headers=h)
        r = c.getresponse()
        if r.status != 200:
            p = r.read()
            c.close()
            return r.status, [json.loads(p)], False
        assert r.getheader("Content-Type").startswith("text/event-stream")
        events, done = [], False
        for block in r.read().decode().split("\n\n"):
            if not block.strip():
                continue
            assert block.startswith("data: "), block
            data = block[6:]
            if data == "[DONE]":
                done = True
                continue
            assert not done, "event after [DONE]"
            events.append(json.loads(data))
        c.close()
        return 200, events, done

    def metrics(self):
        st, _, p = self.request("GET", "/metrics")
        assert st == 200
        out = {}
        for line in p.decode().splitlines():
            if line and not line.startswith("#"):
                k, v = line.rsplit(" ", 1)
                out[k] = float(v)
        return out

    def stop(self, sig=signal.SIGTERM, timeout=30):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("bitnet-server did not stop within %ds: %s" % (timeout, self.output()))
        return self.proc.returncode


@pytest.fixture(scope="session")
def model(tmp_path_factory):
    """A tiny random model with a byte-level BPE vocabulary that has LLaMA-3-style
    special tokens (<|eot_id|> ...) and bitnet.cpp's chat template."""
    path = str(tmp_path_factory.mktemp("model") / "tiny.gguf")
    subprocess.run([os.path.join(BIN, "bitnet-gen-dummy"), "--size", "125M", "--layers", "2", "--embd", "256",
                    "--heads", "4", "--heads-kv", "2", "--ff", "512", "--vocab-kind", "bpe", "--seed", "3", "-q",
                    "-o", path], check=True)
    return path


@pytest.fixture(scope="module")
def server(model):
    s = Server(model, ["-np", "4", "-c", "512", "-t", "2", "--timeout", "60"])
    yield s
    assert s.stop() == 0, s.output()
