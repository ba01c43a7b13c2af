"""How much the hf backend runs at once: fixed on a CPU, planned from free memory and the model on a GPU.

On a CPU the sizes are the ones the backend was tuned with (16 rows, 8,192 padded tokens per scoring
forward, 64 rows decoded together, our own prefix-sharing decode): larger batches only add padding there,
since a CPU is compute-bound at any batch size.  On a GPU a forward is cheap until it fills the card, and a
decode step costs about one read of the weights whatever the batch, so the sizes follow the memory that is
free once the weights are loaded: the scoring batch holds as many tokens as their keys, values and one
layer's activations allow (tens of thousands for a 7B model on an 80-141 GB card), and decoding takes as
many rows as their static key/value caches allow, so one weight read serves many replies.

``plan`` is a pure function of a few numbers (see :class:`Footprint`), so it is tested without a GPU.
Values given in ``--model-args`` win over the plan, and the values used are written to each run's
``config.json`` under ``runtime`` (outside the hash: the batch sizes change float rounding, not the
protocol).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from ..errors import UserError

#: share of the free memory a plan fills; the rest is for the allocator's fragmentation, compiled graphs'
#: pools and the log-softmax of the scored positions
HEADROOM = 0.8
#: the prompt + reply length a decode row's static cache is sized for
CONTEXT = 1024
MIN_TOKENS, MAX_TOKENS = 8192, 131072  # beyond ~10^5 tokens a forward is at the matrix rate already
MIN_ROWS, MAX_DECODE_ROWS = 16, 256
MIN_ROW_TOKENS = 16  # the shortest row a scoring batch plans for (rows cap = tokens / this)


@dataclass(frozen=True)
class Batching:
    max_batch_size: int  # rows per scoring forward
    max_batch_tokens: int  # padded tokens per scoring forward
    decode_rows: int  # replies decoded together
    static_cache: bool  # decode through transformers' static cache (compiled on CUDA), not our shared one
    planned: str  # how the values were chosen, in words

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


CPU = Batching(max_batch_size=16, max_batch_tokens=8192, decode_rows=64, static_cache=False, planned="CPU defaults")


@dataclass(frozen=True)
class Footprint:
    """The bytes one model needs per token, from its config and dtype."""

    weight_bytes: int
    kv_bytes_per_token: int  # keys + values of every layer
    activation_bytes_per_token: int  # one layer's live activations in a forward, attention scores included

    @classmethod
    def of(cls, config: Any, dtype_bytes: int, weight_bytes: int, context: int = CONTEXT) -> "Footprint":
        cfg = config.get_text_config() if hasattr(config, "get_text_config") else config
        hidden = cfg.hidden_size
        heads = cfg.num_attention_heads
        kv_heads = getattr(cfg, "num_key_value_heads", None) or heads
        head_dim = getattr(cfg, "head_dim", None) or hidden // heads
        inter = getattr(cfg, "intermediate_size", None) or 4 * hidden
        kv = 2 * cfg.num_hidden_layers * kv_heads * head_dim * dtype_bytes
        # residual, normed input, q/k/v/o and the MLP's gate, up and product; eager attention keeps a score
        # per head and key for each query (SDPA keeps none, so this overestimates there)
        act = dtype_bytes * (6 * hidden + 3 * inter) + 4 * heads * context
        return cls(weight_bytes, kv, act)


def plan(device_type: str, free_bytes: int | None, footprint: Footprint | None) -> Batching:
    """Batch sizes for a model on a device with ``free_bytes`` free after its weights are loaded."""
    if device_type != "cuda" or not free_bytes or footprint is None:
        return CPU
    budget = HEADROOM * free_bytes
    per_token = footprint.kv_bytes_per_token + footprint.activation_bytes_per_token
    tokens = _clamp(int(budget // per_token) // 1024 * 1024, MIN_TOKENS, MAX_TOKENS)
    rows = _clamp(tokens // MIN_ROW_TOKENS, MIN_ROWS, tokens)
    decode = _clamp(_pow2_floor(int(budget // (footprint.kv_bytes_per_token * CONTEXT))), MIN_ROWS, MAX_DECODE_ROWS)
    return Batching(
        max_batch_size=rows,
        max_batch_tokens=tokens,
        decode_rows=decode,
        static_cache=True,
        planned=f"planned for {free_bytes / 2**30:.1f} GiB free on {device_type}",
    )


def with_overrides(planned: Batching, **given: Any) -> Batching:
    """``planned`` with the sizes given in ``--model-args`` (``None``: not given); checked in one line."""
    values = planned.to_dict()
    changed = []
    for key, value in given.items():
        if value is None:
            continue
        if key == "static_cache":
            if not isinstance(value, bool):
                raise UserError(f"--model-args: static_cache must be true or false, not {value!r}")
        elif isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise UserError(f"--model-args: {key} must be a positive whole number, not {value!r}")
        values[key] = value
        changed.append(key)
    if changed:
        values["planned"] = f"{planned.planned}; {', '.join(changed)} from --model-args"
    return Batching(**values)


def device_plan(model: Any) -> Batching:
    """The plan for a loaded torch model on its device (free memory read now, after its weights)."""
    import torch

    device = model.device
    if device.type != "cuda":
        return CPU
    free, _ = torch.cuda.mem_get_info(device)
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    return plan("cuda", free, Footprint.of(model.config, model.dtype.itemsize, weights))


def _clamp(v: int, lo: int, hi: int) -> int:
    return max(lo, min(hi, v))


def _pow2_floor(n: int) -> int:
    """The largest power of two not above ``n`` (compiled decoding recompiles per batch shape)."""
    return 1 << (max(n, 1).bit_length() - 1)
