"""The replay buffer of verified solutions: registration, merging, its file
(docs/paper-notes.md#replay-buffer).

Paper notes: docs/paper-notes.md#replay-buffer, #hybrid-groups (v4 Sec. 4.2, Eq. 10-12).

**Registration** (v4 Eq. 10; docs/paper-notes.md#replay-buffer). After round i, a hard problem x
whose logged rollouts contain a correct solution becomes a buffer entry with those solutions:

    code  (rule="code", default): register x with ALL its correct responses of the round if
              0 < c_x / n_x <= threshold        c_x correct of the n_x responses logged for x
                                                 over the whole round (mostly MCTS trajectories)
    paper (rule="paper"):          register x with its correct responses if
              c_x > 0  and  Pass1@K(x, pi_theta^(i)) < threshold   (a fresh rate of the
                                                 policy after round i's training, passed in)
    R^(i+1) = R^(i) U R_candidates^(i)                         (``merge``; duplicates dropped)

threshold = 0.25 (``--buffer_register_threshold``). docs/paper-notes.md#pvc-register.

**Use** (v4 Eq. 11-12; docs/paper-notes.md#hybrid-groups): a buffered problem skips the search and
gets a group of cached solutions + direct samples (:class:`dslib.rollouts.CachedRollout`).

Solutions are stored as the sampled token ids (EOS included when the rollout finished). The
code stores decoded text and re-tokenises it without EOS, so its cached members never end with
EOS; register ids without the trailing EOS to reproduce that.

On-disk buffer (JSON, written atomically):

| field                     | type                | meaning                                      |
|---------------------------|---------------------|----------------------------------------------|
| ``format``                | str                 | always ``"dslib.replay"``                    |
| ``version``               | int                 | :data:`FORMAT_VERSION`                       |
| ``rounds``                | list[dict]          | one summary per ``register_round`` / merge   |
| ``problems``              | dict[id, list[sol]] | problem id -> solutions, registration order  |
| sol ``response_ids``      | list[int]           | response token ids as sampled (EOS included) |
| sol ``round``             | int                 | round that registered it                     |
| sol ``text``              | str or null         | decoded response, if given                   |
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dslib.files import atomic_write
from dslib.filtering import RATE_EPS

FORMAT = "dslib.replay"
FORMAT_VERSION = 1
RULES = ("code", "paper")


class ReplayBufferError(ValueError):
    """A buffer file or JSON document that cannot be read (corrupt, foreign, wrong version)."""


# ------------------------------------------------------- buffer (docs/paper-notes.md#replay-buffer)


@dataclass
class Solution:
    """One verified correct response of a problem and the round that registered it."""

    response_ids: list[int]
    round: int
    text: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"response_ids": list(self.response_ids), "round": self.round, "text": self.text}


Outcome = tuple[Sequence[int], bool] | tuple[Sequence[int], bool, str | None]
"""``(response_ids, correct)`` or ``(response_ids, correct, text)`` of one logged response"""


class ReplayBuffer:
    """Problem id -> verified correct solutions (registration order, no duplicates).

    Duplicates are identical token sequences of the same problem; the first registration (the
    earliest round) is kept.
    """

    def __init__(self) -> None:
        self._problems: dict[str, list[Solution]] = {}
        self._keys: dict[str, set[tuple[int, ...]]] = {}
        self.rounds: list[dict[str, Any]] = []
        """bookkeeping: one summary per ``register_round`` (round, rule, threshold, counts)"""

    # ------------------------------------------------------------------ access
    def __contains__(self, problem_id: object) -> bool:
        return str(problem_id) in self._problems

    def __len__(self) -> int:
        """Number of problems with at least one cached solution."""
        return len(self._problems)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ReplayBuffer):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    def ids(self) -> list[str]:
        return list(self._problems)

    def solutions(self, problem_id: object) -> list[list[int]]:
        """Token id lists of a problem's cached solutions, in registration order."""
        return [list(s.response_ids) for s in self.entries(problem_id)]

    def entries(self, problem_id: object) -> list[Solution]:
        key = str(problem_id)
        if key not in self._problems:
            raise KeyError(f"problem {key!r} is not in the replay buffer")
        return list(self._problems[key])

    @property
    def n_solutions(self) -> int:
        return sum(len(v) for v in self._problems.values())

    # ------------------------------------------------------------------ updates
    def add(
        self, problem_id: object, response_ids: Sequence[int], round: int, text: str | None = None
    ) -> bool:
        """Add one solution; False if the problem already has this exact token sequence."""
        ids = [int(t) for t in response_ids]
        if not ids:
            raise ValueError(f"problem {problem_id!r}: an empty response cannot be a solution")
        key = str(problem_id)
        seen = self._keys.setdefault(key, set())
        if tuple(ids) in seen:
            return False
        seen.add(tuple(ids))
        self._problems.setdefault(key, []).append(Solution(ids, int(round), text))
        return True

    def register_round(
        self,
        outcomes: Mapping[Any, Sequence[Outcome]],
        threshold: float = 0.25,
        rule: str = "code",
        round: int = 0,
        fresh_rates: Mapping[Any, float] | None = None,
    ) -> list[str]:
        """Register the round's candidates (v4 Eq. 10; module docstring); returns their ids.

        ``outcomes``: problem id -> every response logged for it during the round, each
        ``(response_ids, correct)`` or ``(response_ids, correct, text)``.
        ``rule="code"`` (default): 0 < #correct / #responses <= threshold.
        ``rule="paper"``: some correct response AND ``fresh_rates[id]`` < threshold, where
        ``fresh_rates`` holds Pass1@K of the policy after the round (e.g.
        ``FilterRecord.rate`` from :func:`dslib.filtering.pass1_at_k`).
        Every correct response of a candidate is added (duplicates dropped).
        """
        if rule not in RULES:
            raise ValueError(f"rule must be one of {RULES}, got {rule!r}")
        rates = {str(k): float(v) for k, v in (fresh_rates or {}).items()}
        if rule == "paper" and fresh_rates is None:
            raise ValueError('rule="paper" needs fresh_rates: Pass1@K of the updated policy')
        candidates: list[str] = []
        missing: list[str] = []
        added = 0
        for pid, responses in outcomes.items():
            key = str(pid)
            correct = [r for r in responses if bool(r[1])]
            if not correct:
                continue  # nothing verified to cache
            if rule == "code":
                if correct_share(responses) > threshold + RATE_EPS:
                    continue  # solved often enough during the round: not hard
            else:
                if key not in rates:
                    missing.append(key)
                    continue
                if not rates[key] < threshold - RATE_EPS:
                    continue
            candidates.append(key)
            for r in correct:
                added += self.add(key, r[0], round, r[2] if len(r) > 2 else None)
        if missing:
            shown = ", ".join(missing[:5]) + (", ..." if len(missing) > 5 else "")
            raise KeyError(f"fresh_rates lacks {len(missing)} problems with a correct response "
                           f"(e.g. {shown})")
        self.rounds.append({"round": int(round), "rule": rule, "threshold": float(threshold),
                            "problems_seen": len(outcomes), "registered": len(candidates),
                            "new_solutions": added})
        return candidates

    def merge(self, other: ReplayBuffer) -> ReplayBuffer:
        """R <- R U other, in place (returns self): other's new problems and solutions appended."""
        for pid, sols in other._problems.items():
            for s in sols:
                self.add(pid, s.response_ids, s.round, s.text)
        self.rounds.extend(dict(r) for r in other.rounds)
        return self

    def check_token_ids(self, vocab_size: int, source: str = "the replay buffer") -> None:
        """Every cached token id must be one of the tokenizer's ``0..vocab_size-1``; else a
        :class:`ReplayBufferError` names ``source``, the entry and what to do (an id out of
        range would otherwise fail deep inside the model's embedding)."""
        for pid, sols in self._problems.items():
            for j, s in enumerate(sols):
                bad = [t for t in s.response_ids if not 0 <= t < vocab_size]
                if bad:
                    raise ReplayBufferError(
                        f"{source}: problem {pid!r}, solution {j}: token id {bad[0]} is outside "
                        f"the tokenizer's vocabulary (0..{vocab_size - 1}); the buffer was "
                        "written for another tokenizer: rebuild it with this model (dslib "
                        "rounds registers it from a run's rollouts.jsonl) or drop the entry")

    # ------------------------------------------------------------------ (de)serialisation
    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "version": FORMAT_VERSION,
                "rounds": [dict(r) for r in self.rounds],
                "problems": {k: [s.to_dict() for s in v] for k, v in self._problems.items()}}

    @classmethod
    def from_dict(cls, data: Any, source: str = "<json>") -> ReplayBuffer:
        """Validate and rebuild; any problem raises :class:`ReplayBufferError` naming ``source``."""
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            tag = data.get("format") if isinstance(data, dict) else type(data).__name__
            raise ReplayBufferError(
                f"{source}: not a dslib replay buffer (format {tag!r}, expected {FORMAT!r})"
            )
        if data.get("version") != FORMAT_VERSION:
            raise ReplayBufferError(
                f"{source}: unknown replay buffer version {data.get('version')!r} "
                f"(this dslib reads version {FORMAT_VERSION})"
            )
        problems, rounds = data.get("problems"), data.get("rounds", [])
        if not isinstance(problems, dict) or not isinstance(rounds, list):
            raise ReplayBufferError(f"{source}: 'problems' must be an object, 'rounds' a list")
        buf = cls()
        for pid, sols in problems.items():
            if not isinstance(sols, list):
                raise ReplayBufferError(f"{source}: problem {pid!r}: solutions must be a list")
            for j, s in enumerate(sols):
                try:
                    ids, rnd, text = s["response_ids"], s["round"], s.get("text")
                    if not isinstance(ids, list) or not all(
                        isinstance(t, int) and not isinstance(t, bool) for t in ids
                    ):
                        raise TypeError("response_ids must be a list of integers")
                    if not isinstance(rnd, int) or not (text is None or isinstance(text, str)):
                        raise TypeError("round must be an integer and text a string or null")
                    buf.add(pid, ids, rnd, text)
                except (KeyError, TypeError, ValueError, AttributeError) as e:
                    raise ReplayBufferError(
                        f"{source}: problem {pid!r}, solution {j}: bad entry ({e}); repair or "
                        "remove that solution, or rebuild the buffer (dslib rounds)"
                    ) from e
        if not all(isinstance(r, dict) for r in rounds):
            raise ReplayBufferError(f"{source}: every entry of 'rounds' must be an object")
        buf.rounds = [dict(r) for r in rounds]
        return buf

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_json(cls, text: str, source: str = "<json>") -> ReplayBuffer:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ReplayBufferError(
                f"{source}: corrupt replay buffer (not valid JSON: {e.msg} at line {e.lineno}, "
                f"column {e.colno}); the file was left as it is"
            ) from e
        return cls.from_dict(data, source)

    def save(self, path: str | Path) -> Path:
        """Write atomically: a temporary sibling file, fsync, then ``os.replace`` over ``path``.

        If anything fails before the replace, the previous file at ``path`` is untouched.
        """
        path = Path(path)
        atomic_write(path, self.to_json())
        return path

    @classmethod
    def load(cls, path: str | Path) -> ReplayBuffer:
        """Read a saved buffer. Only reads: a bad file raises and stays exactly as it was."""
        path = Path(path)
        try:
            text = path.read_bytes().decode("utf-8")
        except UnicodeDecodeError as e:
            raise ReplayBufferError(f"{path}: corrupt replay buffer (not UTF-8 text: {e})") from e
        return cls.from_json(text, source=str(path))


def correct_share(responses: Sequence[Outcome]) -> float:
    """#correct / #responses (0.0 for none): the code's rollout-time registration rate."""
    if not responses:
        return 0.0
    return sum(bool(r[1]) for r in responses) / len(responses)
