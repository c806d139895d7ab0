"""The one policy constructor, and the one fingerprint of a model's weights.

Training, evaluation, filtering and the tiny build all get their sampler from
:func:`make_policy`, so the choices below are made once:

| backend  | what it builds                          | weights                                  |
|----------|-----------------------------------------|------------------------------------------|
| ``hf``   | :class:`~dslib.policy.hf.HFPolicy` on   | shared with the trainer: an update is    |
|          | ``model`` itself                        | visible in place                         |
| ``vllm`` | a :class:`~dslib.policy.vllm.VLLMPolicy`| the engine loads ``source``, then gets   |
|          | engine started from ``source``          | ``model``'s current weights (if given)   |

The end-of-sample id is the model's generation config ``eos_token_id`` (the first of a list:
:func:`dslib.policy.base.eos_token_id`); the pad id is the generation config's.

:func:`model_fingerprint` names the weights something holds: a model in memory (its parameter
bytes), a checkpoint directory (its files) or a hub model (its revision).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from dslib.policy.base import Policy, eos_token_id

BACKENDS = ("hf", "vllm")


def make_policy(
    model: Any = None,
    *,
    backend: str = "hf",
    seed: int = 0,
    source: str | Path | None = None,
    dtype: str = "float32",
    prefix_cache_tokens: int | None = None,
) -> Policy:
    """The sampler for ``model`` (a transformers causal LM) or for the checkpoint ``source``.

    ``hf`` needs ``model``; ``prefix_cache_tokens`` sizes its cross-call prefix cache (None:
    the backend's default; 0 for evaluation, which never revisits a prefix). ``vllm`` needs
    ``source`` (a directory or hub name); with ``model`` on a GPU the engine is colocated
    (30 % of the GPU, asleep during updates) and starts from ``model``'s weights, so a resumed
    run or a later round samples from the weights it trains.
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose from {BACKENDS}")
    if backend == "vllm":
        from dslib.policy.vllm import VLLMPolicy

        if source is None:
            raise ValueError("backend 'vllm' needs the model's directory or hub name (source)")
        on_gpu = model is not None and next(model.parameters()).device.type == "cuda"
        try:
            policy = VLLMPolicy.from_pretrained(
                str(source), dtype=dtype, seed=seed, enable_sleep_mode=on_gpu,
                gpu_memory_utilization=0.3 if on_gpu else None)
        except ImportError as err:  # vLLM not installed: its install hint, as a clear error
            raise ValueError(f"backend 'vllm' is not available: {err}") from err
        if model is not None:
            policy.load_weights(model.state_dict())
        return policy
    from dslib.policy.hf import HFPolicy

    if model is None:
        raise ValueError("backend 'hf' samples from a loaded model: pass model=")
    gen = model.generation_config
    extra = {} if prefix_cache_tokens is None else {"prefix_cache_tokens": prefix_cache_tokens}
    return HFPolicy(model, eos_token_id=eos_token_id(gen.eos_token_id, source or "model"),
                    pad_token_id=gen.pad_token_id, seed=seed, **extra)


def save_model(model: Any, tokenizer: Any, path: str | Path) -> None:
    """``save_pretrained`` of the model (and tokenizer, if any) into ``path``, without
    transformers' per-tensor progress bar (one bar per checkpoint would drown the run's)."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    model.save_pretrained(path)
    if tokenizer is not None:
        tokenizer.save_pretrained(path)


#: files that decide a checkpoint's behaviour (weights, config, tokenizer, chat template)
FINGERPRINT_FILES = (
    "config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
    "special_tokens_map.json", "chat_template.jinja",
)


def model_fingerprint(model: Any) -> str:
    """Which weights ``model`` holds, as a string.

    | ``model``                | fingerprint                                                |
    |--------------------------|------------------------------------------------------------|
    | a ``torch.nn.Module``    | 16 hex chars of sha256 over every parameter's name, shape, |
    |                          | dtype and raw bytes (``named_parameters`` order; tied      |
    |                          | weights once)                                              |
    | a checkpoint directory   | ``sha256:<hex>`` over the weight files and                 |
    |                          | :data:`FINGERPRINT_FILES` (names and bytes, sorted)        |
    | a hub name               | ``hub:<name>@<commit>`` from its config (a small download) |

    Cost: one pass over the bytes (sha256 at about 1 GB/s: milliseconds for the tiny reasoner,
    a few seconds for a 1.5B model).
    """
    if hasattr(model, "named_parameters"):
        import torch

        h = hashlib.sha256()
        for name, p in model.named_parameters():
            t = p.detach()
            h.update(f"{name}|{tuple(t.shape)}|{t.dtype}\n".encode())
            # raw bytes via a uint8 view: works for bf16, which numpy cannot represent
            h.update(t.reshape(-1).contiguous().cpu().view(torch.uint8).numpy().tobytes())
        return h.hexdigest()[:16]
    path = Path(model)
    if path.is_dir():
        h = hashlib.sha256()
        files = sorted(f for f in path.iterdir() if f.is_file() and (
            f.name in FINGERPRINT_FILES or f.suffix in (".safetensors", ".bin")))
        for f in files:
            h.update(f.name.encode() + b"\0")
            with open(f, "rb") as fh:
                for chunk in iter(lambda fh=fh: fh.read(1 << 20), b""):
                    h.update(chunk)
        return f"sha256:{h.hexdigest()}"
    from transformers import AutoConfig

    commit = getattr(AutoConfig.from_pretrained(str(model)), "_commit_hash", None)
    return f"hub:{model}@{commit}"
