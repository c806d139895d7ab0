"""Shared check of the vLLM tests: sampled log-probs against a transformers forward pass."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from dslib.policy.hf import sequence_logprobs


def max_logprob_error(model: Any, prefixes: Sequence[Sequence[int]], out: Any) -> float:
    """Largest |behaviour log-prob - log_softmax(model logits)| over every sampled token."""
    worst = 0.0
    with torch.no_grad():
        for prefix, segs in zip(prefixes, out, strict=True):
            for seg in segs:
                ref = sequence_logprobs(model, prefix, seg.token_ids)
                worst = max(worst, (ref - torch.tensor(seg.logprobs)).abs().max().item())
    return worst
