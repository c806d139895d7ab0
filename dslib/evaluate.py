"""pass@k and avg@k of a policy on a list of problems.

For each problem we draw ``n`` samples and count the ``c`` correct ones. Then

* avg@n (the paper's "Pass1@1 estimated with n samples", docs/paper-notes.md#evaluation) = mean over
  problems of c/n;
* pass@k, the unbiased estimator of Chen et al. (2021): ``1 - C(n-c, k) / C(n, k)``, averaged
  over problems (k <= n).

The per-problem counts are kept, so callers can also ask for the share of problems whose success
rate is at most a threshold (the "plateau" share: problems where flat GRPO sees no signal).

The paper's Table 1 harness (six math benchmarks, avg@32, resumable) is
:mod:`dslib.benchmarks`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from dslib.policy.base import Policy
from dslib.progress import progress_bar
from dslib.verify import Verdict


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k for one problem with ``c`` correct out of ``n`` samples."""
    if not 0 <= c <= n:
        raise ValueError(f"need 0 <= c <= n, got c={c}, n={n}")
    if not 1 <= k <= n:
        raise ValueError(f"need 1 <= k <= n, got k={k}, n={n}")
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


@dataclass
class EvalResult:
    """Per-problem correct counts plus the aggregate metrics."""

    n_samples: int
    correct: list[int]
    answered: list[int]
    ids: list[str] = field(default_factory=list)
    ks: tuple[int, ...] = (1,)

    @property
    def pass_at(self) -> dict[int, float]:
        """pass@k averaged over problems, for each requested k."""
        return {
            k: sum(pass_at_k(self.n_samples, c, k) for c in self.correct)
            / max(1, len(self.correct))
            for k in self.ks
        }

    @property
    def avg_at_n(self) -> float:
        """Mean success rate over all samples (avg@n)."""
        return sum(self.correct) / max(1, self.n_samples * len(self.correct))

    @property
    def answer_rate(self) -> float:
        """Share of samples that contained a final answer (format validity)."""
        return sum(self.answered) / max(1, self.n_samples * len(self.answered))

    def share_at_most(self, rate: float) -> float:
        """Share of problems whose success rate c/n is <= ``rate``."""
        if not self.correct:
            return 0.0
        return sum(c / self.n_samples <= rate + 1e-12 for c in self.correct) / len(self.correct)

    def to_dict(self) -> dict[str, Any]:
        return {
            "problems": len(self.correct), "n_samples": self.n_samples,
            "avg@n": self.avg_at_n, **{f"pass@{k}": v for k, v in self.pass_at.items()},
            "answer_rate": self.answer_rate, "correct": self.correct, "ids": self.ids,
        }


def evaluate(
    policy: Policy,
    items: Sequence[Any],
    verifier: Callable[[Any, list[int]], Verdict],
    n_samples: int = 8,
    ks: Sequence[int] = (1,),
    max_new_tokens: int = 64,
    temperature: float = 1.0,
    top_p: float = 1.0,
    batch_problems: int = 64,
    progress: bool = True,
    desc: str = "eval",
) -> EvalResult:
    """Sample ``n_samples`` responses per item (anything with ``prompt_ids``) and verify them.

    Problems are processed ``batch_problems`` at a time, each batch in one ``policy.sample`` call.
    """
    if any(k > n_samples for k in ks):
        raise ValueError(f"every k must be <= n_samples={n_samples}, got ks={tuple(ks)}")
    correct: list[int] = []
    answered: list[int] = []
    starts = range(0, len(items), batch_problems)
    bar = progress_bar(enabled=progress, total=len(items), desc=desc, leave=False)
    for s in starts:
        chunk = items[s : s + batch_problems]
        segs = policy.sample(
            [it.prompt_ids for it in chunk], n_samples, max_new_tokens,
            temperature=temperature, top_p=top_p,
        )
        for it, samples in zip(chunk, segs):
            verdicts = [verifier(it, seg.token_ids) for seg in samples]
            correct.append(sum(v.correct for v in verdicts))
            answered.append(sum(v.has_answer for v in verdicts))
        bar.update(len(chunk))
    bar.close()
    ids = [str(getattr(it, "id", i)) for i, it in enumerate(items)]
    return EvalResult(n_samples, correct, answered, ids, tuple(ks))
