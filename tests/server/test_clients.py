"""Real clients against bitnet-server: the official OpenAI client (npm `openai`, under
node) and the built-in page in headless Chromium (Debian's chromium, driven by npm
`playwright-core`).  The npm packages go to $BITNET_NPM_CACHE; when node, npm, the
registry or chromium are missing the tests skip, unless BITNET_REQUIRE_REFERENCE=1
(as in CI) makes that a failure."""
import os
import shutil
import subprocess

import pytest

from conftest import Server

HERE = os.path.dirname(os.path.abspath(__file__))
PACKAGES = ["openai@7.59.0", "playwright-core@1.65.1"]


def unavailable(why):
    if os.environ.get("BITNET_REQUIRE_REFERENCE") == "1":
        pytest.fail(why)
    pytest.skip(why)


@pytest.fixture(scope="module")
def node_modules(tmp_path_factory):
    cache = os.environ.get("BITNET_NPM_CACHE") or str(tmp_path_factory.mktemp("npm"))
    mods = os.path.join(cache, "node_modules")
    if not shutil.which("node") or not shutil.which("npm"):
        unavailable("node/npm are not installed")
    have = all(os.path.exists(os.path.join(mods, p.rsplit("@", 1)[0], "package.json")) for p in PACKAGES)
    if not have:
        r = subprocess.run(["npm", "install", "--prefix", cache, "--no-audit", "--no-fund", "--silent"] + PACKAGES,
                           capture_output=True, text=True, timeout=300)
        if r.returncode != 0:
            unavailable("npm install failed: " + r.stderr[-500:])
    return mods


@pytest.fixture(scope="module")
def keyed_server(model):
    s = Server(model, ["-np", "2", "-c", "256", "-t", "2"], key="test-key")
    yield s
    assert s.stop() == 0, s.output()


def test_openai_node_client(node_modules, keyed_server):
    r = subprocess.run(["node", os.path.join(HERE, "openai_client.mjs"), node_modules,
                        "http://127.0.0.1:%d/v1" % keyed_server.port, keyed_server.key],
                       capture_output=True, text=True, timeout=120)
    print(r.stdout)
    assert r.returncode == 0, r.stdout + r.stderr


def test_browser_chat_page(node_modules, keyed_server, tmp_path):
    if not os.path.exists("/usr/bin/chromium"):
        unavailable("chromium is not installed (apt-get install chromium)")
    shot = str(tmp_path / "chat.png")
    r = subprocess.run(["node", os.path.join(HERE, "browser_chat.mjs"), node_modules,
                        "http://127.0.0.1:%d" % keyed_server.port, keyed_server.key, shot],
                       capture_output=True, text=True, timeout=180)
    print(r.stdout)
    assert r.returncode == 0, r.stdout + r.stderr
    assert os.path.getsize(shot) > 10000
