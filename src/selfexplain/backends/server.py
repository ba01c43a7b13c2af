"""Models behind an OpenAI-compatible server (``--backend openai``): vLLM, TGI, llama.cpp, SGLang, an API.

    selfexplain evaluate --backend openai \\
        --model-args base_url=http://127.0.0.1:8000/v1,model=NAME,tokenizer=allenai/tulu-2-7b

The protocol is unchanged: classification is label scoring, explanations are greedy.  Two scoring modes,
recorded in the run's identity:

* ``prompt`` (with ``tokenizer=``, the served model's tokenizer): chats are rendered with that
  tokenizer's chat template and the BOS rule of :mod:`.models`, exactly as the hf backend renders them,
  and sent as token ids to the *completions* endpoint, so each label is scored completely, all its
  tokens, as by the hf backend.  A vLLM server is asked, as the in-process vLLM backend asks its engine,
  for the log-probabilities of just the label tokens after each distinct prefix (``logprob_token_ids``:
  one request per chat for one-token labels, served from its prefix cache); any other server for the
  log-probability of every prompt token (``echo`` with ``logprobs``, which vLLM computes without its
  prefix cache).  Generation uses the same endpoint from the same token ids (greedy, the run's seed).
* ``first-token`` (no tokenizer; chat endpoints only, e.g. the OpenAI API): one chat completion of one
  token with ``top_logprobs``; a label's score is its first token's log-probability.  That is an
  approximation for labels of several tokens, and it needs each label's first token among the returned
  top log-probabilities and distinct from the others': otherwise one error line, never a guess.

Requests run in a bounded pool (``concurrency``); the ``openai`` client retries 429, 5xx and dropped
connections with backoff, honouring ``Retry-After``, up to ``max_retries`` times, each request bounded by
``timeout`` seconds.  A server that stays away ends the command in one line; the run's completed chunks
are kept and the same command resumes.  The API key is read from the environment variable named by
``api_key_env`` (default ``OPENAI_API_KEY``) and never written anywhere.
"""

from __future__ import annotations

import os
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, TypeVar

from ..errors import UserError
from . import Backend, Chat, Generation

MODES = ("auto", "prompt", "first-token")
T = TypeVar("T")
MAX_TOP_LOGPROBS = 20  # OpenAI's chat endpoint, and vLLM's server unless started with --max-logprobs


class _NoTokenLogprobs(Exception):
    """The server does not return log-probabilities of chosen tokens (not vLLM): score through echo."""


def public_url(url: str) -> str:
    """``url`` without credentials or query (which may carry keys): what may be recorded and shown."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path.rstrip("/"), "", ""))


class ServerBackend(Backend):
    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        tokenizer: str | None = None,
        scoring: str = "auto",
        api_key_env: str = "OPENAI_API_KEY",
        concurrency: int = 8,
        timeout: float = 120.0,
        max_retries: int = 6,
        seed: int = 0,
        top_logprobs: int = 20,
        trust_remote_code: bool = False,
        context_window: int | None = None,
        **unknown: Any,
    ):
        if unknown:
            raise UserError(
                f"--model-args: unknown key(s) {', '.join(sorted(unknown))} for --backend openai "
                "(base_url, model, tokenizer, scoring, api_key_env, concurrency, timeout, max_retries, "
                "seed, top_logprobs, context_window)"
            )
        if not base_url:
            raise UserError("--backend openai needs --model-args base_url=http://HOST:PORT/v1")
        if scoring not in MODES:
            raise UserError(f"--model-args scoring={scoring}: use one of {', '.join(MODES)}")
        if scoring == "prompt" and not tokenizer:
            raise UserError("--model-args scoring=prompt needs tokenizer=... (the served model's tokenizer)")
        if int(concurrency) < 1:
            raise UserError("--model-args concurrency must be at least 1")
        try:
            from openai import OpenAI
        except ImportError:
            raise UserError("--backend openai needs the openai client: pip install 'selfexplain[server]'") from None
        self.url = public_url(base_url)
        self.served = model
        # A server does not say its window through the OpenAI API: given here (vLLM's max_model_len, llama.cpp's
        # --ctx-size), over-long prompts are left out as with the other backends (needs tokenizer= to count).
        self.window = int(context_window) if context_window else None
        self.concurrency = int(concurrency)
        self.seed = int(seed)
        self.top_logprobs = int(top_logprobs)
        # "EMPTY" is what vLLM and most local servers accept when they run without a key.
        self.client = OpenAI(
            base_url=base_url,
            api_key=os.environ.get(api_key_env) or "EMPTY",
            max_retries=int(max_retries),
            timeout=float(timeout),
        )
        self.mode = "prompt" if (scoring == "prompt" or (scoring == "auto" and tokenizer)) else "first-token"
        self._token_logprobs: bool | None = None  # whether logprob_token_ids works here: found out on first use
        # Whether the server takes prompts only as text (llama-cpp-python's server refuses token ids): found out by
        # one probe before the first prompt-mode request.
        self._text_prompts: bool | None = None
        self.tokenizer: Any = None
        tok_identity = None
        if tokenizer:
            from ..models import generation_eos, load_tokenizer, resolve_model, stop_token_ids

            resolved = resolve_model(tokenizer)
            self.tokenizer = load_tokenizer(resolved, trust_remote_code)
            # where the hf and vLLM backends stop: the generation config's end ids and the template's end of turn
            self.eos_ids = stop_token_ids(self.tokenizer, generation_eos(resolved.load_path, resolved.revision))
            tok_identity = resolved.identity
        self.identity = {
            "kind": "server",
            "name": model,
            "base_url": self.url,
            "served_model": model,
            "server_version": self._server_version(),
            "scoring": self.mode,
            "tokenizer": tok_identity,
            "seed": self.seed,
        }

    # ---- requests ---------------------------------------------------------------

    def _call(self, fn: Callable[[], T]) -> T:
        """One request; what the client could not recover from becomes one line without secrets."""
        import openai

        try:
            return fn()
        except openai.APIConnectionError as e:
            raise UserError(
                f"server {self.url}: unreachable after retries ({type(e).__name__}); completed "
                "chunks are kept: run the same command again when the server is back"
            ) from None
        except openai.APIStatusError as e:
            raise UserError(
                f"server {self.url}: HTTP {e.status_code} ({_brief(e)}); completed chunks are kept: "
                "run the same command again once it is fixed"
            ) from None

    def _pool(self, fn: Callable[[Any], T], items: list[Any]) -> list[T]:
        if len(items) <= 1 or self.concurrency == 1:
            return [self._call(lambda: fn(x)) for x in items]
        with ThreadPoolExecutor(self.concurrency) as pool:
            return list(pool.map(lambda x: self._call(lambda: fn(x)), items))

    def _server_version(self) -> str | None:
        """vLLM answers ``GET /version`` beside ``/v1``; other servers may not: then None."""
        import httpx

        root = self.url[: -len("/v1")] if self.url.endswith("/v1") else self.url
        try:
            r = httpx.get(f"{root}/version", timeout=10)
            return str(r.json().get("version")) if r.status_code == 200 else None
        except (httpx.HTTPError, ValueError, AttributeError):
            return None

    # ---- the two operations ---------------------------------------------------

    def context_window(self) -> int | None:
        return self.window

    def runtime(self) -> dict[str, Any]:
        """How prompts went to the server (recorded, not hashed: the checked tokens are the same either way)."""
        if self.mode != "prompt" or self._text_prompts is None:
            return {}
        return {"prompts": "text, tokens checked" if self._text_prompts else "token ids"}

    def prompt_lengths(self, chats: list[Chat]) -> list[int] | None:
        from ..models import chat_prompt

        return [len(chat_prompt(self.tokenizer, c)[2]) for c in chats] if self.tokenizer is not None else None

    def label_logprobs(self, chats: list[Chat], labels: list[str]) -> list[list[float]]:
        if not chats:
            return []
        if self.mode == "first-token":
            return self._pool(lambda chat: self._first_token_scores(chat, labels), chats)
        from ..models import label_jobs

        jobs = label_jobs(self.tokenizer, chats, labels)
        scores = None
        if self._takes_text():
            self._token_logprobs = False  # a vLLM extension: token ids in, token ids out
        if self._token_logprobs is not False:
            try:
                scores = self._next_token_scores(jobs)
                self._token_logprobs = True
            except _NoTokenLogprobs:
                self._token_logprobs = False
        if scores is None:
            scores = self._pool(self._prompt_score, jobs)
        k = len(labels)
        return [scores[i * k : (i + 1) * k] for i in range(len(chats))]

    def _next_token_scores(self, jobs: list[tuple[list[int], list[int]]]) -> list[float]:
        """Label log-probabilities from one request per distinct prefix (chat, chat + partial label)."""
        from ..models import MAX_TOKEN_LOGPROBS, label_sums, next_token_requests

        requests = next_token_requests(jobs, MAX_TOKEN_LOGPROBS)
        got = self._pool(self._token_logprob_request, requests)
        return label_sums(
            jobs, {(prefix, tok): lp for (prefix, toks), lps in zip(requests, got) for tok, lp in zip(toks, lps)}
        )

    def _token_logprob_request(self, request: tuple[tuple[int, ...], list[int]]) -> list[float]:
        import openai

        prefix, toks = request
        try:
            r = self.client.completions.create(
                model=self.served,
                prompt=list(prefix),
                max_tokens=1,
                temperature=0,
                logprobs=1,
                seed=self.seed,
                extra_body={"logprob_token_ids": toks, "return_tokens_as_token_ids": True},
            )
        except openai.BadRequestError:  # a server that does not know the parameters
            raise _NoTokenLogprobs from None
        lp = r.choices[0].logprobs
        top = (lp.top_logprobs or [None])[0] if lp else None
        if not top or any(f"token_id:{t}" not in top for t in toks):  # parameters ignored
            raise _NoTokenLogprobs
        return [float(top[f"token_id:{t}"]) for t in toks]

    def _prompt_score(self, job: tuple[list[int], list[int]]) -> float:
        ids, lab = job
        r = self._complete(ids + lab, max_tokens=1, temperature=0, echo=True, logprobs=0, seed=self.seed)
        lp = r.choices[0].logprobs
        got = lp.token_logprobs if lp else None
        if not got or len(got) < len(ids) + len(lab):
            raise UserError(
                f"server {self.url}: the completions endpoint returned no prompt log-probabilities "
                "(echo + logprobs); use scoring=first-token, or a server that returns them (vLLM)"
            )
        if self._text_prompts:
            self._check_tokens(ids + lab, list(lp.tokens or []))
        return float(sum(got[len(ids) + k] for k in range(len(lab))))

    # ---- servers that take text prompts only ---------------------------------------------------

    def _takes_text(self) -> bool:
        """Whether prompts go as text: one probe with a one-token id prompt, without retries, decides it."""
        if self._text_prompts is None:
            import openai

            probe = self.tokenizer(" a", add_special_tokens=False).input_ids[:1] or [0]
            try:
                self.client.with_options(max_retries=0).completions.create(
                    model=self.served, prompt=probe, max_tokens=1, temperature=0
                )
                self._text_prompts = False
            except (openai.BadRequestError, openai.UnprocessableEntityError, openai.InternalServerError) as e:
                # llama-cpp-python: HTTP 500 "... 'prompt' ... Input should be a valid string"
                if "prompt" not in _brief(e).lower():
                    raise
                self._text_prompts = True
            except openai.APIError:
                self._text_prompts = False  # busy or unreachable: the real requests retry and say so
        return self._text_prompts

    def _text_of(self, ids: list[int]) -> str:
        """The text a server tokenizes back into ``ids``.  A tokenizer that adds a BOS itself adds it on the server
        too, so the text leaves it out; one that does not (a chat template that opens with its BOS-like token,
        as SmolLM2's ``<|im_start|>``) keeps every token in the text."""
        bos = self.tokenizer.bos_token_id
        adds_bos = bos is not None and self.tokenizer("a").input_ids[:1] == [bos]
        body = ids[1:] if adds_bos and ids[:1] == [bos] else ids
        return self.tokenizer.decode(body, skip_special_tokens=False, clean_up_tokenization_spaces=False)

    def _complete(self, ids: list[int], **kwargs: Any) -> Any:
        """A completion of a prompt given as token ids, or as its text on a server that takes only text."""
        if self._takes_text():
            kwargs.pop("extra_body", None)
            return self.client.completions.create(model=self.served, prompt=self._text_of(ids), **kwargs)
        return self.client.completions.create(model=self.served, prompt=ids, **kwargs)

    def _check_tokens(self, ids: list[int], tokens: list[str]) -> None:
        """The server's tokens of a text prompt must be the local tokenizer's, or its scores are of another
        sequence than the one the hf backend scores: stop with the first difference."""
        local = [self.tokenizer.decode([i], skip_special_tokens=False) for i in ids]
        for k, (mine, theirs) in enumerate(zip(local, tokens)):
            if mine != theirs:
                raise UserError(
                    f"server {self.url}: it tokenizes the text prompt differently from tokenizer= "
                    f"(token {k}: server {theirs!r}, local {mine!r}); scores would be of another "
                    "sequence (give the served model's own tokenizer)"
                )
        if len(tokens) < len(local):
            raise UserError(
                f"server {self.url}: it tokenizes the text prompt into {len(tokens)} tokens, the "
                f"local tokenizer= into {len(local)}; scores would be of another sequence"
            )

    def _first_token_scores(self, chat: Chat, labels: list[str]) -> list[float]:
        r = self.client.chat.completions.create(
            model=self.served,
            messages=chat,
            max_tokens=1,
            temperature=0,
            logprobs=True,
            top_logprobs=self.top_logprobs,
            seed=self.seed,
        )
        content = r.choices[0].logprobs.content if r.choices[0].logprobs else None
        if not content:
            raise UserError(
                f"server {self.url}: the chat endpoint returned no log-probabilities "
                "(logprobs / top_logprobs); this server cannot score labels"
            )
        top = {t.token: t.logprob for t in content[0].top_logprobs}
        return first_token_scores(top, labels, self.top_logprobs)

    def top_tokens(self, chats: list[Chat], k: int) -> list[list[tuple[str, float]]]:
        return self._pool(lambda chat: self._top_tokens_one(chat, min(k, MAX_TOP_LOGPROBS)), chats)

    def _top_tokens_one(self, chat: Chat, k: int) -> list[tuple[str, float]]:
        if self.mode == "first-token":
            r = self.client.chat.completions.create(
                model=self.served,
                messages=chat,
                max_tokens=1,
                temperature=0,
                logprobs=True,
                top_logprobs=k,
                seed=self.seed,
            )
            content = r.choices[0].logprobs.content if r.choices[0].logprobs else None
            top = {t.token: t.logprob for t in content[0].top_logprobs} if content else {}
        else:
            from ..models import chat_prompt

            r = self._complete(
                chat_prompt(self.tokenizer, chat)[2], max_tokens=1, temperature=0, logprobs=k, seed=self.seed
            )
            lp = r.choices[0].logprobs
            top = dict((lp.top_logprobs or [{}])[0] or {}) if lp else {}
        if not top:
            raise UserError(
                f"server {self.url}: returned no top log-probabilities for the reply's first token; "
                "it cannot rank counterfactual candidates (--cf-candidates 0 drops those samples)"
            )
        return sorted(((t, float(v)) for t, v in top.items()), key=lambda tv: -tv[1])[:k]

    def generate(self, chats: list[Chat], max_new_tokens: list[int]) -> list[Generation]:
        return self._pool(lambda job: self._generate_one(*job), list(zip(chats, max_new_tokens)))

    def sample(
        self, chats: list[Chat], max_new_tokens: list[int], temperature: float, seeds: list[int]
    ) -> list[Generation]:
        # Each request carries its own seed; a server that ignores seeds (OpenAI's "best effort") samples anew.
        jobs = list(zip(chats, max_new_tokens, [temperature] * len(chats), [int(s) for s in seeds]))
        return self._pool(lambda job: self._generate_one(*job), jobs)

    def _generate_one(self, chat: Chat, budget: int, temperature: float = 0.0, seed: int | None = None) -> Generation:
        seed = self.seed if seed is None else seed
        if self.mode == "first-token":
            r = self.client.chat.completions.create(
                model=self.served, messages=chat, max_tokens=budget, temperature=temperature, seed=seed
            )
            choice = r.choices[0]
            text = choice.message.content or ""
            # vLLM's reasoning parsers put a thinking model's thoughts beside the content (two names in use)
            thought = getattr(choice.message, "reasoning_content", None) or getattr(choice.message, "reasoning", None)
        else:
            from ..models import chat_prompt

            r = self._complete(
                chat_prompt(self.tokenizer, chat)[2],
                max_tokens=budget,
                temperature=temperature,
                seed=seed,
                # vLLM's extensions (other servers ignore them; not sent with text prompts): stop where the hf
                # backend stops
                extra_body={"stop_token_ids": self.eos_ids, "skip_special_tokens": True},
            )
            choice = r.choices[0]
            text = choice.text or ""
            thought = None
        n = r.usage.completion_tokens if r.usage else 0
        if choice.finish_reason == "stop" and n:
            n -= 1  # the end-of-turn token, which the hf backend does not count
        reasoning = thought if isinstance(thought, str) else None
        return Generation(text.strip(), n, choice.finish_reason == "length", reasoning)


def first_token_scores(top: dict[str, float], labels: list[str], k: int) -> list[float]:
    """Each label's score: the log-probability of the returned token that opens it (the longest such,
    spaces ignored).  Refuses labels whose token is missing from the top ``k`` or shared with another's."""
    chosen: list[str] = []
    for label in labels:
        opening = [t for t in top if t.strip() and label.startswith(t.strip())]
        if not opening:
            raise UserError(
                f"label {label!r}: its first token is not among the server's top {k} "
                "log-probabilities; first-token scoring cannot score it (give tokenizer= for "
                "complete scoring, or raise top_logprobs)"
            )
        chosen.append(max(opening, key=lambda t: (len(t.strip()), top[t])))
    shared = {t for t in chosen if chosen.count(t) > 1}
    if shared:
        names = [lab for lab, t in zip(labels, chosen) if t in shared]
        raise UserError(
            f"labels {names} open with the same token {sorted(shared)[0]!r}: first-token scoring "
            "cannot tell them apart (give tokenizer= for complete scoring)"
        )
    return [float(top[t]) for t in chosen]


def _brief(e: Any) -> str:
    """The server's own message, short (never the request, whose headers carry the key)."""
    body = getattr(e, "body", None)
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        body = body["error"]
    msg = body.get("message") if isinstance(body, dict) else None
    return " ".join(str(msg).split())[:200] if msg else type(e).__name__
