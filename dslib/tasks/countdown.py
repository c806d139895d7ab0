r"""Countdown: reach a target with a few small numbers and + - * /, each number used once.

A small synthetic reasoning task that a ~1M-parameter model can learn on a CPU. Every problem
is generated from a random expression tree, so every problem has a solution.

Generation rules (measured choices; they keep the task learnable for a tiny model):

- ``n_numbers`` numbers (the difficulty, 2..6) drawn independently from ``1..max_number``
  (default 6; repeats allowed); the target lies in ``1..max_target`` (default 100);
- every intermediate result is a positive integer ``<= 1000`` (``MAX_INTERMEDIATE``);
- subtraction is always larger minus smaller (result > 0);
- division only when exact, and never by 1;
- multiplication by 1 is allowed by default (``allow_times_one=True``, as in the measured
  prototype of ``reference/tiny-reasoner-feasibility.md``: it keeps a share of easy problems
  that a tiny model can learn from); with ``allow_times_one=False`` a 1 can never be a free
  "skip". The verifier accepts ``*1``, ``/1`` and fractional intermediates either way.

Canonical form (what the reference solution looks like):

- the prompt lists the numbers sorted ascending: ``Numbers: 2 3 5 6`` / ``Target: 27``;
- each step puts the larger operand first (``6*5=30``, ``30-3=27``); on a tie the operand
  built from more numbers comes first;
- steps list the tree bottom-up, the larger operand's sub-steps first;
- the last line is ``\boxed{EXPR}``: the expression over the original numbers with minimal
  parentheses, e.g. ``\boxed{6*5-3}`` or ``\boxed{5*(6-2)+1}`` (5 > 6-2, so 5 first).

Splits: a problem's *key* is ``(numbers, target)``. :func:`split_of` assigns each key to one
split (``sft`` / ``rl`` / ``test``) by a stable hash, so the splits are disjoint by key at
every difficulty (there are only a few hundred distinct 3-number problems, so memorisation
is a real risk).

Verifier (:func:`verify`): take the LAST ``\boxed{...}`` (balanced braces) in the response,
parse it with a small recursive-descent parser (never ``eval``), evaluate exactly with
:class:`fractions.Fraction`, and report one reason:

==================  ================================================================
reason              meaning
==================  ================================================================
``ok``              uses exactly the problem's numbers and equals the target
``no_answer``       no ``\boxed{`` in the response, or the last one is never closed
``bad_expression``  not a plain arithmetic expression (letters, ``**``, ``^``, ``=``,
                    unary minus, decimals, empty box, division by zero, too long,
                    nested too deep, a literal with too many digits)
``wrong_numbers``   the multiset of integer literals differs from the problem's numbers
``wrong_value``     right numbers, but the value differs from the target
``timeout``         the wall-clock budget (``timeout_s``) ran out (a safety net only)
==================  ================================================================

Accepted in the box: integers, ``+ - * /``, parentheses, spaces, and the aliases ``×``
``·`` ``\times`` ``\cdot`` (multiply), ``÷`` ``\div`` (divide), ``−`` (minus),
``\left(`` ``\right)``. There is no unary minus or plus: ``-3+6`` is ``bad_expression``.
"""

from __future__ import annotations

import hashlib
import operator
import random
import time
from collections import Counter
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from fractions import Fraction
from itertools import accumulate, combinations_with_replacement, repeat

from dslib.verify import Verdict

#: largest allowed intermediate value (and final value) in a generated tree.
MAX_INTERMEDIATE = 1000
#: difficulties (how many numbers) that :func:`generate` supports.
MIN_NUMBERS, MAX_NUMBERS = 2, 6
#: default split fractions; :func:`split_of` normalises them to sum to 1.
DEFAULT_FRACTIONS: Mapping[str, float] = {"sft": 0.5, "rl": 0.3, "test": 0.2}

#: verifier limits: box content length, parenthesis depth, digits per literal, time budget.
MAX_BOX_CHARS = 200
MAX_DEPTH = 32
MAX_DIGITS = 9
DEFAULT_TIMEOUT_S = 0.5

#: :func:`generate` enumerates the whole space (for exact counts and to fill small spaces)
#: only up to this many numbers; beyond it enumeration is too slow and never needed.
_ENUMERATE_MAX_NUMBERS = 4

Key = tuple[tuple[int, ...], int]


# --------------------------------------------------------------------------------------------
# Problems and expression trees
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """One countdown problem and the canonical solution of its generating tree."""

    id: str
    numbers: tuple[int, ...]  # sorted ascending
    target: int
    steps: tuple[tuple[int, str, int, int], ...]  # (a, op, b, result), a >= b
    expression: str  # generating expression over the numbers, minimal parentheses

    @property
    def difficulty(self) -> int:
        """How many numbers the problem uses."""
        return len(self.numbers)

    @property
    def key(self) -> Key:
        """``(numbers, target)``: identifies the problem for de-duplication and splits."""
        return (self.numbers, self.target)


@dataclass(frozen=True)
class _Node:
    """An expression tree node; a leaf has ``op == ""``."""

    value: int
    op: str = ""
    left: _Node | None = None
    right: _Node | None = None
    size: int = 1  # how many numbers (leaves) it uses


_PREC = {"+": 1, "-": 1, "*": 2, "/": 2, "": 3}


def _combine(x: _Node, y: _Node, op: str, times_one: bool = True) -> _Node | None:
    """Apply ``op`` in canonical order (larger first); None if the generation rules forbid it."""
    a, b = (x, y) if (x.value, x.size) >= (y.value, y.size) else (y, x)
    va, vb = a.value, b.value
    if op == "+":
        v = va + vb
    elif op == "-":
        v = va - vb
        if v <= 0:
            return None
    elif op == "*":
        if vb == 1 and not times_one:
            return None
        v = va * vb
    else:  # "/"
        if vb == 1 or va % vb:
            return None
        v = va // vb
    if v > MAX_INTERMEDIATE:
        return None
    return _Node(v, op, a, b, a.size + b.size)


def _steps(node: _Node) -> list[tuple[int, str, int, int]]:
    """Canonical steps, bottom-up, larger operand's sub-steps first."""
    if not node.op:
        return []
    assert node.left is not None and node.right is not None
    own = (node.left.value, node.op, node.right.value, node.value)
    return _steps(node.left) + _steps(node.right) + [own]


def _leaves(node: _Node) -> list[int]:
    if not node.op:
        return [node.value]
    assert node.left is not None and node.right is not None
    return _leaves(node.left) + _leaves(node.right)


def _expr(node: _Node) -> str:
    """The expression with minimal parentheses (value-preserving for exact arithmetic)."""
    if not node.op:
        return str(node.value)
    assert node.left is not None and node.right is not None
    p = _PREC[node.op]
    left = _expr(node.left)
    if _PREC[node.left.op] < p:
        left = f"({left})"
    right = _expr(node.right)
    rp = _PREC[node.right.op]
    if rp < p or (rp == p and node.op in "-/"):
        right = f"({right})"
    return f"{left}{node.op}{right}"


def _problem_id(key: Key) -> str:
    numbers, target = key
    return f"cd{len(numbers)}-{'.'.join(map(str, numbers))}-t{target}"


def _to_problem(node: _Node) -> Problem:
    numbers = tuple(sorted(_leaves(node)))
    return Problem(
        id=_problem_id((numbers, node.value)),
        numbers=numbers,
        target=node.value,
        steps=tuple(_steps(node)),
        expression=_expr(node),
    )


def _random_tree(
    rng: random.Random, n_numbers: int, max_number: int, times_one: bool = True
) -> _Node | None:
    """Combine random pairs of n random numbers with random allowed ops; None on a dead end."""
    pool = [_Node(rng.randint(1, max_number)) for _ in range(n_numbers)]
    while len(pool) > 1:
        i, j = rng.sample(range(len(pool)), 2)
        x, y = pool[i], pool[j]
        options = [n for op in "+-*/" if (n := _combine(x, y, op, times_one)) is not None]
        if not options:
            return None
        pool = [p for k, p in enumerate(pool) if k not in (i, j)]
        pool.append(rng.choice(options))
    return pool[0]


def _reachable(
    numbers: tuple[int, ...],
    memo: dict[tuple[int, ...], dict[int, _Node]],
    times_one: bool = True,
) -> dict[int, _Node]:
    """All values reachable from a sorted multiset under the rules, each with one witness tree."""
    if numbers in memo:
        return memo[numbers]
    out: dict[int, _Node] = {}
    if len(numbers) == 1:
        out[numbers[0]] = _Node(numbers[0])
    else:
        n = len(numbers)
        seen: set[tuple[int, ...]] = set()
        for mask in range(1, (1 << n) - 1):
            if not mask & 1:  # fix numbers[0] on the left: each split once
                continue
            left = tuple(numbers[k] for k in range(n) if mask >> k & 1)
            if left in seen:
                continue
            seen.add(left)
            right = tuple(numbers[k] for k in range(n) if not mask >> k & 1)
            lv, rv = _reachable(left, memo, times_one), _reachable(right, memo, times_one)
            for x in lv.values():
                for y in rv.values():
                    for op in "+-*/":
                        node = _combine(x, y, op, times_one)
                        if node is not None and node.value not in out:
                            out[node.value] = node
    memo[numbers] = out
    return out


def all_problems(
    n_numbers: int, max_number: int = 6, max_target: int = 100, allow_times_one: bool = True
) -> list[Problem]:
    """Every distinct problem (by key) with ``n_numbers`` numbers, sorted by key.

    Only for ``n_numbers <= 4`` (enumeration is cheap there: well under a second); each
    problem carries one witness solution (the first found, deterministic).
    """
    if not MIN_NUMBERS <= n_numbers <= _ENUMERATE_MAX_NUMBERS:
        raise ValueError(f"all_problems supports 2..{_ENUMERATE_MAX_NUMBERS} numbers")
    memo: dict[tuple[int, ...], dict[int, _Node]] = {}
    out = []
    for numbers in combinations_with_replacement(range(1, max_number + 1), n_numbers):
        values = _reachable(numbers, memo, allow_times_one)
        for target in sorted(values):
            if 1 <= target <= max_target:
                out.append(_to_problem(values[target]))
    return out


def _normalise_key(item: object) -> Key:
    if isinstance(item, Problem):
        return item.key
    numbers, target = item  # type: ignore[misc]
    return (tuple(int(v) for v in numbers), int(target))


def generate(
    n_numbers: int,
    count: int,
    seed: int,
    *,
    max_number: int = 6,
    max_target: int = 100,
    exclude: Collection[tuple] = (),
    in_split: str | None = None,
    split_seed: int = 0,
    fractions: Mapping[str, float] = DEFAULT_FRACTIONS,
    allow_times_one: bool = True,
) -> list[Problem]:
    """``count`` distinct solvable problems with ``n_numbers`` numbers, deterministic per seed.

    ``exclude`` holds keys ``(numbers, target)`` (or Problems) that must not appear. With
    ``in_split`` set, only problems whose key falls in that split (see :func:`split_of` with
    ``split_seed`` and ``fractions``) are kept. Raises ValueError if ``count`` distinct
    problems cannot be found (e.g. 2 numbers have only a few dozen); the message says how
    many exist.
    """
    if not MIN_NUMBERS <= n_numbers <= MAX_NUMBERS:
        raise ValueError(f"n_numbers must be in {MIN_NUMBERS}..{MAX_NUMBERS}, got {n_numbers}")
    if count < 0 or max_number < 1 or max_target < 1:
        raise ValueError("count must be >= 0, max_number and max_target >= 1")
    if in_split is not None and in_split not in fractions:
        raise ValueError(f"unknown split {in_split!r}; have {sorted(fractions)}")
    excluded = {_normalise_key(k) for k in exclude}
    chosen: dict[Key, Problem] = {}

    def allowed(key: Key) -> bool:
        if key in excluded:
            return False
        return in_split is None or split_of(key, seed=split_seed, fractions=fractions) == in_split

    rng = random.Random(seed)
    max_attempts = 10_000 + 100 * count
    stall_limit = 5_000 + 10 * count  # give up after this many attempts with no new problem
    attempts = since_new = 0
    while len(chosen) < count and attempts < max_attempts and since_new < stall_limit:
        attempts += 1
        since_new += 1
        root = _random_tree(rng, n_numbers, max_number, allow_times_one)
        if root is None or not 1 <= root.value <= max_target:
            continue
        problem = _to_problem(root)
        if problem.key not in chosen and allowed(problem.key):
            chosen[problem.key] = problem
            since_new = 0
    if len(chosen) < count:
        where = f" in split {in_split!r}" if in_split is not None else ""
        space = f"max_number={max_number}, max_target={max_target}"
        if n_numbers > _ENUMERATE_MAX_NUMBERS:
            raise ValueError(
                f"found only {len(chosen)} distinct {n_numbers}-number problems{where} "
                f"({space}, {len(excluded)} excluded) after {attempts} attempts; "
                f"asked for {count}"
            )
        # Small space: enumerate it, then fill up with a random sample of what is left.
        everything = all_problems(n_numbers, max_number, max_target, allow_times_one)
        rest = [p for p in everything if p.key not in chosen and allowed(p.key)]
        if len(chosen) + len(rest) < count:
            raise ValueError(
                f"only {len(everything)} distinct {n_numbers}-number problems exist ({space}); "
                f"{len(chosen) + len(rest)} of them are allowed{where} after excluding "
                f"{len(excluded)} keys; asked for {count}"
            )
        for p in rng.sample(rest, count - len(chosen)):
            chosen[p.key] = p
    return list(chosen.values())


# --------------------------------------------------------------------------------------------
# Splits
# --------------------------------------------------------------------------------------------


def _unit_hash(key: Key, seed: int) -> float:
    numbers, target = key
    text = f"countdown|{seed}|{','.join(map(str, numbers))}|{target}"
    digest = hashlib.sha256(text.encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def split_of(
    problem: Problem | Key, seed: int = 0, fractions: Mapping[str, float] = DEFAULT_FRACTIONS
) -> str:
    """The split a problem (or key) belongs to: stable across runs, machines and Python versions.

    Splits are taken in the mapping's order, each covering its (normalised) fraction of [0, 1).
    """
    total = float(sum(fractions.values()))
    if not fractions or total <= 0 or any(f < 0 for f in fractions.values()):
        raise ValueError(f"fractions must be non-negative with a positive sum, got {fractions}")
    u = _unit_hash(_normalise_key(problem), seed) * total
    acc = 0.0
    name = ""
    for name, frac in fractions.items():
        acc += frac
        if u < acc and frac > 0:
            return name
    return name  # u landed on the rounding edge: last split


def split_keys(
    keys: Iterable[Key], fractions: Mapping[str, float] = DEFAULT_FRACTIONS, seed: int = 0
) -> dict[Key, str]:
    """Map every key ``(numbers, target)`` to its split name."""
    return {_normalise_key(k): split_of(k, seed, fractions) for k in keys}


def split(
    problems: Iterable[Problem],
    fractions: Mapping[str, float] = DEFAULT_FRACTIONS,
    seed: int = 0,
) -> dict[str, list[Problem]]:
    """Partition problems by :func:`split_of` (order kept; every split name present)."""
    out: dict[str, list[Problem]] = {name: [] for name in fractions}
    for p in problems:
        out[split_of(p, seed, fractions)].append(p)
    return out


# --------------------------------------------------------------------------------------------
# Text
# --------------------------------------------------------------------------------------------


def prompt_text(problem: Problem) -> str:
    """The user message: two lines, ``Numbers: 2 3 5 6`` then ``Target: 27``."""
    return f"Numbers: {' '.join(map(str, problem.numbers))}\nTarget: {problem.target}"


def solution_text(problem: Problem) -> str:
    r"""The reference solution: one step per line (``6*5=30``), then ``\boxed{EXPR}``."""
    lines = [f"{a}{op}{b}={r}" for a, op, b, r in problem.steps]
    lines.append(f"\\boxed{{{problem.expression}}}")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Verifier
# --------------------------------------------------------------------------------------------


class ExpressionError(ValueError):
    """The text is not an allowed arithmetic expression."""


class _Timeout(Exception):
    pass


_ALIASES = (
    ("\\times", "*"),
    ("\\cdot", "*"),
    ("\\div", "/"),
    ("\\left(", "("),
    ("\\right)", ")"),
    ("×", "*"),
    ("·", "*"),
    ("÷", "/"),
    ("−", "-"),
)
_BOX = "\\boxed{"
_BRACE_DELTA = {"{": 1, "}": -1}


def _tokenize(text: str, deadline: float) -> list[str]:
    for alias, op in _ALIASES:
        text = text.replace(alias, op)
    tokens: list[str] = []
    i, n = 0, len(text)
    while i < n:
        if time.monotonic() > deadline:
            raise _Timeout
        ch = text[i]
        if "0" <= ch <= "9":  # ASCII digits only (str.isdigit accepts '²' and others)
            j = i
            while j < n and "0" <= text[j] <= "9":
                j += 1
            if j - i > MAX_DIGITS:
                raise ExpressionError(f"literal longer than {MAX_DIGITS} digits")
            tokens.append(text[i:j])
            i = j
        elif ch in "+-*/()":
            tokens.append(ch)
            i += 1
        elif ch in " \t\n\r":
            i += 1
        else:
            raise ExpressionError(f"unexpected character {ch!r}")
    return tokens


class _Parser:
    """Recursive-descent parser that evaluates as it goes and records the integer literals.

    Grammar: ``expr := term (('+'|'-') term)*``, ``term := factor (('*'|'/') factor)*``,
    ``factor := INT | '(' expr ')'``.
    """

    def __init__(self, tokens: list[str], deadline: float) -> None:
        self.tokens = tokens
        self.pos = 0
        self.depth = 0
        self.deadline = deadline
        self.literals: list[int] = []

    def _peek(self) -> str | None:
        if time.monotonic() > self.deadline:
            raise _Timeout
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def parse(self) -> Fraction:
        if not self.tokens:
            raise ExpressionError("empty expression")
        value = self._expr()
        if self.pos != len(self.tokens):
            raise ExpressionError(f"unexpected {self.tokens[self.pos]!r}")
        return value

    def _expr(self) -> Fraction:
        value = self._term()
        while (tok := self._peek()) in ("+", "-"):
            self.pos += 1
            rhs = self._term()
            value = value + rhs if tok == "+" else value - rhs
        return value

    def _term(self) -> Fraction:
        value = self._factor()
        while (tok := self._peek()) in ("*", "/"):
            self.pos += 1
            rhs = self._factor()
            if tok == "*":
                value *= rhs
            elif rhs == 0:
                raise ExpressionError("division by zero")
            else:
                value /= rhs
        return value

    def _factor(self) -> Fraction:
        tok = self._peek()
        if tok is None:
            raise ExpressionError("unexpected end")
        self.pos += 1
        if tok == "(":
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise ExpressionError(f"nested deeper than {MAX_DEPTH}")
            value = self._expr()
            if self._peek() != ")":
                raise ExpressionError("missing ')'")
            self.pos += 1
            self.depth -= 1
            return value
        if tok.isdigit():
            self.literals.append(int(tok))
            return Fraction(int(tok))
        raise ExpressionError(f"unexpected {tok!r}")


def evaluate(
    text: str, *, timeout_s: float = DEFAULT_TIMEOUT_S
) -> tuple[Fraction, tuple[int, ...]]:
    """Exact value and sorted integer literals of an expression (no ``eval``).

    Raises :class:`ExpressionError` for anything outside the grammar (including text longer
    than ``MAX_BOX_CHARS`` and division by zero) and :class:`TimeoutError` past ``timeout_s``.
    """
    deadline = time.monotonic() + timeout_s
    text = text.strip()
    if len(text) > MAX_BOX_CHARS:
        raise ExpressionError(f"longer than {MAX_BOX_CHARS} characters")
    try:
        parser = _Parser(_tokenize(text, deadline), deadline)
        value = parser.parse()
    except _Timeout:
        raise TimeoutError("expression evaluation ran past its deadline") from None
    return value, tuple(sorted(parser.literals))


def _last_box(text: str) -> str | None:
    r"""Content of the last ``\boxed{...}`` (balanced braces), None if absent or unclosed.

    Linear time: ``rfind`` for the box, then C-level scans (no regex, no Python loop per char).
    """
    start = text.rfind(_BOX)
    if start < 0:
        return None
    begin = start + len(_BOX)
    close = text.find("}", begin)
    if close < 0:
        return None
    if "{" not in text[begin:close]:  # the usual case: no braces inside the box
        return text[begin:close]
    # Running brace depth after each character; the box closes where it first reaches -1.
    depths = accumulate(map(_BRACE_DELTA.get, text[begin:], repeat(0)))
    try:
        return text[begin : begin + operator.indexOf(depths, -1)]
    except ValueError:
        return None


def verify(problem: Problem, response: str, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> Verdict:
    r"""Check the last ``\boxed{...}`` of ``response``; never raises (see the module table)."""
    if not isinstance(response, str):
        return Verdict(False, None, "no_answer")
    deadline = time.monotonic() + timeout_s
    extracted: str | None = None
    try:
        content = _last_box(response)
        if content is None:
            return Verdict(False, None, "no_answer")
        extracted = content.strip()
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return Verdict(False, extracted, "timeout")
        value, literals = evaluate(extracted, timeout_s=remaining)
    except TimeoutError:
        return Verdict(False, extracted, "timeout")
    except Exception:  # ExpressionError, and a safety net: a verifier must never raise
        return Verdict(False, extracted, "bad_expression")
    if Counter(literals) != Counter(problem.numbers):
        return Verdict(False, extracted, "wrong_numbers")
    if value != problem.target:
        return Verdict(False, extracted, "wrong_value")
    return Verdict(True, extracted, "ok")


__all__ = [
    "DEFAULT_FRACTIONS",
    "MAX_BOX_CHARS",
    "MAX_DEPTH",
    "MAX_DIGITS",
    "MAX_INTERMEDIATE",
    "ExpressionError",
    "Problem",
    "all_problems",
    "evaluate",
    "generate",
    "prompt_text",
    "solution_text",
    "split",
    "split_keys",
    "split_of",
    "verify",
]
