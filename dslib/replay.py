"""Replay buffer of verified solutions, the cached/direct hybrid rollout, and data hygiene.

Reference §5.2, §5.3, §5.5 (v4 Sec. 4.2, Eq. 10-12).

**Registration** (v4 Eq. 10; §5.2). After round i, a hard problem x whose logged rollouts
contain a correct solution becomes a buffer entry with those solutions:

    code  (rule="code", default): register x with ALL its correct responses of the round if
              0 < c_x / n_x <= threshold        c_x correct of the n_x responses logged for x
                                                 over the whole round (mostly MCTS trajectories)
    paper (rule="paper"):          register x with its correct responses if
              c_x > 0  and  Pass1@K(x, pi_theta^(i)) < threshold   (a fresh rate of the
                                                 policy after round i's training, passed in)
    R^(i+1) = R^(i) U R_candidates^(i)                         (``merge``; duplicates dropped)

threshold = 0.25 (``--buffer_register_threshold``). §11 item 14.

**Hybrid rollout** (v4 Eq. 11-12; the code's cached path, §5.3). A problem in the buffer skips
the search: of the n direct rollouts the first k = min(#cached, n) are REPLACED by cached
solutions, so the group keeps n members. Every member gets the outcome score on every token
(coarse; §11 item 15), cached ones re-verified rather than trusted:

    r_tok = score + p_over(T)                     score in {+1, -1, incomplete_score}
    A_tok = r_tok - mean_group(r_L)               (``tree_grpo.advantages``, mean-only default)

Solutions are stored as the sampled token ids (EOS included when the rollout finished). The
code stores decoded text and re-tokenises it without EOS, so its cached members never end with
EOS; register ids without the trailing EOS to reproduce that.

Cached members have no behaviour log-probs: they hold zeros. The trainer recomputes the old
log-probs with the current model before the update (as the code's actor does: cached responses
are scored on-policy), so the zeros never enter the loss; they only show in the behaviour-based
metrics (``entropy``, ``behaviour_vs_recomputed_logp``).

**Data hygiene** (§5.5; paper Sec. 4.2: "among the incorrect samples, we remove data containing
garbled text or infinite repetitions"; no criterion given, not in the code): see
:func:`is_degenerate`.

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

Hybrid group (n members, k = min(#cached, n) cached first):

| ``Sample`` field        | cached member          | fresh member                     |
|-------------------------|------------------------|----------------------------------|
| ``response_ids``        | the cached solution    | the sampled segment              |
| ``score`` / ``correct`` | re-verified            | verified                         |
| ``advantages``          | T floats, constant     | T floats, constant               |
| ``behaviour_logprobs``  | T zeros (recomputed)   | the sampler's log-probs          |
| ``step_ids``            | T zeros (one step)     | T zeros                          |
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dslib.files import atomic_write
from dslib.filtering import RATE_EPS
from dslib.policy.base import Segment
from dslib.trainer import Sample, outcome_group
from dslib.tree_grpo import TreeGRPOConfig
from dslib.verify import Verdict

if TYPE_CHECKING:
    from dslib.trainer import Trainer

FORMAT = "dslib.replay"
FORMAT_VERSION = 1
RULES = ("code", "paper")


class ReplayBufferError(ValueError):
    """A buffer file or JSON document that cannot be read (corrupt, foreign, wrong version)."""


# ----------------------------------------------------------------------------- buffer (§5.2)


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
                        f"{source}: problem {pid!r}, solution {j}: bad entry ({e})"
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


# ----------------------------------------------------------------------------- hybrid (§5.3)


def hybrid_group(
    item: Any,
    cached: Sequence[Sequence[int]],
    fresh: Sequence[Segment],
    verifier: Callable[[Any, list[int]], Verdict],
    grpo_cfg: TreeGRPOConfig,
    incomplete_score: float = -1.0,
    group: int = 0,
    *,
    n: int | None = None,
    eos_token_id: int | None = None,
) -> list[Sample]:
    """The group of one cached problem: k = min(#cached, n) cached members first, then fresh.

    ``n`` (default ``len(fresh)``, the code's path: n rollouts sampled, the first k
    overwritten) is the group size; only the LAST n - k segments of ``fresh`` are used, so
    passing exactly n - k segments (what :func:`make_before_rollout` samples) gives the same
    group. Cached solutions beyond n are not used (the code keeps the first n).

    Every member is verified (cached ones too) and gets ``outcome_token_rewards`` with its
    score; advantages from ``tree_grpo.advantages`` over the group's final rewards (module
    docstring). A cached member counts as finished iff it ends with ``eos_token_id``, which
    only matters for one that no longer verifies and has no answer (incomplete_score).
    """
    n = len(fresh) if n is None else int(n)
    if n < 1:
        raise ValueError(f"a group needs n >= 1 members, got n={n}")
    k = min(len(cached), n)
    need = n - k
    if len(fresh) < need:
        raise ValueError(f"{k} cached solutions and {len(fresh)} fresh samples cannot fill a "
                         f"group of {n}: need {need} fresh samples")
    members: list[tuple[list[int], list[float], bool]] = []
    for ids in cached[:k]:
        ids = [int(t) for t in ids]
        if not ids:
            raise ValueError("an empty cached solution")
        finished = eos_token_id is not None and ids[-1] == eos_token_id
        # unknown behaviour log-probs: the trainer recomputes old log-probs anyway (docstring)
        members.append((ids, [0.0] * len(ids), finished))
    for seg in fresh[len(fresh) - need :] if need else []:
        members.append((list(seg.token_ids), list(seg.logprobs), bool(seg.finished)))
    return outcome_group(item, members, verifier, grpo_cfg, incomplete_score, group, n_cached=k)


@dataclass
class CachedRollout:
    """The trainer's ``before_rollout`` hook serving buffered problems (see make_before_rollout).

    ``last_stats`` (the latest call) and ``total_stats`` (summed over calls) hold:

    | key                       | meaning                                                     |
    |---------------------------|-------------------------------------------------------------|
    | ``cached_problems``       | problems of the step found in the buffer (they skip search) |
    | ``cached_members``        | group members taken from the buffer (sum of k)              |
    | ``fresh_members``         | direct rollouts sampled for them (sum of n - k)             |
    | ``sampled_tokens``        | tokens of those direct rollouts                             |
    | ``saved_tokens_estimate`` | tokens of the cached members used: each stands in for one   |
    |                           | direct rollout the code would have sampled and overwritten, |
    |                           | estimated as long as the solution that replaces it (a lower |
    |                           | bound: the search the problem skips costs far more)         |

    The trainer's own ``sampled_tokens`` metric does not include these direct rollouts: add
    ``last_stats["sampled_tokens"]`` when comparing sampling budgets.
    """

    buffer: ReplayBuffer
    n: int | None = None
    max_new_tokens: int | None = None
    temperature: float = 1.0
    last_stats: dict[str, int] = field(default_factory=dict)
    total_stats: dict[str, int] = field(default_factory=dict)

    def group_size(self, trainer: Trainer) -> int:
        """``n``, else the trainer's group size (search trajectories or flat samples)."""
        if self.n is not None:
            return int(self.n)
        cfg = trainer.cfg
        return cfg.search.n_trajectories if cfg.mode == "deepsearch" else cfg.samples_per_problem

    def length_cap(self, trainer: Trainer) -> int:
        """``max_new_tokens``, else the trainer's response cap (search: step_tokens x depth)."""
        if self.max_new_tokens is not None:
            return int(self.max_new_tokens)
        cfg = trainer.cfg
        if cfg.mode == "deepsearch":  # code: direct rollouts get the full response length
            return cfg.search.step_tokens * cfg.search.max_depth
        return cfg.max_new_tokens

    def __call__(self, trainer: Trainer, items: list[Any]) -> dict[str, list[Sample]]:
        n = self.group_size(trainer)
        hits = [it for it in items if str(it.id) in self.buffer]
        cached = [self.buffer.solutions(it.id)[:n] for it in hits]
        counts = [n - len(c) for c in cached]
        if sum(counts) > 0:  # ONE batched call for every cached problem's direct rollouts
            outs = trainer.policy.sample(
                [it.prompt_ids for it in hits], n=counts,
                max_new_tokens=self.length_cap(trainer), temperature=self.temperature,
            )
        else:
            outs = [[] for _ in hits]
        groups: dict[str, list[Sample]] = {}
        for g, (it, sols, segs) in enumerate(zip(hits, cached, outs, strict=True)):
            groups[str(it.id)] = hybrid_group(
                it, sols, segs, trainer.task.verifier, trainer.cfg.grpo,
                incomplete_score=trainer.cfg.search.incomplete_score, group=g, n=n,
                eos_token_id=getattr(trainer.policy, "eos_token_id", None),
            )
        self.last_stats = {
            "cached_problems": len(hits),
            "cached_members": sum(len(c) for c in cached),
            "fresh_members": sum(counts),
            "sampled_tokens": sum(len(s.token_ids) for segs in outs for s in segs),
            "saved_tokens_estimate": sum(len(ids) for c in cached for ids in c),
        }
        for key, value in self.last_stats.items():
            self.total_stats[key] = self.total_stats.get(key, 0) + value
        return groups


def make_before_rollout(
    buffer: ReplayBuffer,
    n: int | None = None,
    max_new_tokens: int | None = None,
    temperature: float = 1.0,
) -> CachedRollout:
    """A ``Trainer(before_rollout=...)`` hook: buffered problems get hybrid groups (§5.3).

    Per step: the items whose id is in ``buffer`` skip the search; their direct rollouts, only
    the n - k each group still needs (none when k >= n), come from ONE ``trainer.policy.sample``
    call, then :func:`hybrid_group`. ``n``/``max_new_tokens`` default to the trainer's group
    size and response cap. Stats of each call: ``hook.last_stats`` (see :class:`CachedRollout`).
    """
    return CachedRollout(buffer, n, max_new_tokens, temperature)


# ----------------------------------------------------------------------------- hygiene (§5.5)

#: code points (inclusive ranges) that count as ordinary in an English math response, on top
#: of printable ASCII, tab, newline and carriage return
DEFAULT_ALLOWED_RANGES: tuple[tuple[int, int], ...] = (
    (0x00A0, 0x024F),    # Latin-1 supplement, Latin extended A/B: accents, ×, ÷, ±, °, ²
    (0x0370, 0x03FF),    # Greek
    (0x2000, 0x206F),    # general punctuation: dashes, quotes, ellipsis
    (0x2070, 0x209F),    # superscripts and subscripts
    (0x2100, 0x214F),    # letterlike symbols: ℝ, ℕ, ℤ
    (0x2190, 0x23FF),    # arrows, mathematical operators, miscellaneous technical (⌊ ⌋)
    (0x25A0, 0x25FF),    # geometric shapes: □, △
    (0x2713, 0x2717),    # check and cross marks
    (0x27C0, 0x27FF),    # miscellaneous mathematical symbols A, supplemental arrows A
    (0x2980, 0x2AFF),    # miscellaneous mathematical symbols B, supplemental operators
    (0x1D400, 0x1D7FF),  # mathematical alphanumeric symbols
)


@dataclass(frozen=True)
class HygieneConfig:
    """Thresholds of :func:`is_degenerate` (the paper gives none, §5.5; ours, documented)."""

    max_period: int = 100
    """longest repeated block looked for, in characters"""
    min_repeats: int = 10
    """a block repeated this many times back to back is a repetition loop..."""
    min_run_chars: int = 40
    """...provided the repeats cover at least this many characters (so "==========" is fine)"""
    min_compress_chars: int = 1000
    """the compression test runs on texts at least this long (zlib's header dominates below)"""
    max_compress_ratio: float = 0.1
    """zlib-compressed size / UTF-8 size below this = repetition (prose and math: 0.3-0.6)"""
    max_foreign_share: float = 0.2
    """more than this share of characters outside the allowed set = garbled"""
    allowed_ranges: tuple[tuple[int, int], ...] = DEFAULT_ALLOWED_RANGES


def repeated_block(text: str, cfg: HygieneConfig | None = None) -> tuple[int, int] | None:
    """``(period, chars)`` of a back-to-back repetition loop in ``text``, or None.

    For every period p in 1..max_period, each maximal stretch where ``text[i] == text[i + p]``
    gives a substring of ``chars`` = stretch + p characters made of one p-character block
    repeated chars / p times. Flagged when chars >= max(min_repeats * p, min_run_chars) and the
    block holds a letter or digit: runs of punctuation or blanks (``-----`` rules, table
    borders, indentation) are layout, not a loop. Vectorised with numpy:
    O(len(text) * max_period) comparisons, a few milliseconds for 60k characters.
    """
    cfg = cfg or HygieneConfig()
    codes = np.frombuffer(text.encode("utf-32-le"), dtype="<u4")
    size = codes.size
    if size < cfg.min_run_chars:
        return None
    for p in range(1, min(cfg.max_period, size // cfg.min_repeats) + 1):
        same = np.concatenate(([False], codes[p:] == codes[:-p], [False])).astype(np.int8)
        edges = np.diff(same)
        starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
        need = max(cfg.min_repeats * p, cfg.min_run_chars)
        for i in np.flatnonzero(ends - starts + p >= need):
            start = int(starts[i])
            if any(ch.isalnum() for ch in text[start : start + p]):
                return p, int(ends[i] - starts[i]) + p
    return None


def compression_ratio(text: str) -> float:
    """zlib (level 9) compressed size / UTF-8 size; 1.0 for an empty text."""
    raw = text.encode("utf-8")
    return len(zlib.compress(raw, 9)) / len(raw) if raw else 1.0


def foreign_share(text: str, cfg: HygieneConfig | None = None) -> float:
    """Share of characters outside printable ASCII + whitespace + ``cfg.allowed_ranges``."""
    cfg = cfg or HygieneConfig()
    if not text:
        return 0.0

    def ok(ch: str) -> bool:
        c = ord(ch)
        if 0x20 <= c <= 0x7E or ch in "\t\n\r":
            return True
        return any(lo <= c <= hi for lo, hi in cfg.allowed_ranges)

    return sum(not ok(ch) for ch in text) / len(text)


def is_degenerate(text: str, cfg: HygieneConfig | None = None) -> str | None:
    """"repetition", "garbled" or None for a decoded response (reference §5.5; paper Sec. 4.2).

    | reason       | criterion (``HygieneConfig`` defaults)                                   |
    |--------------|--------------------------------------------------------------------------|
    | "repetition" | a block of 1..100 characters holding a letter or digit, repeated >= 10    |
    |              | times back to back and covering >= 40 characters (:func:`repeated_block`);|
    |              | or, for texts of >= 1000 characters, a zlib compression ratio < 0.1      |
    |              | (long loops of blocks longer than 100 characters)                        |
    | "garbled"    | > 20 % of the characters outside printable ASCII, whitespace and common  |
    |              | math/Latin/Greek Unicode blocks (:data:`DEFAULT_ALLOWED_RANGES`): control |
    |              | bytes, U+FFFD, private use, CJK, emoji... (an English-math setting: widen |
    |              | ``allowed_ranges`` for other languages)                                  |

    Character-level, so it needs no tokenizer. The paper removes such data among the INCORRECT
    samples only; which samples to test is the caller's choice.
    """
    cfg = cfg or HygieneConfig()
    if repeated_block(text, cfg) is not None:
        return "repetition"
    if len(text) >= cfg.min_compress_chars and compression_ratio(text) < cfg.max_compress_ratio:
        return "repetition"
    if foreign_share(text, cfg) > cfg.max_foreign_share:
        return "garbled"
    return None
