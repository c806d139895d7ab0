"""The policy protocol: what the search and the trainer need from a generation backend.

A backend samples continuations of token-id prefixes and reports, for every sampled token,
its behaviour log-probability (from the raw logits, i.e. the temperature-1 distribution the
training loss also uses). Only ``dslib.policy.*`` modules import transformers or vLLM.

Shapes (P prefixes, n_i samples for prefix i, T_ij sampled tokens of sample j):

| argument / field      | type                         | meaning                              |
|-----------------------|------------------------------|--------------------------------------|
| ``prefixes``          | ``list[list[int]]`` (P)      | token ids, no padding                |
| ``n``                 | ``int`` or ``list[int]`` (P) | samples per prefix                   |
| return                | ``list[list[Segment]]``      | ``[i][j]`` = sample j of prefix i    |
| ``Segment.token_ids`` | ``list[int]`` (T_ij)         | sampled ids; EOS included, no more   |
| ``Segment.logprobs``  | ``list[float]`` (T_ij)       | log pi(token) from raw logits        |
| ``Segment.entropies`` | ``list[float]`` or None      | Shannon entropy of each step's full  |
|                       |                              | distribution, when the backend has it|
| ``Segment.finished``  | ``bool``                     | True iff EOS was sampled             |
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


@dataclass
class Segment:
    """One sampled continuation of a prefix (a node's chunk in the search tree)."""

    token_ids: list[int]
    logprobs: list[float]
    finished: bool
    entropies: list[float] | None = field(default=None)

    def __post_init__(self) -> None:
        if len(self.token_ids) != len(self.logprobs):
            raise ValueError(
                f"Segment has {len(self.token_ids)} tokens but {len(self.logprobs)} log-probs"
            )


@runtime_checkable
class Policy(Protocol):
    """A generation backend: batched sampling with behaviour log-probs, and weight updates."""

    eos_token_id: int

    def sample(
        self,
        prefixes: Sequence[Sequence[int]],
        n: int | Sequence[int],
        max_new_tokens: int,
        temperature: float = 1.0,
        top_p: float = 1.0,
    ) -> list[list[Segment]]:
        """Sample ``n`` (or ``n[i]``) continuations of each prefix in ONE batched call."""
        ...

    def load_weights(self, state_dict: Mapping[str, Any]) -> None:
        """Replace the backend's weights (after an optimizer step)."""
        ...


def per_prefix_counts(prefixes: Sequence[Sequence[int]], n: int | Sequence[int]) -> list[int]:
    """Normalise ``n`` to one count per prefix, with a clear error for bad input."""
    if isinstance(n, int):
        counts = [n] * len(prefixes)
    else:
        counts = [int(k) for k in n]
        if len(counts) != len(prefixes):
            raise ValueError(f"n has {len(counts)} entries for {len(prefixes)} prefixes")
    if any(k < 0 for k in counts):
        raise ValueError(f"sample counts must be >= 0, got {counts}")
    return counts


def validate_request(
    prefixes: Sequence[Sequence[int]],
    n: int | Sequence[int],
    max_new_tokens: int,
    temperature: float,
    top_p: float,
) -> list[int]:
    """Check one ``sample`` call's arguments (every backend); returns the per-prefix counts."""
    counts = per_prefix_counts(prefixes, n)
    if any(len(p) == 0 for p in prefixes):
        raise ValueError("every prefix needs at least one token")
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
    if temperature < 0 or not 0 < top_p <= 1:
        raise ValueError(f"bad sampling parameters: temperature={temperature}, top_p={top_p}")
    return counts


def eos_token_id(eos: int | Sequence[int] | None, source: object) -> int:
    """The one id that ends a sample, from a generation config's ``eos_token_id``.

    Chat models often list several ids (``[<|im_end|>, <|endoftext|>]``); a sample ends at the
    FIRST one, the chat turn's end. ``source`` (a path or model name) only names the model in
    the error raised when there is none.
    """
    if isinstance(eos, Sequence) and not isinstance(eos, str):
        eos = eos[0] if len(eos) else None
    if eos is None:
        raise ValueError(f"{source}: generation_config has no eos_token_id")
    return int(eos)
