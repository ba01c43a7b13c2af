"""The transformers + PyTorch backend (CPU or GPU).

Label scoring runs the token prefix that all sequences of a call share (chat
template, system prompt, task text before the input) once, keeps its
key/value cache, and runs only the rest: length-bucketed, right-padded, with
explicit position ids, projecting to the vocabulary only the positions whose
label probabilities are needed.

Generation is greedy decoding of our own on the same cache machinery, because
the protocol's prompts overlap: the three explanation chats of a sample begin
with its classification chat, which label scoring has just run.  Prompts of
small scoring calls (a chunk's classifications) keep their key/value cache for
a while; a generation prompt that begins with one of them starts from that
cache, and prompts that share a longer prefix (the styles of one sample) run it
once.  Only the rest of each prompt is computed.  ``generate_plain`` is the
reference: ``transformers``' own ``generate`` on whole left-padded prompts.
Either way a padded row computes what it would compute alone, up to float
rounding (tests hold scores to 1e-4 against one unpadded pass per row, and
greedy texts equal to the reference).

That is the CPU path.  On a GPU (see :mod:`.batching`) the batch sizes are planned from free memory, and
replies are decoded by ``generate_static``: transformers' static key/value cache with its compiled decode
step, many replies per weight read, whole prompts prefilled; ``--model-args static_cache=false`` keeps the
shared path there too.

The class is assembled from :mod:`.forward` (passes and caches), :mod:`.scoring` and :mod:`.decoding`.
"""

from __future__ import annotations

from typing import Any

from ...errors import UserError
from ...models import load_model, stop_token_ids
from .. import Backend
from ..batching import CPU, device_plan, with_overrides
from .decoding import Decoding
from .scoring import LabelScoring


class HFBackend(LabelScoring, Decoding, Backend):
    def __init__(
        self,
        model: str,
        *,
        revision: str | None = None,
        dtype: str = "auto",
        device: str = "auto",
        max_batch_size: int | None = None,
        max_batch_tokens: int | None = None,
        decode_rows: int | None = None,
        static_cache: bool | None = None,
        trust_remote_code: bool = False,
        adapter: str | None = None,
        share_prompts: bool = True,
        **unknown: Any,
    ):
        if unknown:
            raise UserError(f"--model-args: unknown key(s) {', '.join(unknown)} for backend hf")
        sizes: dict[str, Any] = dict(
            max_batch_size=max_batch_size,
            max_batch_tokens=max_batch_tokens,
            decode_rows=decode_rows,
            static_cache=static_cache,
        )
        with_overrides(CPU, **sizes)  # a bad size fails before a model loads
        loaded = load_model(
            model, revision=revision, dtype=dtype, device=device, trust_remote_code=trust_remote_code, adapter=adapter
        )
        model_obj, tokenizer, identity = loaded
        self._setup(model_obj, tokenizer, identity, share_prompts=share_prompts, **sizes)

    @classmethod
    def from_loaded(cls, model: Any, tokenizer: Any, identity: dict[str, Any], **batching: Any) -> "HFBackend":
        """A backend around a model that is already loaded (training reuses its model for replay)."""
        self = cls.__new__(cls)
        self._setup(model, tokenizer, identity, **batching)
        return self

    def _setup(
        self, model: Any, tokenizer: Any, identity: dict[str, Any], share_prompts: bool = True, **sizes: Any
    ) -> None:
        self.model, self.tokenizer, self.identity = model, tokenizer, identity
        self.model.eval()
        self.device = self.model.device
        # Sizes from the device and the model (fixed on a CPU), then what --model-args gave.
        self.batching = with_overrides(device_plan(self.model), **sizes)
        self.max_batch_size = self.batching.max_batch_size
        self.max_batch_tokens = self.batching.max_batch_tokens
        self.decode_rows = self.batching.decode_rows
        self.pad_id = self.tokenizer.pad_token_id
        self.eos_ids = stop_token_ids(self.tokenizer, self.model.generation_config.eos_token_id)
        self._prefix_memo: dict[tuple[int, ...], list] = {}
        # Key/value caches of recently scored prompts, for the generation that continues them
        # (``share_prompts=False``: off, and generation is transformers' own on whole prompts; a static-cache
        # decode starts from whole prompts too, so it keeps none).  Weights are assumed fixed for the
        # backend's lifetime.
        self.share_prompts = share_prompts
        self._keeps_prompts = share_prompts and not self.batching.static_cache
        self._prompt_kv: dict[tuple[int, ...], list] = {}
        # A compiled decode step is specialised to its shapes: pad batches to a few sizes there.
        self._fixed_shapes = self.device.type == "cuda"

    def runtime(self) -> dict[str, Any]:
        return {"device": str(self.device), "batching": self.batching.to_dict()}

    # ---- tokenisation -------------------------------------------------
