"""Tests for the countdown task: generator, splits, text formats and the verifier."""

from __future__ import annotations

import re
import threading
import time
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dslib.tasks import countdown as cd
from dslib.tasks.countdown import Problem, generate, solution_text, verify
from dslib.verify import REASONS, Verdict

APPLY = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "/": lambda a, b: Fraction(a, b),
}


def make(numbers: tuple[int, ...], target: int) -> Problem:
    """A hand-written problem (steps/expression unused by the verifier)."""
    return Problem("t", tuple(sorted(numbers)), target, (), "")


P136 = make((1, 3, 6), 2)
P2356 = make((2, 3, 5, 6), 27)  # (6+3)*(5-2)


@pytest.fixture(scope="module")
def pools() -> dict[int, list[Problem]]:
    return {n: generate(n, 200, seed=n) for n in (3, 4, 5)}


# --------------------------------------------------------------------------------------------
# Generator
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [3, 4, 5])
def test_generated_problems_are_valid(pools: dict[int, list[Problem]], n: int) -> None:
    problems = pools[n]
    assert len(problems) == 200
    assert len({p.key for p in problems}) == 200
    for p in problems:
        assert p.difficulty == n and len(p.steps) == n - 1
        assert list(p.numbers) == sorted(p.numbers)
        assert all(1 <= v <= 6 for v in p.numbers)
        assert 1 <= p.target <= 100
        assert p.key == (p.numbers, p.target)
        assert p.id.startswith(f"cd{n}-")
        for a, op, b, r in p.steps:
            assert a >= b >= 1
            assert APPLY[op](a, b) == r
            assert isinstance(r, int) and 0 < r <= cd.MAX_INTERMEDIATE
            assert not (op in "*/" and b == 1)
        assert p.steps[-1][3] == p.target
        assert verify(p, f"\\boxed{{{p.expression}}}") == Verdict(True, p.expression, "ok")
        assert verify(p, solution_text(p)).reason == "ok"


def test_ids_unique_and_stable(pools: dict[int, list[Problem]]) -> None:
    everything = [p for ps in pools.values() for p in ps]
    assert len({p.id for p in everything}) == len(everything)
    assert cd._problem_id(((2, 3, 5, 6), 27)) == "cd4-2.3.5.6-t27"


def test_deterministic_per_seed() -> None:
    assert generate(4, 50, seed=7) == generate(4, 50, seed=7)
    assert generate(4, 50, seed=7) != generate(4, 50, seed=8)


def test_exclude_honoured() -> None:
    first = generate(3, 100, seed=1)
    keys = [p.key for p in first]
    again = generate(3, 100, seed=1, exclude=keys)
    assert not {p.key for p in again} & set(keys)
    # Problems and list-shaped keys are accepted too.
    assert not {p.key for p in generate(3, 50, seed=1, exclude=first)} & set(keys)
    as_lists = [(list(k[0]), k[1]) for k in keys]
    assert not {p.key for p in generate(3, 50, seed=1, exclude=as_lists)} & set(keys)


def test_levels_fast() -> None:
    start = time.monotonic()
    for n in (3, 4, 5, 6):
        assert len(generate(n, 200, seed=0)) == 200
    assert time.monotonic() - start < 3.0


def test_impossible_count_raises() -> None:
    n2 = len(cd.all_problems(2))
    assert len(generate(2, n2, seed=0)) == n2  # the whole small space can be drawn
    with pytest.raises(ValueError, match=f"only {n2} distinct 2-number"):
        generate(2, n2 + 1, seed=0)
    with pytest.raises(ValueError, match="distinct"):
        generate(3, 10, seed=0, max_number=1, max_target=1)  # 1+1+1=3 > target: none
    with pytest.raises(ValueError):
        generate(7, 1, seed=0)


def test_all_problems_small_spaces() -> None:
    three = cd.all_problems(3)
    assert len({p.key for p in three}) == len(three) > 500
    assert all(verify(p, solution_text(p)).correct for p in three)
    sampled = {p.key for p in generate(3, 300, seed=3)}
    assert sampled <= {p.key for p in three}


def test_generate_in_split() -> None:
    test = generate(4, 100, seed=2, in_split="test")
    assert all(cd.split_of(p) == "test" for p in test)


# --------------------------------------------------------------------------------------------
# Text formats
# --------------------------------------------------------------------------------------------


def test_prompt_and_solution_format() -> None:
    p = Problem("x", (3, 5, 6), 27, ((6, "*", 5, 30), (30, "-", 3, 27)), "6*5-3")
    assert cd.prompt_text(p) == "Numbers: 3 5 6\nTarget: 27"
    assert solution_text(p) == "6*5=30\n30-3=27\n\\boxed{6*5-3}"
    assert solution_text(p, "backward") == "27=30-3\n30=6*5\n\\boxed{6*5-3}"
    with pytest.raises(ValueError, match="unknown solution style"):
        solution_text(p, "sideways")


def test_backward_solutions_are_the_forward_steps_goal_first() -> None:
    """Same steps, last first, result first; the first line names the target; every later
    line's result is an operand of an earlier line; the box verifies either way."""
    for n in (3, 4, 5):
        for p in generate(n, 40, seed=n):
            fwd = solution_text(p).split("\n")
            back = solution_text(p, "backward").split("\n")
            assert back[-1] == fwd[-1] and verify(p, "\n".join(back)).correct
            flipped = [f"{r}={a}{op}{b}" for a, op, b, r in p.steps]
            assert back[:-1] == flipped[::-1]
            assert back[0].startswith(f"{p.target}=")
            for k, line in enumerate(back[1:-1], start=1):
                result = line.split("=")[0]
                operands = {x for earlier in back[:k]
                            for x in re.split(r"[-+*/]", earlier.split("=")[1])}
                assert result in operands


def test_minimal_parentheses() -> None:
    leaf = cd._Node
    six_minus_one = cd._combine(leaf(6), leaf(1), "-")
    assert cd._expr(cd._combine(six_minus_one, leaf(4), "*")) == "(6-1)*4"
    six_minus_two = cd._combine(leaf(6), leaf(2), "-")
    times_five = cd._combine(six_minus_two, leaf(5), "*")  # larger operand (5) first
    assert cd._expr(cd._combine(times_five, leaf(1), "+")) == "5*(6-2)+1"
    assert cd._steps(times_five) == [(6, "-", 2, 4), (5, "*", 4, 20)]
    three_minus_two = cd._combine(leaf(3), leaf(2), "-")
    assert cd._expr(cd._combine(leaf(6), three_minus_two, "-")) == "6-(3-2)"
    assert cd._expr(cd._combine(leaf(6), three_minus_two, "+")) == "6+3-2"
    six_div_three = cd._combine(leaf(6), leaf(3), "/")
    assert cd._expr(cd._combine(leaf(4), six_div_three, "/")) == "4/(6/3)"
    assert cd._expr(cd._combine(leaf(4), six_div_three, "*")) == "4*6/3"


# --------------------------------------------------------------------------------------------
# Splits
# --------------------------------------------------------------------------------------------


def test_split_disjoint_deterministic_and_proportional() -> None:
    problems = generate(5, 1000, seed=11)
    fractions = {"sft": 0.6, "rl": 0.3, "test": 0.1}
    parts = cd.split(problems, fractions, seed=0)
    assert parts == cd.split(problems, fractions, seed=0)
    keysets = {name: {p.key for p in ps} for name, ps in parts.items()}
    assert sum(len(k) for k in keysets.values()) == 1000
    assert not keysets["sft"] & keysets["rl"]
    assert not keysets["sft"] & keysets["test"]
    assert not keysets["rl"] & keysets["test"]
    for name, frac in fractions.items():
        assert abs(len(parts[name]) / 1000 - frac) < 0.05
    mapping = cd.split_keys([p.key for p in problems], fractions, seed=0)
    assert all(mapping[p.key] == name for name, ps in parts.items() for p in ps)
    assert cd.split(problems, fractions, seed=1) != parts  # the seed reshuffles
    assert cd.split_of(problems[0].key) == cd.split_of(problems[0])


def test_split_values_pinned() -> None:
    # Pinned: changing the hash would silently move problems between train and test.
    assert cd._unit_hash(((1, 2, 3), 6), 0) == pytest.approx(0.2515423051700051)
    assert [cd.split_of(((1, 2, 3), t)) for t in range(1, 10)] == [
        "sft", "rl", "test", "sft", "sft", "sft", "sft", "sft", "rl"
    ]  # fmt: skip


def test_split_rejects_bad_fractions() -> None:
    with pytest.raises(ValueError):
        cd.split_of(P136, fractions={"a": 0.0})
    with pytest.raises(ValueError):
        cd.split_of(P136, fractions={"a": 1.0, "b": -0.5})


# --------------------------------------------------------------------------------------------
# Verifier: one case per reason
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("problem", "response", "reason", "extracted"),
    [
        (P2356, "6+3=9\n5-2=3\n9*3=27\n\\boxed{(6+3)*(5-2)}", "ok", "(6+3)*(5-2)"),
        (P2356, "\\boxed{ ( 6 + 3 ) *\n( 5 - 2 ) }", "ok", "( 6 + 3 ) *\n( 5 - 2 )"),
        (P2356, "\\boxed{(6+3)\\times(5-2)}", "ok", None),
        (P2356, "\\boxed{(6+3)×(5−2)}", "ok", None),
        (P2356, "\\boxed{(6+3)·(5-2)}", "ok", None),
        (P2356, "\\boxed{\\left(6+3\\right)\\cdot\\left(5-2\\right)}", "ok", None),
        (P2356, "\\boxed{6*5-3}", "wrong_numbers", None),
        (P136, "\\boxed{6÷3×1}", "ok", None),
        (P136, "\\boxed{6\\div 3\\cdot 1}", "ok", None),
        (P136, "\\boxed{6/3*1}", "ok", "6/3*1"),
        (P136, "\\boxed{(1/3)*6}", "ok", "(1/3)*6"),
        (P136, "\\boxed{6/(3*1)}", "ok", None),
        (P136, "", "no_answer", None),
        (P136, "the answer is 6/3*1", "no_answer", None),
        (P136, "\\boxed{6/3*1", "no_answer", None),
        (P136, "\\boxed{6/3*1} then \\boxed{6/3", "no_answer", None),
        (P136, "\\boxed{}", "bad_expression", ""),
        (P136, "\\boxed{   }", "bad_expression", ""),
        (P136, "\\boxed{x+6/3}", "bad_expression", None),
        (P136, "\\boxed{6**1/3}", "bad_expression", None),
        (P136, "\\boxed{6^1/3}", "bad_expression", None),
        (P136, "\\boxed{6/(3-3*1)}", "bad_expression", None),
        (P136, "\\boxed{6/3*1=2}", "bad_expression", None),
        (P136, "\\boxed{-1+6/3+1}", "bad_expression", None),
        (P136, "\\boxed{6/3*1.0}", "bad_expression", None),
        (P136, "\\boxed{6(3-1)}", "bad_expression", None),
        (P136, "\\boxed{(6/3*1}", "bad_expression", None),
        (P136, "\\boxed{6/3*1)}", "bad_expression", None),
        (P136, "\\boxed{6/3*²}", "bad_expression", None),
        (P136, "\\boxed{{6/3}*1}", "bad_expression", "{6/3}*1"),
        (P136, "\\boxed{6/3/1*6}", "wrong_numbers", None),  # 6 used twice, 1 kept
        (P136, "\\boxed{6/3}", "wrong_numbers", None),  # 1 missing
        (P136, "\\boxed{12/6*1}", "wrong_numbers", None),
        (P136, "\\boxed{6+3-1}", "wrong_value", "6+3-1"),
        (P136, "\\boxed{1/3/6}", "wrong_value", None),
        (P136, "\\boxed{6+3-1} no wait \\boxed{6/3*1}", "ok", "6/3*1"),
        (P136, "\\boxed{6/3*1} no wait \\boxed{6+3-1}", "wrong_value", "6+3-1"),
    ],
)
def test_verify_reasons(
    problem: Problem, response: str, reason: str, extracted: str | None
) -> None:
    verdict = verify(problem, response)
    assert verdict.reason == reason
    assert verdict.correct is (reason == "ok")
    if extracted is not None:
        assert verdict.extracted == extracted
    if reason == "no_answer":
        assert verdict.extracted is None and not verdict.has_answer


def test_evaluate_exact() -> None:
    assert cd.evaluate("(1/3)*6") == (Fraction(2), (1, 3, 6))
    assert cd.evaluate("1/3") == (Fraction(1, 3), (1, 3))
    assert cd.evaluate("2-3-4") == (Fraction(-5), (2, 3, 4))  # left-associative
    assert cd.evaluate("2*(3+4)") == (Fraction(14), (2, 3, 4))
    with pytest.raises(cd.ExpressionError):
        cd.evaluate("(" * 40 + "1" + ")" * 40)  # deeper than MAX_DEPTH
    assert cd.evaluate("(" * 30 + "1" + ")" * 30)[0] == 1


def test_verify_not_a_string() -> None:
    assert verify(P136, None).reason == "no_answer"  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# Hostile input
# --------------------------------------------------------------------------------------------

HOSTILE = {
    "1MB of junk then a box": "x" * 1_000_000 + "\\boxed{6/3*1}",
    "1MB box": "\\boxed{" + "1+" * 500_000 + "1}",
    "1MB unclosed box": "\\boxed{" + "1+" * 500_000,
    "10k nested parens": "\\boxed{" + "(" * 10_000 + "6" + ")" * 10_000 + "}",
    "tower of powers": "\\boxed{10^10^10}",
    "python power": "\\boxed{9**9**9**9}",
    "python code": "\\boxed{__import__('os').system('ls')}",
    "5000-digit literal": "\\boxed{" + "9" * 5000 + "}",
    "huge product": "\\boxed{" + "*".join(["999999999"] * 20) + "}",
    "unbalanced open braces": "\\boxed{{{{" * 100_000,
    "deep brace nesting": "\\boxed{" + "{" * 300_000 + "}" * 300_000 + "}",
    "many boxes": "\\boxed{1}" * 200_000,
    "stray closers": "}" * 500_000 + "\\boxed{6/3*1}" + "}" * 500_000,
    "non-ascii junk": "\\boxed{\u00e9\u4e2d\x00\ud800\U0001f600}",
    "arabic digits": "\\boxed{\u0666/\u0663*\u0661}",
    "nul bytes": "\x00" * 100_000,
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_input_is_fast_and_safe(name: str) -> None:
    start = time.monotonic()
    verdict = verify(P136, HOSTILE[name])
    assert time.monotonic() - start < 1.0
    assert isinstance(verdict, Verdict) and verdict.reason in REASONS
    assert not (verdict.correct and name not in ("1MB of junk then a box", "stray closers"))


def test_verify_works_off_the_main_thread() -> None:
    out: list[Verdict] = []
    thread = threading.Thread(target=lambda: out.append(verify(P136, "\\boxed{6/3*1}")))
    thread.start()
    thread.join(5)
    assert out == [Verdict(True, "6/3*1", "ok")]


def test_timeout_reason() -> None:
    assert verify(P136, "\\boxed{6/3*1}", timeout_s=-1.0).reason == "timeout"
    with pytest.raises(TimeoutError):
        cd.evaluate("1+2", timeout_s=-1.0)


# --------------------------------------------------------------------------------------------
# Properties
# --------------------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(2, 6), seed=st.integers(0, 2**32))
def test_reference_solution_always_verifies(n: int, seed: int) -> None:
    (p,) = generate(n, 1, seed=seed)
    assert verify(p, solution_text(p)).correct
    assert verify(p, f"\\boxed{{{p.expression}}}").correct


@settings(max_examples=300, deadline=None)
@given(text=st.text())
def test_verify_never_raises_on_random_text(text: str) -> None:
    for response in (text, f"\\boxed{{{text}}}", f"\\boxed{{6/3*1{text}"):
        verdict = verify(P136, response)
        assert isinstance(verdict, Verdict) and verdict.reason in REASONS


@settings(max_examples=200, deadline=None)
@given(
    text=st.text(alphabet="0123456789+-*/() {}^x.\\", max_size=60),
)
def test_verify_never_raises_on_expression_like_text(text: str) -> None:
    verdict = verify(P136, f"\\boxed{{{text}}}")
    assert verdict.reason in REASONS


def test_times_one_can_be_switched_on():
    with_one = cd.generate(3, 300, seed=4, allow_times_one=True)
    without = cd.generate(3, 300, seed=4)
    assert any(op == "*" and b == 1 for p in with_one for _, op, b, _ in p.steps)
    assert not any(op == "*" and b == 1 for p in without for _, op, b, _ in p.steps)
    assert len(cd.all_problems(3)) < len(cd.all_problems(3, allow_times_one=True))


# --------------------------------------------------------------------------------------------
# Step verifier
# --------------------------------------------------------------------------------------------

STEP_REASONS = (
    "ok", "no_answer", "no_steps", "bad_step", "wrong_value", "unused_numbers", "wrong_box",
    "timeout",
)
BOX = "\\boxed{(6+3)*(5-2)}"


@pytest.mark.parametrize(
    ("response", "reason", "line", "detail"),
    [
        (f"6+3=9\n5-2=3\n9*3=27\n{BOX}", "ok", None, ""),
        (f"6 + 3 = 9\n\n  5−2=3\r\n9×3=27\n{BOX}", "ok", None, ""),  # spaces, aliases, blanks
        (f"6+3=9\n5-2=3\n9*3=27 {BOX}", "ok", None, ""),  # the box on the last step's line
        (f"27=9*3\n9=6+3\n3=5-2\n{BOX}", "ok", None, ""),  # goal first
        (f"27=9*3\n3=5-2\n9=3+6\n{BOX}", "ok", None, ""),  # sub-goals in any order
        (f"6+3=9 [2 5 9]\n5-2=3 [3 9]\n9*3=27 [27]\n{BOX}", "ok", None, ""),  # pool lists
        (f"6+3=9 [9,5,2]\n5-2=3\n9*3=27\n{BOX}", "ok", None, ""),  # any order, list optional
        (f"6/3=2\n5*2=10\n10+6=16\n{BOX}", "bad_step", 3, "6 is not available (2 10 are)"),
        (f"6+3=9\n5-2=4\n9*3=27\n{BOX}", "bad_step", 2, "5-2 is 3, not 4"),
        (f"6+3=9\n5/2=2\n{BOX}", "bad_step", 2, "5/2 is 5/2, not 2"),  # inexact division
        (f"6+3=9\n6-2=4\n{BOX}", "bad_step", 2, "6 is not available (2 5 9 are)"),
        (f"6+3=9\n9*9=81\n{BOX}", "bad_step", 2, "9 is not available (2 5 9 are)"),
        (f"6+3=9\nso 5-2=3\n{BOX}", "bad_step", 2, "not a step 'a op b=c'"),
        (f"6+3=9\n5-2=3\n9*3=27\n9*3=27\n{BOX}", "bad_step", 4, None),  # one step too many
        (f"6+3=9\n3=5-2\n{BOX}", "bad_step", 2, "mixes goal-first and forward lines"),
        (f"6+3=9 [2 5]\n{BOX}", "bad_step", 1, "the numbers left are 2 5 9, not 2 5"),
        (f"6/0=0\n{BOX}", "bad_step", 1, None),  # not available, whatever else
        (f"27=9*3\n9=6+3\n9=5+4\n{BOX}", "bad_step", 3, "9 is not an open goal (open: 3 3 6)"),
        (f"27=30-3\n{BOX}", "bad_step", 1, "30 is neither given nor made by a later line"),
        (f"26=9*3-1\n{BOX}", "bad_step", 1, "not a step 'a op b=c'"),
        (f"18=9*2\n9=6+3\n{BOX}", "wrong_value", 1, "the first line makes 18, not the target"),
        (f"6+3=9\n5-2=3\n9+3=12\n{BOX}", "wrong_value", 3,
         "the last line makes 12, not the target"),
        (f"6*5=30\n30-3=27\n{BOX}", "unused_numbers", None, "2 never used"),
        (f"27=30-3\n30=6*5\n{BOX}", "unused_numbers", None, "2 never used"),
        ("6+3=9\n5-2=3\n9*3=27\n\\boxed{6*5-3}", "wrong_box", None, "box check: wrong_numbers"),
        ("6+3=9\n5-2=3\n9*3=27\n\\boxed{6+3+5-2}", "wrong_box", None, None),
        (BOX, "no_steps", None, None),
        ("\n \n" + BOX, "no_steps", None, None),
        ("6+3=9\n5-2=3\n9*3=27\n", "no_answer", None, ""),
        ("6+3=9\n5-2=3\n9*3=27\n\\boxed{(6+3)*(5-2)", "no_answer", None, ""),
    ],
)
def test_verify_steps_reasons(response: str, reason: str, line: int | None, detail: str | None):
    verdict = cd.verify_steps(P2356, response)
    assert (verdict.reason, verdict.line) == (reason, line), verdict
    assert verdict.correct is (reason == "ok")
    if detail is not None:
        assert verdict.detail == detail
    if reason == "ok":  # correct by its steps implies correct by its box
        assert verify(P2356, response).correct


def test_steps_mode_is_stricter_than_box_mode():
    wrong_line = f"6+3=9\n5-2=4\n9*3=27\n{BOX}"
    assert verify(P2356, wrong_line).correct  # the box alone is right
    assert not cd.verify_steps(P2356, wrong_line).correct
    assert cd.verifier("box") is verify and cd.verifier() is verify
    assert cd.verifier("steps") is cd.verify_steps
    with pytest.raises(ValueError, match="'lines'.*box.*steps"):
        cd.verifier("lines")


@pytest.mark.parametrize("style", cd.SOLUTION_STYLES)
@pytest.mark.parametrize("n", [2, 3, 4, 5, 6])
def test_every_reference_solution_verifies_by_its_steps(style: str, n: int) -> None:
    problems = cd.all_problems(n) if n <= 3 else generate(n, 300, seed=n)
    for p in problems:
        text = solution_text(p, style)
        verdict = cd.verify_steps(p, text)
        assert verdict == cd.StepVerdict(True, p.expression, "ok"), (text, verdict)


def test_pool_style_lists_the_numbers_left() -> None:
    p = Problem("x", (2, 3, 5, 6), 27, ((6, "+", 3, 9), (5, "-", 2, 3), (9, "*", 3, 27)),
                "(6+3)*(5-2)")
    assert solution_text(p, "pool") == (
        "6+3=9 [2 5 9]\n5-2=3 [3 9]\n9*3=27 [27]\n\\boxed{(6+3)*(5-2)}"
    )


@settings(max_examples=100, deadline=None)
@given(n=st.integers(2, 6), seed=st.integers(0, 2**32), style=st.sampled_from(["forward",
       "backward", "pool"]), pick=st.integers(0, 10), delta=st.integers(1, 50))
def test_a_wrong_result_is_the_first_bad_line(n, seed, style, pick, delta) -> None:
    (p,) = generate(n, 1, seed=seed)
    lines = solution_text(p, style).split("\n")
    k = pick % (len(lines) - 1)
    a_op_b, c = (lines[k].split("=")[::-1] if style == "backward"
                 else lines[k].split(" ")[0].split("="))
    lines[k] = (f"{int(c) + delta}={a_op_b}" if style == "backward"
                else f"{a_op_b}={int(c) + delta}")
    verdict = cd.verify_steps(p, "\n".join(lines))
    assert (verdict.reason, verdict.line) in {("bad_step", k + 1), ("wrong_value", k + 1)}


STEP_HOSTILE = {
    **HOSTILE,
    "1M newlines then a box": "\n" * 1_000_000 + BOX,
    "1MB line then a box": "6+3=9" * 200_000 + "\n" + BOX,
    "many valid-looking steps": "6+3=9\n" * 100_000 + BOX,
    "huge literals": "\n".join(["9" * 9 + "*" + "9" * 9 + "=" + "9" * 9] * 1000) + BOX,
    "pool list junk": "6+3=9 [" + "1 " * 100_000 + "]\n" + BOX,
}


@pytest.mark.parametrize("name", list(STEP_HOSTILE))
def test_step_verifier_hostile_input_is_fast_and_safe(name: str) -> None:
    start = time.monotonic()
    verdict = cd.verify_steps(P2356, STEP_HOSTILE[name])
    assert time.monotonic() - start < 1.0
    assert isinstance(verdict, cd.StepVerdict) and verdict.reason in STEP_REASONS
    assert not verdict.correct


def test_step_verifier_timeout_and_non_strings() -> None:
    assert cd.verify_steps(P2356, f"6+3=9\n{BOX}", timeout_s=-1.0).reason == "timeout"
    assert cd.verify_steps(P2356, None).reason == "no_answer"  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None)
@given(text=st.text())
def test_verify_steps_never_raises_on_random_text(text: str) -> None:
    for response in (text, f"{text}\n{BOX}", f"6+3=9\n{text}\n{BOX}"):
        verdict = cd.verify_steps(P2356, response)
        assert isinstance(verdict, cd.StepVerdict) and verdict.reason in STEP_REASONS


@settings(max_examples=300, deadline=None)
@given(text=st.text(alphabet="0123456789+-*/= [],\n", max_size=80))
def test_verify_steps_on_step_like_text(text: str) -> None:
    """Never raises; a response it accepts is accepted by the box check too."""
    verdict = cd.verify_steps(P2356, text + BOX)
    assert verdict.reason in STEP_REASONS
    if verdict.correct:
        assert verify(P2356, text + BOX).correct
