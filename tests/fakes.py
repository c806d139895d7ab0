"""Test doubles for the search: a scripted policy, a matching verifier, a problem record.

``ScriptedPolicy`` implements ``dslib.policy.base.Policy`` without a model. Token ids:

| id                         | meaning                                          |
|----------------------------|--------------------------------------------------|
| ``EOS`` (0)                | end of sequence (last token of a finished chunk)  |
| ``CORRECT`` (1)            | the answer the verifier accepts                   |
| ``WRONG`` (2)              | an answer the verifier rejects                    |
| ``FILLER`` .. vocab_size-1 | ordinary tokens                                   |
| ``NEWLINE`` (4)            | an ordinary token whose text is ``"\n"``          |

With ``stop`` (e.g. ``"\n"``), every sample is cut after the token that completes the stop
text (:class:`~dslib.policy.base.StopTable` over ``TEXTS``): the same draws, cut, so a test can
compare a run with line stops against one without.

A finished chunk is ``[..., answer, EOS]`` (or ``[EOS]`` when there is room for one token only).
Everything is drawn from one ``random.Random(seed)`` in call order, so the same call sequence
gives the same samples. Every call is recorded in ``calls`` (prefixes, counts, ...), so a test
can assert one batched call per search iteration.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dslib.policy.base import Segment, StopTable, per_prefix_counts
from dslib.verify import Verdict

EOS, CORRECT, WRONG, FILLER, NEWLINE = 0, 1, 2, 3, 4
#: the text of each token id of the fake vocabulary (NEWLINE is a line end)
TEXTS = ["<eos>", " ok", " no", "x", "\n"] + [f"t{i}" for i in range(5, 64)]


@dataclass
class Call:
    """One recorded ``sample`` call."""

    prefixes: list[list[int]]
    counts: list[int]
    max_new_tokens: int
    temperature: float
    top_p: float
    stop: str | None = None


@dataclass
class FakeProblem:
    prompt_ids: list[int]
    id: str = "p0"


ScriptFn = Callable[[list[int], int, int], Segment]
"""``script(prefix, sample_index, max_new_tokens) -> Segment`` replaces the random draw."""


@dataclass
class ScriptedPolicy:
    """A deterministic ``Policy``: random chunks from a seeded RNG, or a ``script`` function.

    p_eos: chance that the chunk finishes at each position; p_correct: chance that a finished
    chunk carries the CORRECT answer; with_entropies: also report per-token ``entropies``.
    """

    seed: int = 0
    p_eos: float = 0.2
    p_correct: float = 0.3
    vocab_size: int = 16
    with_entropies: bool = False
    script: ScriptFn | None = None
    eos_token_id: int = EOS
    calls: list[Call] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def sample(
        self,
        prefixes: Sequence[Sequence[int]],
        n: int | Sequence[int],
        max_new_tokens: int,
        temperature: float = 1.0,
        top_p: float = 1.0,
        stop: str | None = None,
    ) -> list[list[Segment]]:
        counts = per_prefix_counts(prefixes, n)
        self.calls.append(
            Call([list(p) for p in prefixes], counts, max_new_tokens, temperature, top_p, stop)
        )
        out = []
        for prefix, k in zip(prefixes, counts, strict=True):
            if self.script is not None:
                out.append([self.script(list(prefix), j, max_new_tokens) for j in range(k)])
            else:
                out.append([self._draw(max_new_tokens) for _ in range(k)])
        if stop is not None:
            table = StopTable.from_texts(stop, TEXTS)
            out = [[_cut(s, table.cut(s.token_ids)) for s in segs] for segs in out]
        return out

    def _draw(self, max_new_tokens: int) -> Segment:
        rng = self._rng
        ids: list[int] = []
        finished = False
        while len(ids) < max_new_tokens:
            if rng.random() < self.p_eos:
                answer = CORRECT if rng.random() < self.p_correct else WRONG
                ids += [answer, EOS] if len(ids) + 2 <= max_new_tokens else [EOS]
                finished = True
                break
            ids.append(rng.randrange(FILLER, self.vocab_size))
        logprobs = [-rng.uniform(0.05, 3.0) for _ in ids]
        entropies = [rng.uniform(0.1, 2.0) for _ in ids] if self.with_entropies else None
        return Segment(ids, logprobs, finished, entropies)

    def load_weights(self, state_dict: Mapping[str, Any]) -> None:
        """Nothing to load."""


def _cut(segment: Segment, m: int) -> Segment:
    """The first m tokens of a segment (itself when m covers it); cut short, not finished."""
    if m >= len(segment.token_ids):
        return segment
    ents = None if segment.entropies is None else segment.entropies[:m]
    return Segment(segment.token_ids[:m], segment.logprobs[:m], False, ents)


def fake_verifier(problem: Any, response_ids: list[int]) -> Verdict:
    """Correct iff the LAST answer token in the response is CORRECT; no answer token: no_answer."""
    for tok in reversed(response_ids):
        if tok == CORRECT:
            return Verdict(True, "correct", "ok")
        if tok == WRONG:
            return Verdict(False, "wrong", "wrong_value")
    return Verdict(False, None, "no_answer")


def seg(
    ids: Sequence[int],
    lp: float | Sequence[float] = -1.0,
    finished: bool | None = None,
    entropies: Sequence[float] | None = None,
) -> Segment:
    """A hand-written Segment; ``finished`` defaults to "ends with EOS"."""
    ids = list(ids)
    lps = [float(lp)] * len(ids) if isinstance(lp, (int, float)) else [float(x) for x in lp]
    done = (bool(ids) and ids[-1] == EOS) if finished is None else finished
    return Segment(ids, lps, done, None if entropies is None else list(entropies))
