r"""Answer checking: the verdict record shared by every task's verifier, and the math graders.

The countdown verifier lives in ``dslib.tasks.countdown``. The math graders are here:

* :func:`dapo_reward` / :func:`dapo_score`: the released training reward, verl's ``math_dapo``
  boxed variant reproduced exactly (docs/paper-notes.md#terminal-score): last ``\boxed{}`` in the
  last 300 characters, Minerva normalisation, exact string match, +1/-1.
* :func:`check`: the evaluation grader (docs/paper-notes.md#evaluation), built on math-verify's
  parser and comparator with its known failures fixed. The protocol:

  - the answer is the content of the last complete ``\boxed{}``/``\fbox{}`` (an unclosed box does
    not count); no complete box, or an empty one, is ``no_answer``; boxes are never merged and no
    other text is read;
  - the exact value is required: ``0.333`` is not ``1/3`` but ``0.\overline{3}`` is, ``1/2`` is
    ``0.5``; TeX semantics decide (``3\sqrt13`` is 3*sqrt(1)*3 = 9, ``\frac123`` is 3/2);
  - a list where the gold is one value is a hedge (``12 or 120``): wrong; unordered lists and sets
    compare as multisets, tuples and intervals in order;
  - units are read and dropped (``5 \text{ cm}``), but a different known unit is wrong
    (``5 m`` for ``5 cm``); degrees (``30^\circ``, ``30°``) are a unit; money signs are dropped;
  - percent: ``X\%`` and ``X`` are the same answer to a percent gold; a percent answer ``X\%``
    to a plain gold also matches ``X/100`` (so ``50\%`` is right for ``1/2``, ``0.5`` is wrong for
    ``50\%``);
  - words (Yes/No/True/False, names) compare case-insensitively as words, never as products of
    symbols; multiple-choice letters with or without ``(C)``/``\text{(C)}``; base-n numerals by
    digits and base (``1011_2``; the bare digits ``1011`` also pass);
  - ``4.4e7`` is scientific notation; ``1,000,000``, ``1\,000`` and ``1{,}000`` are one number
    unless the gold is a list, but digits set apart by a space (``1 2``) are neither the number 12
    nor a list; a control character (``1\x002``) makes an answer ``unparseable``, never vanishes.

Nothing here evaluates model output: parsing goes through an ANTLR grammar (latex2sympy2_extended),
never through ``eval``/``sympify`` of a string, and the sympy work runs in worker processes with a
hard time limit (:mod:`dslib._grading_pool`), so :func:`check` is bounded from any thread.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from dslib._grading import (
    CONTROL,
    MAX_ANSWER_CHARS,
    MAX_DEPTH,
    MAX_GOLD_CHARS,
    Norm,
    decide,
    hostile,
    last_boxed,
    max_depth,
    normalise,
    variants,
    with_assignment_dropped,
)

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
    "bad_gold",
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


# ---------------------------------------------------------------------------------------------
# The released training reward: verl's math_dapo, boxed variant (docs/paper-notes.md#terminal-score)
#
# Ported line for line from smiles724/DeepSearch verl/utils/reward_score/math_dapo.py
# (``last_boxed_only_string``, ``remove_boxed``, ``normalize_final_answer``,
# ``is_correct_boxed_norm``, ``compute_score_boxed``; Apache-2.0, itself adapted from
# EleutherAI lm-evaluation-harness hendrycks_math/utils.py). Upstream volcengine/verl's
# ``compute_score`` differs: it reads ``Answer: ...`` lines, not boxes.

DAPO_TAIL_CHARS = 300  # "The longest answer in MATH-500 has 159 characters"
#: ``parsed_gt`` of a gold longer than ``MAX_GOLD_CHARS``, which is not normalised (see dapo_score)
DAPO_GOLD_TOO_LONG = "[GOLD_TOO_LONG]"

SUBSTITUTIONS = [
    ("an ", ""),
    ("a ", ""),
    (".$", "$"),
    ("\\$", ""),
    (r"\ ", ""),
    (" ", ""),
    ("mbox", "text"),
    (",\\text{and}", ","),
    ("\\text{and}", ","),
    ("\\text{m}", "\\text{}"),
]

REMOVED_EXPRESSIONS = [
    "square",
    "ways",
    "integers",
    "dollars",
    "mph",
    "inches",
    "hours",
    "km",
    "units",
    "\\ldots",
    "sue",
    "points",
    "feet",
    "minutes",
    "digits",
    "cents",
    "degrees",
    "cm",
    "gm",
    "pounds",
    "meters",
    "meals",
    "edges",
    "students",
    "childrentickets",
    "multiples",
    "\\text{s}",
    "\\text{.}",
    "\\text{\ns}",
    "\\text{}^2",
    "\\text{}^3",
    "\\text{\n}",
    "\\text{}",
    r"\mathrm{th}",
    r"^\circ",
    r"^{\circ}",
    r"\;",
    r",\!",
    "{,}",
    '"',
    "\\dots",
]


def last_boxed_only_string(string: str) -> str | None:
    r"""verl: the last ``\boxed{...}`` including the command, None if absent or unclosed."""
    idx = string.rfind("\\boxed{")
    if idx < 0:
        return None
    i = idx
    right_brace_idx = None
    num_left_braces_open = 0
    while i < len(string):
        if string[i] == "{":
            num_left_braces_open += 1
        if string[i] == "}":
            num_left_braces_open -= 1
            if num_left_braces_open == 0:
                right_brace_idx = i
                break
        i += 1
    return string[idx : right_brace_idx + 1] if right_brace_idx is not None else None


def remove_boxed(s: str) -> str:
    r"""verl: the content of ``\boxed{content}``."""
    left = "\\boxed{"
    assert s[: len(left)] == left, f"box error: {s}"
    assert s[-1] == "}", f"box error: {s}"
    return s[len(left) : -1]


def normalize_final_answer(final_answer: str) -> str:
    """verl/Minerva normalisation of a final answer (exact port, quirks included)."""
    final_answer = final_answer.split("=")[-1]
    for before, after in SUBSTITUTIONS:
        final_answer = final_answer.replace(before, after)
    for expr in REMOVED_EXPRESSIONS:
        final_answer = final_answer.replace(expr, "")
    final_answer = re.sub(r"(.*?)(\$)(.*?)(\$)(.*)", "$\\3$", final_answer)
    final_answer = re.sub(r"(\\text\{)(.*?)(\})", "\\2", final_answer)
    final_answer = re.sub(r"(\\textbf\{)(.*?)(\})", "\\2", final_answer)
    final_answer = re.sub(r"(\\overline\{)(.*?)(\})", "\\2", final_answer)
    final_answer = re.sub(r"(\\boxed\{)(.*)(\})", "\\2", final_answer)
    final_answer = re.sub(r"(frac)([^{])(.)", "frac{\\2}{\\3}", final_answer)
    final_answer = re.sub(r"(sqrt)([^{])", "sqrt{\\2}", final_answer)
    final_answer = final_answer.replace("$", "")
    if final_answer.replace(",", "").isdigit():
        final_answer = final_answer.replace(",", "")
    return final_answer.strip()


def dapo_score(response: str, ground_truth: str) -> dict:
    r"""verl ``compute_score_boxed``: ``{score: ±1.0, acc, pred, parsed_gt}``
    (docs/paper-notes.md#terminal-score).

    Take the last 300 characters, the last ``\boxed{}`` in them (``[INVALID]`` if none), apply
    :func:`normalize_final_answer` to it and to the ground truth, and compare the strings exactly.

    Bounded whatever the input's size: the box comes from 300 characters, and a ground truth
    longer than ``MAX_GOLD_CHARS`` (1000; DeepMath's longest is 305) is not normalised, since the
    released regexes take time quadratic in its length: the score is -1.0 and ``parsed_gt`` is
    ``[GOLD_TOO_LONG]``. The loaders of ``dslib.tasks.math`` report such rows as bad.
    """
    relevant = response[-DAPO_TAIL_CHARS:]
    boxed = last_boxed_only_string(relevant)
    extracted = "[INVALID]" if boxed is None else remove_boxed(boxed)
    pred = normalize_final_answer(extracted)
    if len(ground_truth) > MAX_GOLD_CHARS:
        return {"score": -1.0, "acc": False, "pred": pred, "parsed_gt": DAPO_GOLD_TOO_LONG}
    gt = normalize_final_answer(ground_truth)
    correct = pred == gt
    return {"score": 1.0 if correct else -1.0, "acc": correct, "pred": pred, "parsed_gt": gt}


def dapo_reward(response: str, ground_truth: str) -> float:
    """The released training reward: +1.0 if correct, -1.0 otherwise
    (docs/paper-notes.md#terminal-score).

    Same as ``compute_score_boxed(...)["score"]`` in DeepSearch's verl fork, math_dapo.py.
    """
    return dapo_score(response, ground_truth)["score"]


# ---------------------------------------------------------------------------------------------
# The evaluation grader (docs/paper-notes.md#evaluation)


@functools.lru_cache(maxsize=8192)
def _gold(ground_truth: str) -> Norm:
    return normalise(ground_truth, is_gold=True)


def gold_fault(gold: object) -> str | None:
    """Why ``gold`` cannot be graded (``check`` says ``bad_gold``), or None when it can.

    A gold must be a non-empty string of at most ``MAX_GOLD_CHARS`` characters, with brackets
    nested at most ``3 * MAX_DEPTH`` deep and no control character (tab and newline are fine).
    The loaders of ``dslib.tasks.math`` report rows failing this as bad rows.
    """
    if not isinstance(gold, str):
        return f"not a string ({type(gold).__name__})"
    if len(gold) > MAX_GOLD_CHARS:
        return f"longer than {MAX_GOLD_CHARS} characters ({len(gold)})"
    if not gold.strip():
        return "empty"
    m = CONTROL.search(gold)
    if m:
        return f"has a control character (U+{ord(m.group()):04X}) at character {m.start() + 1}"
    if max_depth(gold) > 3 * MAX_DEPTH:
        return f"has brackets nested deeper than {3 * MAX_DEPTH}"
    return None


def _symbolic(golds: list[str], preds: list[str], timeout: float) -> str:
    """Run the sympy stage in a worker process; in-process only if no worker can start."""
    from dslib import _grading_pool

    try:
        return _grading_pool.POOL.compare(golds, preds, timeout)
    except _grading_pool.WorkerError:
        from dslib import _grading_sympy  # bounded only in the main thread, pre-screened anyway

        return _grading_sympy.compare(golds, preds, timeout, _grading_pool.GOLD_TIMEOUT)


def warm_up(workers: int = 1) -> None:
    """Start grader workers in the background so that the first :func:`check` does not wait.

    The pool grows to ``workers`` if it is smaller (its default size is ``$DSLIB_GRADER_WORKERS``,
    else the CPU count within 2..8); callers from many threads then wait less for a worker.
    """
    from dslib import _grading_pool

    _grading_pool.POOL.warm(workers)


def check(response: str, ground_truth: str, timeout: float = 1.0) -> Verdict:
    r"""Grade one response against a gold answer; never raises (docs/paper-notes.md#evaluation).

    The answer is the content of the last complete ``\boxed{}``/``\fbox{}``; no complete box, or
    an empty one, is ``no_answer``. Equal means the exact value in TeX semantics (module
    docstring). ``timeout`` bounds the computer-algebra work on the response; the first gold seen
    by a worker may take up to ``GOLD_TIMEOUT`` more, and starting a worker (about a second, once)
    is not counted, nor is waiting for a free worker when many threads call at once
    (``dslib._grading_pool.Pool`` says what that costs). The work before sympy is linear in the
    text and runs on at most ``MAX_ANSWER_CHARS`` of answer and ``MAX_GOLD_CHARS`` of gold.

    Reasons: ``ok``, ``no_answer``, ``wrong``, ``timeout``; ``unparseable`` for an answer longer
    than ``MAX_ANSWER_CHARS``, nested too deep, holding a control character, or one no parser
    reads; ``bad_gold`` when the gold itself cannot be graded (:func:`gold_fault`).
    """
    if not isinstance(response, str):
        return Verdict(False, None, "no_answer")
    content = last_boxed(response)
    if content is None or not content.strip():
        return Verdict(False, None if content is None else "", "no_answer")
    extracted = content.strip(" \t\n\r")  # str.strip() would also eat \x0c, \x1c..\x1f
    if gold_fault(ground_truth) is not None:
        return Verdict(False, extracted, "bad_gold")
    try:
        if (len(extracted) > MAX_ANSWER_CHARS or max_depth(extracted) > 3 * MAX_DEPTH
                or CONTROL.search(extracted)):
            return Verdict(False, extracted, "unparseable")
        gold = _gold(ground_truth)
        pred = with_assignment_dropped(gold, normalise(extracted))
        decision = decide(gold, pred)
        if decision is not None:
            return Verdict(decision, extracted, "ok" if decision else "wrong")
        if hostile(pred.latex):
            return Verdict(False, extracted, "unparseable")
        golds, preds = variants(gold, pred)
        result = _symbolic(golds, preds, timeout)
    except Exception:  # a grader never raises; the string stage failing means unreadable input
        return Verdict(False, extracted, "unparseable")
    if result == "equal":
        return Verdict(True, extracted, "ok")
    if result in ("unparseable", "timeout"):
        return Verdict(False, extracted, result)
    return Verdict(False, extracted, "wrong")  # "different", or a gold sympy cannot read


__all__ = [
    "MAX_ANSWER_CHARS",
    "MAX_GOLD_CHARS",
    "REASONS",
    "Verdict",
    "check",
    "dapo_reward",
    "dapo_score",
    "gold_fault",
    "last_boxed_only_string",
    "normalize_final_answer",
    "remove_boxed",
    "warm_up",
]
