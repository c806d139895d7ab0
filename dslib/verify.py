"""Answer checking: the verdict record shared by every task's verifier.

The countdown verifier lives in ``dslib.tasks.countdown``; the math graders
(``dapo_reward``, ``check``) arrive with the 1.5B issue. Nothing here evaluates model output.
"""

from __future__ import annotations

from dataclasses import dataclass

#: reasons a verdict can carry; ``ok`` is the only correct one.
REASONS = (
    "ok",
    "no_answer",
    "bad_expression",
    "wrong_numbers",
    "wrong_value",
    "unparseable",
    "timeout",
    "wrong",
)


@dataclass(frozen=True)
class Verdict:
    """Outcome of checking one response: ``correct``, the ``extracted`` answer, and a ``reason``."""

    correct: bool
    extracted: str | None
    reason: str

    @property
    def has_answer(self) -> bool:
        """False when the response contained no final answer at all (an incomplete trajectory)."""
        return self.reason != "no_answer"
