r"""The policy protocol: what the search and the trainer need from a generation backend.

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
| ``stop``              | ``str`` or None              | also end a sample at this text (a    |
|                       |                              | step boundary, e.g. "\n"): after the |
|                       |                              | token that completes it; not EOS, so |
|                       |                              | ``finished`` stays False             |

A stop is matched on the sample's own text (not the prefix), token by token: a boundary split
over two tokens ("\n" then "\n" for "\n\n") ends the sample after the second one, and a
token whose text holds the boundary ends it after that token, whatever follows inside the
token. :class:`StopTable` is that matcher; backends build it once per boundary from their
tokenizer.
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


@dataclass(frozen=True)
class StopTable:
    """Token-level matcher of a stop text (Knuth-Morris-Pratt over the tokens' texts).

    The state is how many leading characters of ``boundary`` the sample's text ends with
    (0 at the start of a sample); :meth:`step` feeds one token. Only tokens whose text holds a
    character of the boundary are stored: every other token resets the state to 0.

    | field      | type                                   | meaning                            |
    |------------|----------------------------------------|------------------------------------|
    | boundary   | ``str`` (m characters)                 | the stop text                      |
    | size       | ``int``                                | vocabulary size (token ids < size) |
    | moves      | m dicts ``{token: (hit, next state)}`` | per state, the tokens that matter  |
    """

    boundary: str
    size: int
    moves: tuple[dict[int, tuple[bool, int]], ...]

    @classmethod
    def from_texts(cls, boundary: str, texts: Sequence[str]) -> StopTable:
        """``texts[i]`` = the decoded text of token ``i``."""
        if not isinstance(boundary, str) or not boundary:
            raise ValueError(f"a stop must be a non-empty string, got {boundary!r}")
        m = len(boundary)
        fail = [0] * m  # fail[i]: longest proper border of boundary[: i + 1]
        k = 0
        for i in range(1, m):
            while k and boundary[i] != boundary[k]:
                k = fail[k - 1]
            k += boundary[i] == boundary[k]
            fail[i] = k
        chars = set(boundary)
        moves: tuple[dict[int, tuple[bool, int]], ...] = tuple({} for _ in range(m))
        for token, text in enumerate(texts):
            if chars.isdisjoint(text):
                continue
            for state in range(m):
                s, hit = state, False
                for ch in text:
                    while s and boundary[s] != ch:
                        s = fail[s - 1]
                    s += boundary[s] == ch
                    if s == m:
                        hit = True
                        break
                moves[state][token] = (hit, 0 if hit else s)
        return cls(boundary, len(texts), moves)

    @classmethod
    def from_tokenizer(cls, boundary: str, tokenizer: Any) -> StopTable:
        """From a (transformers) tokenizer: every id's text, special tokens included."""
        texts = [
            tokenizer.decode([i], skip_special_tokens=False, clean_up_tokenization_spaces=False)
            for i in range(len(tokenizer))
        ]
        return cls.from_texts(boundary, texts)

    def step(self, state: int, token: int) -> tuple[bool, int]:
        """(the boundary is complete at this token, the next state)."""
        return self.moves[state].get(token, (False, 0))

    @property
    def containing(self) -> frozenset[int]:
        """Tokens that hold the whole boundary in their own text (a stop-token list's view)."""
        return frozenset(t for t, (hit, _) in self.moves[0].items() if hit)

    def cut(self, token_ids: Sequence[int]) -> int:
        """Length of the sample that ends at the first completed boundary (all if none)."""
        state = 0
        for i, token in enumerate(token_ids):
            hit, state = self.step(state, token)
            if hit:
                return i + 1
        return len(token_ids)


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
        stop: str | None = None,
    ) -> list[list[Segment]]:
        """Sample ``n`` (or ``n[i]``) continuations of each prefix in ONE batched call; with
        ``stop``, each sample also ends after the token that completes that text."""
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
    stop: str | None = None,
) -> list[int]:
    """Check one ``sample`` call's arguments (every backend); returns the per-prefix counts."""
    counts = per_prefix_counts(prefixes, n)
    if stop is not None and (not isinstance(stop, str) or not stop):
        raise ValueError(f"stop must be None or a non-empty string, got {stop!r}")
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
