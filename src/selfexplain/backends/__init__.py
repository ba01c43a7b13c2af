"""Model backends: the two operations the protocol needs, behind one interface.

* :meth:`Backend.label_logprobs`: for each chat, the log-probability of every
  label verbalizer as the complete opening of the assistant's reply (all of its
  tokens, so multi-token labels are scored correctly);
* :meth:`Backend.generate`: greedy, deterministic continuation of each chat;
* :meth:`Backend.top_tokens`: the most probable first tokens of the reply (counterfactual construction
  ranks its candidate words with it when the greedy word is rejected);
* :meth:`Backend.sample`: seeded sampled replies (only the chain-of-thought cue test's resampling control
  asks for them; the protocol itself is greedy).

Chats are lists of ``{"role": ..., "content": ...}`` messages rendered with
the model's own chat template.  Backends register by name (``--backend``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Callable

from ..errors import UserError
from ..registry import Registry

Chat = list[dict[str, str]]


@dataclass(frozen=True)
class Generation:
    text: str
    n_tokens: int
    truncated: bool  # stopped by max_new_tokens, not by an end-of-turn token
    reasoning: str | None = None  # a server's separate reasoning field (a thinking model's thoughts), if any


class Backend(ABC):
    #: exact identity of the weights and settings that affect outputs; hashed into run ids
    identity: dict[str, Any]

    @abstractmethod
    def label_logprobs(self, chats: list[Chat], labels: list[str]) -> list[list[float]]:
        """log p(label | chat) for every chat and label, in ``labels`` order."""

    @abstractmethod
    def generate(self, chats: list[Chat], max_new_tokens: list[int]) -> list[Generation]:
        """Greedy replies, one per chat, each with its own token budget."""

    def top_tokens(self, chats: list[Chat], k: int) -> list[list[tuple[str, float]]]:
        """The ``k`` most probable first tokens of each chat's reply, as (decoded text, log-probability),
        most probable first."""
        raise UserError(
            f"the {type(self).__name__} backend cannot rank a reply's first tokens "
            "(counterfactual construction needs it when the greedy word is rejected; "
            "--cf-candidates 0 drops those samples instead)"
        )

    def sample(
        self, chats: list[Chat], max_new_tokens: list[int], temperature: float, seeds: list[int]
    ) -> list[Generation]:
        """Replies sampled at ``temperature``, one per chat, each reproducible from its entry of ``seeds``."""
        raise UserError(
            f"the {type(self).__name__} backend cannot sample replies (the cue test's --resamples needs it; "
            "--resamples 0 leaves that control out)"
        )

    def runtime(self) -> dict[str, Any]:
        """How this backend runs (device, batch sizes): recorded in a run's config, not hashed into its id."""
        return {}

    def context_window(self) -> int | None:
        """The most tokens the model attends to (prompt and reply together); None where unknown."""
        return None

    def prompt_lengths(self, chats: list[Chat]) -> list[int] | None:
        """Each chat's prompt in tokens, as the model would read it; None where the backend cannot count."""
        return None


#: Every backend a run can name (``--backend``).  The shipped ones are lazy entries: each imports its heavy library
#: only when a model loads, so listing them costs nothing.  Users add theirs with :func:`register_backend`.
BACKENDS: Registry[Callable[..., Backend]] = Registry("backend")
BACKENDS.add_lazy("hf", "selfexplain.backends.hf:HFBackend", "transformers")
BACKENDS.add_lazy("vllm", "selfexplain.backends.vllm:VLLMBackend", "vLLM; pip install 'selfexplain[vllm]'")
BACKENDS.add_lazy(
    "openai", "selfexplain.backends.server:ServerBackend", "an OpenAI-compatible server: vLLM, llama.cpp, ..."
)


def backend_names() -> list[str]:
    """Every backend a run can name: the shipped ones, then any registered by the user."""
    return BACKENDS.names()


def describe_backends() -> str:
    """``hf (transformers), vllm (...), openai (...)``: for help texts, from the registry."""
    return BACKENDS.describe()


def register_backend(
    name: str, description: str = "", *, replace: bool = False
) -> Callable[[Callable[..., Backend]], Callable[..., Backend]]:
    """Decorator: make a backend class (or any factory ``(model, **model_args) -> Backend``) available by name.

    Args:
        name: the backend's name (``--backend``).
        description: what it is, for help texts.
        replace: replace a backend registered under ``name``.

    Returns:
        The decorator (it returns the factory unchanged).

    Raises:
        UserError: ``name`` is already registered and ``replace`` is false.
    """
    return BACKENDS.register(name, description, replace=replace)


def load_backend(name: str, model: str, /, **kwargs: Any) -> Backend:
    """Load a model with a registered backend.

    Args:
        name: the backend's name.
        model: what the backend loads (``embedded``, a path, a hub id, a served model's name).
        **kwargs: its ``--model-args``.

    Returns:
        The loaded backend.

    Raises:
        UserError: unknown backend (the message lists the known ones), or the backend's own input errors.
    """
    factory = BACKENDS.get(name)
    if name == "openai":
        # lm-evaluation-harness style: --model-args model=NAME names the served model
        model = kwargs.pop("model", None) or model
    return factory(model, **kwargs)


def parse_model_args(text: str | None) -> dict[str, Any]:
    """``key=value,key=value`` as in lm-evaluation-harness's ``--model_args``."""
    out: dict[str, Any] = {}
    if not text:
        return out
    for item in text.split(","):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--model-args: expected key=value, got {item!r}")
        v: Any = value.strip()
        if v.lower() in ("true", "false"):
            v = v.lower() == "true"
        elif v.lstrip("-").isdigit():
            v = int(v)
        else:
            try:
                v = float(v)  # gpu_memory_utilization=0.8
            except ValueError:
                pass
        out[key.strip()] = v
    return out
