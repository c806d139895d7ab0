"""The composition root: the only place that loads models and tokenizers by name.

Everything above this layer (trainer, rounds, benchmarks, cli) asks here for what a name
stands for, and everything below receives objects:

| function          | from                                      | gives                            |
|-------------------|-------------------------------------------|----------------------------------|
| ``eval_policy`` | "tiny", a checkpoint directory, a hub name | policy, tokenizer, fingerprint |
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dslib import tiny
from dslib.policy.base import Policy
from dslib.policy.hf import load_causal_lm
from dslib.policy.make import make_policy, model_fingerprint


def eval_policy(
    model: str | Path, backend: str = "hf", seed: int = 0, device: str = "auto"
) -> tuple[Policy, Any, dict[str, Any], str]:
    """(policy, tokenizer, fingerprint, label) for ``model``: "tiny", a directory or a hub name.

    ``"tiny"`` is the cached tiny reasoner (``dslib.tiny.build()``; a countdown model, so math
    scores are ~0: it exercises the pipeline). The ``hf`` backend loads fp32 weights on
    ``device`` ("auto" = CUDA when available) with the cross-call prefix cache off (evaluation
    never revisits a prefix). It keeps the whole batch's KV cache (``batch_problems * k`` rows,
    ~56 KiB per token for a 1.5B Qwen2 in fp32), so the paper's budget (32 x 32k tokens per
    problem) needs ``backend="vllm"``; ``hf`` suits the tiny model and short budgets.
    ``fingerprint`` is ``{"name", "path", "digest"}`` (``policy.make.model_fingerprint``).
    """
    label = str(model)
    if label == "tiny":
        model = tiny.build(progress=False).path
    path = Path(model)
    fingerprint = {"name": label, "path": str(path.resolve()) if path.is_dir() else None,
                   "digest": model_fingerprint(model)}
    if backend == "hf":
        import torch

        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        policy = make_policy(load_causal_lm(model).to(device), seed=seed, source=model,
                             prefix_cache_tokens=0)
    else:
        policy = make_policy(backend=backend, source=model, seed=seed)
    return policy, load_tokenizer(model), fingerprint, label


def load_tokenizer(model: str | Path) -> Any:
    """The tokenizer of a checkpoint directory or hub name."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(model))
