r"""Computer-algebra half of the math grader (docs/paper-notes.md#evaluation); runs inside a worker
process.

Answers arrive as canonical LaTeX from :mod:`dslib._grading`. They are parsed with
latex2sympy2_extended (an ANTLR grammar that builds sympy objects with ``evaluate=False``), never
with ``eval``/``exec``/``sympify``/``parse_expr`` of a string, so nothing in an answer is executed.
After parsing, decimals become exact rationals (``0.333`` is not ``1/3``), ``i`` becomes the
imaginary unit where the answer is complex, column vectors become tuples, and the tree is screened
for values too large to evaluate (``10^{10^{10}}``, ``(10^6)!``). The comparison is
``math_verify.grader.verify`` with a 60-digit numeric check, so only exact equality passes.

Time is bounded twice: a ``setitimer`` alarm inside the worker interrupts Python-level work at the
deadline (the worker's main thread owns the signal), and the parent kills the worker if even that
does not come back (work stuck in C, such as a huge integer power). Run as a script it serves one
JSON request per line on stdin/stdout.
"""

from __future__ import annotations

import json
import logging
import math
import re
import signal
import sys
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager

import math_verify.grader as _mv_grader
import sympy
from latex2sympy2_extended import latex2sympy2 as _l2s
from math_verify.grader import should_treat_as_complex
from math_verify.grader import verify as mv_verify

from dslib._grading import MAX_DIGITS, MAX_FACTORIAL, MAX_SYMBOLIC_EXPONENT

logging.getLogger("math_verify").setLevel(logging.CRITICAL)
logging.getLogger("latex2sympy2_extended").setLevel(logging.CRITICAL)

#: sympy's numeric check in math_verify evaluates the difference to this many digits.
NUMERIC_DIGITS = 60


class Deadline(BaseException):
    """Raised by the alarm; a BaseException, so math_verify's ``except Exception`` lets it by."""


class TooBig(ValueError):
    """A parsed answer whose evaluation would not finish (a huge power or factorial)."""


@contextmanager
def deadline(seconds: float | None) -> Iterator[None]:
    """Interrupt the block after ``seconds`` (main thread only; elsewhere it is not bounded)."""
    if (
        seconds is None
        or not hasattr(signal, "setitimer")
        or threading.current_thread() is not threading.main_thread()
    ):
        yield
        return

    def on_alarm(signum, frame):  # noqa: ARG001
        raise Deadline()

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, max(seconds, 1e-3))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# ---------------------------------------------------------------------------------------------
# Size screen: an upper bound of log10|x| without evaluating x


def _log10_bound(e, depth: int = 0) -> float:
    if depth > 60:
        return math.inf
    if e.is_Integer or e.is_Rational:  # log10(2) per bit: an upper bound of log10 |p| and |q|
        return max(abs(int(e.p)).bit_length(), int(e.q).bit_length()) * 0.30103
    if e.is_Float or e.is_NumberSymbol or e.is_Symbol or e is sympy.I or e.is_infinite:
        return 1.0
    args = getattr(e, "args", ())
    if isinstance(e, sympy.Pow):
        base, exp = args
        lb, le = _log10_bound(base, depth + 1), _log10_bound(exp, depth + 1)
        if base in (sympy.S.Zero, sympy.S.One, sympy.S.NegativeOne):
            return 1.0
        if le > 8:
            return math.inf
        return 10**le * max(lb, 0.5)
    if isinstance(e, sympy.exp):
        le = _log10_bound(args[0], depth + 1)
        return math.inf if le > 8 else 10**le
    if isinstance(e, (sympy.factorial, sympy.gamma, sympy.factorial2)):
        ln = _log10_bound(args[0], depth + 1)
        return math.inf if ln > 6 else 10**ln * (ln + 1)
    if isinstance(e, sympy.Mul):
        return sum(_log10_bound(a, depth + 1) for a in args)
    if not args:
        return 1.0
    return max(_log10_bound(a, depth + 1) for a in args) + math.log10(len(args) + 1)


def screen(expr) -> None:
    """Raise :class:`TooBig` if evaluating ``expr`` could not finish quickly."""
    nodes = sympy.preorder_traversal(expr) if isinstance(expr, sympy.Basic) else ()
    for count, node in enumerate(nodes):
        if count > 20_000:
            raise TooBig("expression too large")
        if isinstance(node, sympy.Pow):
            base, exp = node.args
            if exp.free_symbols:
                continue
            if base.free_symbols:
                if _log10_bound(exp) > math.log10(MAX_SYMBOLIC_EXPONENT) + 1:
                    raise TooBig("symbolic power with a huge exponent")
            elif _log10_bound(node) > MAX_DIGITS:
                raise TooBig("number too large")
        elif isinstance(node, (sympy.factorial, sympy.factorial2, sympy.gamma)):
            arg = node.args[0]
            if arg.is_Integer:
                if arg > MAX_FACTORIAL:
                    raise TooBig("factorial too large")
            elif not arg.free_symbols and _log10_bound(arg) > math.log10(MAX_FACTORIAL) + 1:
                raise TooBig("factorial too large")
        elif isinstance(node, (sympy.Sum, sympy.Product)):
            for limit in node.limits:
                for bound in limit[1:]:
                    if not bound.free_symbols and _log10_bound(bound) > 5:
                        raise TooBig("sum or product too long")


# ---------------------------------------------------------------------------------------------
# Parsing

_NUMBER_TOKEN = re.compile(r"(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d{1,6}))?")


def _number(text: str):
    """A lexer NUMBER token as a sympy number, built without ``sympify`` (which would ``eval``).

    latex2sympy calls ``sympy.Number(text)``, i.e. ``sympify(text)``; the token is only digits,
    commas and a point, but nothing in this module may reach ``eval``, so the conversion is
    replaced. Decimals keep every digit (``_exact`` later makes them exact rationals).
    """
    t = text.replace(",", "").replace(" ", "")
    m = _NUMBER_TOKEN.fullmatch(t)
    if not m or not (m.group(1) or m.group(2)):
        raise ValueError(f"not a number token: {text!r}")
    if m.group(2) is None and m.group(3) is None:
        return sympy.Integer(int(m.group(1)))
    digits = len(m.group(1)) + len(m.group(2) or "")
    return sympy.Float(t if m.group(1) else "0" + t, max(15, digits + 2))


class _Parser(_l2s._Latex2Sympy):
    """latex2sympy's converter with number tokens built by :func:`_number` (no ``sympify``)."""

    def parse_number(self, text):
        return _number(text)

    def parse(self, latex_str):
        if _l2s.comma_number_regex.match(latex_str):  # "1,000": upstream goes through sympify
            return _number(latex_str)
        return super().parse(latex_str)


def _exact(expr, complex_: bool):
    """Decimals -> exact rationals, ``i`` -> I (complex answers), vectors -> tuples."""
    if isinstance(expr, sympy.MatrixBase):
        if expr.rows == 1 or expr.cols == 1:
            return sympy.Tuple(*[_exact(x, complex_) for x in expr])
        return sympy.ImmutableMatrix(expr.applyfunc(lambda x: _exact(x, complex_)))
    if not isinstance(expr, sympy.Basic):
        raise TypeError(f"unsupported parse result {type(expr).__name__}")
    floats = expr.atoms(sympy.Float)
    if floats:
        # str() prints the decimal digits the Float was built from; Rational(str) is exact
        expr = expr.xreplace({f: sympy.Rational(str(f)) for f in floats})
    if complex_:
        expr = expr.xreplace({s: sympy.I for s in expr.free_symbols if s.name == "i"})
    if any(isinstance(a, sympy.MatrixBase) for a in getattr(expr, "args", ())):
        expr = expr.func(*[_exact(a, complex_) for a in expr.args])
    return expr


_E_SUBSCRIPT = re.compile(r"(?<![\\A-Za-z])([eE])(?=\s*_)")
_IMAGINARY = re.compile(r"(?<![A-Za-z\\])i(?![A-Za-z])")  # "2i": math_verify wants a \b before i


def parse(latex: str):
    """sympy object for canonical LaTeX; raises on anything it cannot read or must not evaluate."""
    # the grammar reserves e/E (Euler's number, exponents), so E_{1} would not parse
    latex = _E_SUBSCRIPT.sub(r"\\text{\1}", latex)
    complex_ = should_treat_as_complex(latex) or bool(_IMAGINARY.search(latex))
    expr = _Parser(None, is_real=not complex_, convert_degrees=False).parse(latex)
    if isinstance(expr, list):
        raise TypeError("a derivative operator is not an answer")
    screen(expr)
    expr = _exact(expr, complex_)
    screen(expr)
    return expr


def _symbol_equal(a, b) -> bool:
    """math_verify compares a lone symbol by its printed name only (``m`` vs ``m + 0``)."""
    if not (isinstance(a, sympy.Symbol) or isinstance(b, sympy.Symbol)):
        return False
    if not (isinstance(a, sympy.Expr) and isinstance(b, sympy.Expr)):
        return False
    try:
        return sympy.simplify(a - b) == 0
    except Exception:
        return False


def numeric_equal(a, b, float_rounding: int = 6, numeric_precision: int = NUMERIC_DIGITS) -> bool:
    """Exact-or-60-digit numeric equality; replaces ``math_verify.grader.sympy_numeric_eq``.

    math_verify evaluates ``(a - b).evalf(chop=True)``, and chopping makes every tiny difference
    zero: ``1/2004!`` equalled ``1/2006!`` (huggingface/Math-Verify#14). Here rationals compare
    exactly and anything else must agree to ``numeric_precision - 15`` significant digits
    relative to its size. ``float_rounding`` is unused: no Float survives :func:`_exact`.
    """
    if isinstance(a, sympy.MatrixBase) or isinstance(b, sympy.MatrixBase):
        if not (isinstance(a, sympy.MatrixBase) and isinstance(b, sympy.MatrixBase)):
            return False
        return a.shape == b.shape and all(
            numeric_equal(x, y, float_rounding, numeric_precision)
            for x, y in zip(a, b, strict=True)
        )
    try:
        a1, b1 = _mv_grader.safe_sympy_doit(a), _mv_grader.safe_sympy_doit(b)
        if not (isinstance(a1, sympy.Expr) and isinstance(b1, sympy.Expr)):
            return False
        if a1.is_Rational and b1.is_Rational:
            return bool(a1 == b1)
        if a1.free_symbols or b1.free_symbols:
            return bool((a1 - b1).evalf(numeric_precision) == 0)
        if a1 == b1:
            return True
        diff = (a1 - b1).evalf(numeric_precision)
        if not diff.is_number or diff.is_finite is not True:
            return False  # oo - (-oo), zoo, nan: infinities are equal only structurally
        if diff == 0:
            return True
        scale = max(abs(a1.evalf(15)), abs(b1.evalf(15)))
        if scale.is_finite is not True:
            return False
        return bool(abs(diff) <= scale * sympy.Float(10) ** (15 - numeric_precision))
    except Exception:
        return False


def install() -> None:
    """Make math_verify's comparator use :func:`numeric_equal` (a process-wide patch).

    ``sympy_expr_eq`` looks ``sympy_numeric_eq`` up in its module at call time. The worker
    processes exist for this grader alone; the in-process fallback patches the caller's process.
    """
    _mv_grader.sympy_numeric_eq = numeric_equal


_CACHE: OrderedDict[str, object] = OrderedDict()
_CACHE_SIZE = 4096
_FAILED = object()


def parse_cached(latex: str):
    """:func:`parse` with an LRU cache that also remembers failures (golds repeat 32 times)."""
    if latex in _CACHE:
        _CACHE.move_to_end(latex)
        value = _CACHE[latex]
    else:
        try:
            value = parse(latex)
        except Exception:
            value = _FAILED
        _CACHE[latex] = value
        if len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return None if value is _FAILED else value


def compare(golds: list[str], preds: list[str], timeout: float | None,
            gold_timeout: float | None) -> str:
    """``equal`` / ``different`` / ``unparseable`` / ``timeout`` for two lists of LaTeX forms."""
    install()
    try:
        with deadline(gold_timeout):
            gold_exprs = [e for e in (parse_cached(g) for g in golds) if e is not None]
        if not gold_exprs:
            return "unparseable_gold"
        with deadline(timeout):
            pred_exprs = [e for e in (parse_cached(p) for p in preds) if e is not None]
            if not pred_exprs:
                return "unparseable"
            same = mv_verify(
                gold_exprs,
                pred_exprs,
                numeric_precision=NUMERIC_DIGITS,
                strict=True,
                allow_set_relation_comp=True,
                timeout_seconds=None,
            ) or any(_symbol_equal(g, p) for g in gold_exprs for p in pred_exprs)
        return "equal" if same else "different"
    except Deadline:
        return "timeout"
    except Exception:  # a grader never raises; anything unexpected reads as unparseable
        return "unparseable"


#: answers of the common shapes, parsed once at start-up: ANTLR builds its prediction tables on
#: first sight of a construct (0.1-0.3 s each), which would otherwise eat the first checks' budget.
WARM_UP = [
    ("x^{2}-1", "(x-1)(x+1)"), ("\\frac{1}{2}", "\\sqrt{2}+1"), ("(1,2)", "[-2,7]"),
    ("(-\\infty, 0] \\cup \\{1\\}", "1, 2, 3"), ("y=2x+3", "x \\le 5"),
    ("\\begin{pmatrix} 1 & 0 \\\\ 0 & 1 \\end{pmatrix}", "\\sin x + \\log_{2} 8"),
    ("2^{n}-n-1", "\\frac{n(n+1)}{2}"), ("1+i", "e^{-2 t} \\cos (3 t)"),
]


def serve() -> None:
    """Worker loop: one JSON request per stdin line, one JSON reply per stdout line."""
    out = sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing printed by a library may corrupt the protocol
    for gold, pred in WARM_UP:
        compare([gold], [pred], None, None)
    _CACHE.clear()
    out.write(b'{"ready": true}\n')
    out.flush()
    for line in sys.stdin.buffer:
        try:
            req = json.loads(line)
            result = compare(req["golds"], req["preds"], req.get("timeout"),
                             req.get("gold_timeout"))
            reply = {"id": req.get("id"), "result": result}
        except Deadline:
            reply = {"id": None, "result": "timeout"}
        except Exception:
            reply = {"id": None, "result": "unparseable"}
        out.write(json.dumps(reply).encode() + b"\n")
        out.flush()


if __name__ == "__main__":
    serve()
