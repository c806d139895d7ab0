r"""String-level half of the math grader behind :func:`dslib.verify.check`
(docs/paper-notes.md#evaluation).

Everything here is plain Python on strings: no sympy, nothing is evaluated. It turns a boxed answer
and a gold answer into a :class:`Norm` (canonical LaTeX plus the side information a human grader
reads: unit, percent sign, base-n subscript, multiple-choice letter, word answer) and decides the
cases that need no computer algebra (numbers, words, letters, identical strings). What is left is
handed to :mod:`dslib._grading_sympy` in a worker process.

TeX semantics decide how an answer is read: an unbraced argument is ONE token, so ``\sqrt13`` is
``\sqrt{1}3``, ``\frac123`` is ``\frac{1}{2}3`` and ``2^10`` is ``2^{1}0`` (what a reader of the
rendered answer sees). ``4.4e7`` is scientific notation (Minerva's golds use it), never ``4.4·e·7``.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from fractions import Fraction

#: the longest boxed answer looked at; longer ones are ``unparseable`` (the longest gold is 210).
MAX_ANSWER_CHARS = 1000
#: the longest gold answer looked at; longer ones are ``bad_gold`` (DeepMath's longest is 305).
MAX_GOLD_CHARS = 1000
#: deepest bracket nesting accepted (the parser is exponential in redundant nesting).
MAX_DEPTH = 12
#: largest number of decimal digits a numeric value may reach (``10^{100000}`` is the limit).
MAX_DIGITS = 100_000
#: largest integer exponent of a symbolic base (``x^{1000}``); expansion beyond it is unbounded.
MAX_SYMBOLIC_EXPONENT = 1000
#: largest argument of ``!`` / ``\binom`` / ``\Gamma`` that is evaluated.
MAX_FACTORIAL = 10_000

_BOX_RE = re.compile(r"\\(?:boxed|fbox)\s*\{")
#: control characters (tab, newline and carriage return are whitespace, not controls): an answer
#: holding one is unreadable, never a match with the character dropped (``1\x002`` is not ``12``)
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


@functools.lru_cache(maxsize=64)
def _bracket_pairs(s: str, open_: str, close: str) -> dict[int, int]:
    """Every opening bracket of ``s`` -> its closing one, in one pass (``\\{`` does not count)."""
    pairs: dict[int, int] = {}
    stack: list[int] = []
    i, n = 0, len(s)
    while i < n:
        c = s[i]
        if c == "\\":  # a control symbol such as \{ or \\ is one token, not a brace
            i += 2
            continue
        if c == open_:
            stack.append(i)
        elif c == close and stack:
            pairs[stack.pop()] = i
        i += 1
    return pairs


def match_brace(s: str, i: int, open_: str = "{", close: str = "}") -> int:
    """Index of the bracket closing the one at ``s[i]``, -1 if unclosed; ``\\{`` does not count.

    The pairs of ``s`` are found once and cached, so many unclosed brackets cost linear time.
    """
    return _bracket_pairs(s, open_, close).get(i, -1)


def last_boxed(text: str) -> str | None:
    r"""Content of the last COMPLETE ``\boxed{...}``/``\fbox{...}``; None if there is none.

    The protocol (docs/paper-notes.md#evaluation): an unclosed box (a truncated answer) does not
    count, several boxes are never merged, and nothing outside a box is ever read as the answer. One
    pass over the text, so a response full of unclosed boxes costs linear time.
    """
    starts = [m.end() - 1 for m in _BOX_RE.finditer(text)]
    if not starts:
        return None
    closing: dict[int, int] = {}
    stack: list[int] = []
    i, n = starts[0], len(text)
    while i < n:
        c = text[i]
        if c == "\\":
            i += 2
            continue
        if c == "{":
            stack.append(i)
        elif c == "}" and stack:
            closing[stack.pop()] = i
        i += 1
    for start in reversed(starts):
        if start in closing:
            return text[start + 1 : closing[start]]
    return None


# ---------------------------------------------------------------------------------------------
# Small TeX helpers


def _read_group(s: str, i: int) -> tuple[str, int] | None:
    """``{...}`` at ``s[i]`` (after spaces): (content, index after it)."""
    while i < len(s) and s[i] == " ":
        i += 1
    if i >= len(s) or s[i] != "{":
        return None
    j = match_brace(s, i)
    if j < 0:
        return None
    return s[i + 1 : j], j + 1


def _map_command_groups(s: str, names: tuple[str, ...], fn: Callable[[str], str]) -> str:
    r"""Replace every top-level ``\name{content}`` by ``fn(content)``."""
    pattern = re.compile(r"\\(?:" + "|".join(names) + r")(?![A-Za-z])\s*(?=\{)")
    out = []
    pos = 0
    for m in pattern.finditer(s):
        if m.start() < pos:
            continue
        group = _read_group(s, m.end())
        if group is None:
            continue
        content, after = group
        out.append(s[pos : m.start()])
        out.append(fn(content))
        pos = after
    out.append(s[pos:])
    return "".join(out)


def _unwrap_command(s: str, names: tuple[str, ...], keep: str = "{}") -> str:
    r"""Replace ``\name{X}`` by ``X`` (``keep="{}"`` keeps the braces: ``{X}``)."""
    return _map_command_groups(s, names, (lambda c: "{" + c + "}") if keep == "{}" else str)


def _replace_text_groups(s: str, fn: Callable[[str], str]) -> str:
    r"""Apply ``fn(content) -> str`` to every top-level ``\text{content}``."""
    return _map_command_groups(s, ("text",), fn)


_ARG_COMMANDS = {"frac": 2, "binom": 2, "sqrt": 1}
_CS_RE = re.compile(r"\\([A-Za-z]+|.)", re.S)


def _one_token(s: str, i: int, memo: dict) -> tuple[str, int] | None:
    """One TeX argument at ``s[i]`` (spaces skipped): braced content or a single token.

    ``memo`` holds the answer per position: a command whose arguments run out (``\\frac\\frac...``)
    is re-read as a bare token, and without it each level would re-read the rest (2^n).
    """
    if i not in memo:
        memo[i] = _read_token(s, i, memo)
    return memo[i]


def _read_token(s: str, i: int, memo: dict) -> tuple[str, int] | None:
    n = len(s)
    while i < n and s[i] == " ":
        i += 1
    if i >= n:
        return None
    if s[i] == "{":
        j = match_brace(s, i)
        if j < 0:
            return None
        return brace_arguments(s[i + 1 : j]), j + 1
    if s[i] == "\\":
        m = _CS_RE.match(s, i)
        if m is None:
            raise ValueError("a lone backslash at the end of the answer")
        name = m.group(1)
        if name in _ARG_COMMANDS:  # ^\frac12: the command with its own arguments
            sub = _command_with_args(s, m.end(), name, memo)
            if sub is not None:
                return sub
        return m.group(0), m.end()
    if s[i] in "}^_":
        return None
    return s[i], i + 1


def _command_with_args(s: str, i: int, name: str, memo: dict) -> tuple[str, int] | None:
    parts = ["\\" + name]
    if name == "sqrt":
        j = i
        while j < len(s) and s[j] == " ":
            j += 1
        if j < len(s) and s[j] == "[":
            k = match_brace(s, j, "[", "]")
            if k > 0:
                parts.append("[" + brace_arguments(s[j + 1 : k]) + "]")
                i = k + 1
    for _ in range(_ARG_COMMANDS[name]):
        arg = _one_token(s, i, memo)
        if arg is None:
            return None
        parts.append("{" + arg[0] + "}")
        i = arg[1]
    return "".join(parts), i


def brace_arguments(s: str) -> str:
    r"""Brace every argument of ``\frac``/``\binom``/``\sqrt``/``^``/``_`` the way TeX reads it.

    An unbraced argument is one token: ``\frac123`` -> ``\frac{1}{2}3``, ``\sqrt13`` ->
    ``\sqrt{1}3``, ``x^12`` -> ``x^{1}2``, ``\frac\pi2`` -> ``\frac{\pi}{2}``. Time is linear in
    the length times the nesting depth.
    """
    memo: dict[int, tuple[str, int] | None] = {}
    out = []
    i = 0
    n = len(s)
    while i < n:
        c = s[i]
        if c == "\\":
            m = _CS_RE.match(s, i)
            if m is None:
                raise ValueError("a lone backslash at the end of the answer")
            name = m.group(1)
            if name in _ARG_COMMANDS:
                sub = _command_with_args(s, m.end(), name, memo)
                if sub is not None:
                    out.append(sub[0])
                    i = sub[1]
                    continue
            out.append(m.group(0))
            i = m.end()
        elif c in "^_":
            arg = _one_token(s, i + 1, memo)
            if arg is None:
                out.append(c)
                i += 1
            else:
                out.append(c + "{" + arg[0] + "}")
                i = arg[1]
        else:
            out.append(c)
            i += 1
    return "".join(out)


def max_depth(s: str) -> int:
    """Deepest nesting of ``{}``, ``()`` and ``[]`` (escaped braces count too)."""
    depth = best = 0
    for c in s:
        if c in "{([":
            depth += 1
            best = max(best, depth)
        elif c in "})]":
            depth -= 1
    return best


def collapse_redundant_parens(s: str) -> str:
    """``((x))`` -> ``(x)`` and ``{{x}}`` -> ``{x}`` (ANTLR is exponential in redundant nesting)."""
    for _ in range(50):
        new = re.sub(r"\(\s*\(([^()]*)\)\s*\)", r"(\1)", s)
        new = re.sub(r"(?<![\\A-Za-z_^])\{\s*\{([^{}]*)\}\s*\}", r"{\1}", new)
        if new == s:
            return s
        s = new
    return s


# ---------------------------------------------------------------------------------------------
# Normalisation

_UNICODE = [
    ("\u2212", "-"), ("\u2013", "-"), ("\u2014", "-"), ("\u00d7", "\\times "),
    ("\u22c5", "\\cdot "), ("\u00b7", "\\cdot "), ("\u00f7", "\\div "), ("\u221e", "\\infty "),
    ("\u00b0", "^{\\circ}"), ("\u03c0", "\\pi "), ("\u221a", "\\sqrt"), ("\u2264", "\\le "),
    ("\u2265", "\\ge "), ("\u2260", "\\ne "), ("\u222a", "\\cup "), ("\u2229", "\\cap "),
    ("\u2208", "\\in "), ("\u2205", "\\emptyset "), ("\u00bd", "\\frac{1}{2}"),
    ("\u00bc", "\\frac{1}{4}"), ("\u00be", "\\frac{3}{4}"), ("\u2032", "'"), ("\u00a0", " "),
    ("\u2009", " "), ("\u202f", " "), ("\uff0c", ","),
]
_SPACING = re.compile(
    r"\\(?:quad|qquad|enspace|thinspace|medspace|thickspace|hfill|displaystyle|textstyle|"
    r"scriptstyle|limits|nolimits)(?![A-Za-z])|\\[,;:> ]|~"
)
_SIZING = re.compile(r"\\(?:left|right|[bB]igg?[lrm]?|middle)(?![A-Za-z])\s*(\.)?")
_TEXT_ALIASES = ("mbox", "textrm", "textnormal", "textbf", "textit", "textsf", "texttt", "mathrm",
                 "textup", "emph")
_MATH_FONTS = ("mathbf", "mathit", "boldsymbol", "bm", "mathsf", "mathtt", "pmb", "bold")
_WORD_OR = re.compile(r"(?<![A-Za-z\\])(?:or|and)(?![A-Za-z])", re.IGNORECASE)
_THOUSANDS = re.compile(r"^-?\d{1,3}(?:,\d{3})+(?:\.\d+)?$")
_E_NOTATION = re.compile(r"(?<![\w.\\}])(\d+(?:\.\d*)?|\.\d+)[eE]([+-]?\d+)(?![\w.])")
_REPEATING = re.compile(
    r"(?<![\d.])(\d*)\.(\d*)\s*\\(?:overline|bar|dot)\s*\{(\d+)\}|(?<![\d.])(\d*)\.(\d*)\\dot\s*(\d)"
)
_ORDINAL = re.compile(r"(?<=\d)\s*(?:\^\s*\{?\s*(?:\\text\s*)?\{?\s*(?:st|nd|rd|th)\s*\}?\s*\}?"
                      r"|(?:st|nd|rd|th)(?![A-Za-z]))")
_DEGREE = re.compile(
    r"\^\s*\{?\s*\\circ\s*\}?|\^\s*\{\s*\\circ\s*\}|\\circ(?![A-Za-z])|\\degree(?![A-Za-z])"
    r"|\^\s*\{?\s*\\text\s*\{\s*o\s*\}\s*\}?"
)
_PERCENT = re.compile(r"\\?%|\\text\s*\{\s*\\?%\s*\}|\\percent(?![A-Za-z])")
_ASSIGN = re.compile(
    r"^\s*(?:[A-Za-z]|\\(?!sum|prod|int|lim|oint)[A-Za-z]+)(?:_\{[A-Za-z0-9]+\}|_[A-Za-z0-9])?"
    r"(?:\([A-Za-z]\))?\s*=(?!=)\s*"
)
_IN_PREFIX = re.compile(r"^\s*[A-Za-z]\s*\\in\s*")

# Units, canonical name of each spelling (plural forms are reduced before the look-up).
_UNITS = {
    "mm": "mm", "millimeter": "mm", "millimetre": "mm", "cm": "cm", "centimeter": "cm",
    "centimetre": "cm", "m": "m", "meter": "m", "metre": "m", "km": "km", "kilometer": "km",
    "kilometre": "km", "in": "in", "inch": "in", "inche": "in", "ft": "ft", "foot": "ft",
    "feet": "ft", "yd": "yd", "yard": "yd", "mi": "mi", "mile": "mi", "s": "s", "sec": "s",
    "second": "s", "min": "min", "minute": "min", "h": "h", "hr": "h", "hour": "h", "day": "day",
    "week": "week", "month": "month", "yr": "year", "year": "year", "deg": "deg", "degree": "deg",
    "dollar": "$", "cent": "cent", "g": "g", "gram": "g", "kg": "kg", "kilogram": "kg",
    "lb": "lb", "pound": "lb", "oz": "oz", "ounce": "oz", "l": "l", "liter": "l", "litre": "l",
    "ml": "ml", "milliliter": "ml", "gal": "gal", "gallon": "gal", "mph": "mph", "km/h": "km/h",
    "kmh": "km/h", "kph": "km/h", "m/s": "m/s", "rad": "rad", "radian": "rad", "j": "J",
    "joule": "J", "n": "N", "newton": "N", "w": "W", "watt": "W", "k": "K", "kelvin": "K",
    "ev": "eV", "hz": "Hz", "pa": "Pa", "v": "V", "volt": "V",
}
#: unit words stripped even when they are written bare (no \text): multi-letter, unambiguous.
_BARE_UNITS = sorted(
    {
        "cm", "mm", "km", "meters", "meter", "metres", "metre", "inches", "inch", "feet", "foot",
        "ft", "yards", "yard", "miles", "mile", "mph", "kph", "km/h", "hours", "hour", "hrs", "hr",
        "minutes", "minute", "mins", "min", "seconds", "second", "secs", "sec", "days", "day",
        "weeks", "week", "months", "month", "years", "year", "dollars", "dollar", "cents", "cent",
        "degrees", "degree", "deg", "units", "unit", "grams", "gram", "kg", "pounds", "pound",
        "lbs", "lb", "ounces", "oz", "liters", "liter", "litres", "litre", "ml", "gallons",
        "gallon", "people", "students", "ways", "points", "percent", "square units", "sq units",
    },
    key=len,
    reverse=True,
)
_BARE_UNIT_RE = re.compile(
    r"(?<=[\d}).\s])\s*(?:(?:square|sq\.?|cubic|cu\.?)\s*)?(?:"
    + "|".join(re.escape(u) for u in _BARE_UNITS)
    + r")(?:\s*\^\s*\{?\s*[23]\s*\}?)?\s*$"
)
# plain words after a number ("5 apples"): a unit a human reads past; never TeX commands
_TRAILING_WORDS = re.compile(r"(?<=[\d})])\s+((?:(?<![\\A-Za-z])[A-Za-z]{3,}\s*){1,3})$")
_MATH_WORDS = {"sin", "cos", "tan", "cot", "sec", "csc", "log", "exp", "arcsin", "arccos",
               "arctan", "sinh", "cosh", "tanh", "max", "min", "mod", "gcd", "lcm", "det"}
_UNIT_TEXT = re.compile(r"^[A-Za-z][A-Za-z .\-/]*(?:\^\s*\{?\s*[23]\s*\}?)?$")
_KNOWN_WORDS = {"yes", "no", "true", "false", "none", "even", "odd", "neither", "both", "never",
                "always", "impossible", "undefined", "infinite", "finite"}
_WORD_VALUES = {"infinity": r"\infty", "inf": r"\infty", "zero": "0", "one": "1", "two": "2",
                "three": "3", "four": "4", "five": "5", "six": "6", "seven": "7", "eight": "8",
                "nine": "9", "ten": "10"}


def canonical_unit(text: str) -> str | None:
    """Base unit of a unit text (``"square inches"`` -> ``"in"``), None when unknown.

    The power is dropped on purpose: ``864 inches`` for ``864 in^2`` is a sloppy unit, not a wrong
    number, while ``5 m`` for ``5 cm`` is a different quantity.
    """
    t = text.lower().replace("\\", "").replace("{", "").replace("}", "").replace(".", " ")
    t = re.sub(r"\^\s*[23]|squared|cubed", " ", t)
    t = re.sub(r"^\s*(?:square|sq|cubic|cu)\s+", "", t)
    t = re.sub(r"\s+", " ", t).strip()
    if not t:
        return None
    for cand in (t, t[:-1] if t.endswith("s") else t, t[:-2] if t.endswith("es") else t):
        if cand in _UNITS:
            return _UNITS[cand]
    return None


@dataclass(frozen=True)
class Norm:
    """A normalised answer: canonical LaTeX plus what a human grader reads beside the value."""

    latex: str
    unit: str | None = None  # canonical base unit, "?..." for unknown unit text
    percent: bool = False
    word: str | None = None  # a word answer ("yes", "evelyn"), lower case
    letters: tuple[str, ...] | None = None  # multiple-choice letters
    base: tuple[str, int] | None = None  # (digits, base) of a base-n numeral like 1011_2
    alt: str | None = None  # second reading of an ambiguous answer ("1,000" as a number)

    @property
    def key(self) -> str:
        """The latex without spaces, for string comparisons (see :func:`squeeze`)."""
        return squeeze(self.latex)


_LOOSE_SPACE = re.compile(r"(?<!\d)\s+|\s+(?!\d)")
_SPLIT_DIGITS = re.compile(r"\d\s+\d")


def squeeze(s: str) -> str:
    """``s`` without spaces, except one between two digits: ``1 2`` is not the number 12."""
    return _LOOSE_SPACE.sub("", s)


def _repeating_to_fraction(m: re.Match) -> str:
    if m.group(3) is not None:
        whole, fixed, rep = m.group(1), m.group(2), m.group(3)
    else:
        whole, fixed, rep = m.group(4), m.group(5), m.group(6)
    k, r = len(fixed), len(rep)
    value = Fraction(int(whole) if whole else 0) + Fraction(int(fixed) if fixed else 0, 10**k)
    value += Fraction(int(rep), (10**r - 1) * 10**k)
    return f"\\frac{{{value.numerator}}}{{{value.denominator}}}"


def _unit_of_text(content: str) -> str | None:
    """Canonical unit when a ``\\text{}`` content reads as a unit, else None."""
    c = content.strip()
    if not c or not _UNIT_TEXT.match(c) or _WORD_OR.search(c):
        return None
    unit = canonical_unit(c)
    if unit is not None:
        return unit
    words = c.lower().split()
    if len(words) <= 3 and not any(w in _KNOWN_WORDS for w in words):
        return "?" + " ".join(words)
    return None


def _strip_trailing_unit(s: str) -> tuple[str, str | None]:
    r"""Remove one unit at the end of an answer (``5 \text{ cm}^2``, ``5 cm``)."""
    m = re.search(r"\\text\s*\{([^{}]*)\}\s*(\^\s*\{?\s*[23]\s*\}?)?\s*$", s)
    if m:
        before = s[: m.start()].rstrip()
        unit = _unit_of_text(m.group(1))
        if unit is not None and re.search(r"[\d}).]$|\\infty$|\\pi$", before):
            return before, unit
    m = _BARE_UNIT_RE.search(s)
    if m and s[: m.start()].strip():
        word = m.group(0).strip()
        return s[: m.start()].rstrip(), canonical_unit(word) or "?" + word.lower()
    m = _TRAILING_WORDS.search(s)
    if m and not _MATH_WORDS.intersection(m.group(1).lower().split()):
        word = m.group(1).strip()
        return s[: m.start()].rstrip(), canonical_unit(word) or "?" + word.lower()
    return s, None


def _clean_word(s: str) -> str:
    """Lower-case words of an answer with TeX wrappers, quotes and end punctuation removed."""
    s = _unwrap_command(s, ("text",), keep="")
    s = s.replace("\\", " ").replace("{", " ").replace("}", " ")
    s = re.sub(r"\s+", " ", s).strip().strip(" .,;:!\"'`*").strip()
    s = s.lower()
    return re.sub(r"^(?:a|an|the)\s+", "", s)


_WORD_RE = re.compile(r"^[a-z][a-z '\-]*[a-z]$")
_LETTER_RE = re.compile(r"^\(?\s*([A-Z])\s*\)?$")
_LETTERS_RE = re.compile(r"^\(?[A-Z]\)?(?:\s*,\s*(?:and\s+)?\(?[A-Z]\)?)+$")
_BASE_RE = re.compile(r"^([0-9A-Za-z]+)_\{?\(?(\d{1,2})\)?\}?$")


def _base_numeral(s: str) -> tuple[str, int] | None:
    m = _BASE_RE.match(s)
    if not m or not any(c.isdigit() for c in m.group(1)):
        return None
    digits, base = m.group(1).upper(), int(m.group(2))
    if not 2 <= base <= 36:
        return None
    try:
        int(digits, base)
    except ValueError:
        return None
    return digits.lstrip("0") or "0", base


def pred_letters(p: Norm) -> tuple[str, ...] | None:
    r"""Multiple-choice letters in an answer: ``C``, ``(C)``, ``\text{(C) } 12``, ``A, C``."""
    s = re.sub(r"\\text\s*\{([^{}]*)\}", r"\1", p.latex).strip()
    if _LETTERS_RE.match(s):
        return tuple(sorted(set(re.findall(r"[A-Z]", s))))
    m = re.match(r"^\(\s*([A-Za-z])\s*\)|^([A-Za-z])\s*(?:$|[.:)]|\s+\S)", s)
    if m:
        return ((m.group(1) or m.group(2)).upper(),)
    return None


def _is_separator(text: str) -> bool:
    """``\\text{ or }``, ``\\text{and}``, ``\\text{, }`` separate list items."""
    t = text.replace(",", " ").strip().lower()
    return t in {"or", "and"} or (t == "" and "," in text)


def normalise(raw: str, *, is_gold: bool = False) -> Norm:
    """Canonical form of one answer (the gold, or the content of the last box).

    Order matters: units, percent and degree signs are read off before the text wrappers go, and
    TeX arguments are braced last so that ``\\sqrt13`` keeps its TeX reading. A control character
    raises ``ValueError``: it is never dropped into a match. Every step is linear in the length
    (times the nesting depth for the TeX arguments).
    """
    if CONTROL.search(raw):
        raise ValueError("a control character in the answer")
    s = raw.strip()
    if re.search(r"(?<!\\)(?:\\\\)*\\$", s):
        s = s[:-1]  # "12\ " stripped to "12\": the space of a control space went, so does "\"
    for a, b in _UNICODE:
        s = s.replace(a, b)
    s = s.replace("\\\\", "\x00")  # a row break is not "\ " + "\"
    s = re.sub(r"\s+", " ", s)  # one space per run keeps every pattern below linear
    money = "\\$" in s
    s = s.replace("\\$", " ").replace("$", " ")
    s = re.sub(r"^\s*\\[(\[]|\\[)\]]\s*$", " ", s)
    s = _unwrap_command(s, ("boxed", "fbox"), keep="")
    s = _SIZING.sub("", s)
    # thousands separators before the spacing commands they are written with
    s = s.replace("{,}", ",")
    s = re.sub(r",\\!\s*", ",", s)
    for _ in range(4):
        s = re.sub(r"(\d)\\,(\d{3})(?!\d)", r"\1\2", s)
    s = s.replace("\\!", "")
    s = _SPACING.sub(" ", s)
    s = re.sub(r"\\(?:" + "|".join(_TEXT_ALIASES) + r")(?![A-Za-z])\s*(?=\{)", r"\\text", s)
    s = _unwrap_command(s, _MATH_FONTS, keep="{}")
    s = re.sub(r"\\[dtc]frac(?![A-Za-z])", r"\\frac", s)
    s = re.sub(r"\\[dt]binom(?![A-Za-z])", r"\\binom", s)
    s = re.sub(r"\\(?:leqslant|leq|le)(?![A-Za-z])", r"\\le ", s)
    s = re.sub(r"\\(?:geqslant|geq|ge)(?![A-Za-z])", r"\\ge ", s)
    s = re.sub(r"\\(?:neq|ne)(?![A-Za-z])", r"\\ne ", s)
    s = re.sub(r"\\lt(?![A-Za-z])", "<", s)
    s = re.sub(r"\\gt(?![A-Za-z])", ">", s)
    s = re.sub(r"\\(?:infin|infinity)(?![A-Za-z])", r"\\infty ", s)
    s = re.sub(r"\\varnothing(?![A-Za-z])", r"\\emptyset ", s)
    s = s.replace("\\lbrace", "\\{").replace("\\rbrace", "\\}")
    s = re.sub(r"\\(?:lor|vee)(?![A-Za-z])", ",", s)
    # percent, degrees, ordinals: read and drop
    percent = bool(_PERCENT.search(s)) or bool(re.search(r"\\text\s*\{\s*percent\s*\}", s))
    s = _PERCENT.sub(" ", s)
    s = re.sub(r"\\text\s*\{\s*(?:percent|percentage)\s*\}", " ", s)
    if re.search(r"(?<![A-Za-z])percent(?:age)?\s*$", s):
        percent = True
        s = re.sub(r"(?<![A-Za-z])percent(?:age)?\s*$", " ", s)
    degree = bool(_DEGREE.search(s))
    s = _DEGREE.sub(" ", s)
    s = _ORDINAL.sub("", s)
    # "or"/"and" written in text are list separators (a hedge when the gold is one value)
    s = _replace_text_groups(s, lambda c: "," if _is_separator(c) else f"\\text{{{c}}}")
    s = _WORD_OR.sub(",", s)
    s = re.sub(r",\s*,", ",", s)
    unit = None
    s, unit = _strip_trailing_unit(s.strip())
    if unit is None and degree:
        unit = "deg"
    if unit is None and money:
        unit = "$"
    if unit == "%":
        percent, unit = True, None
    s = re.sub(r"^\s*\\text\s*\{[^{}]*(?:\bis|:|=)\s*\}\s*(?=\S)", "", s)  # "The answer is"
    was_text = bool(re.fullmatch(r"\s*\\text\s*\{.*\}\s*", s, flags=re.S))
    word = _clean_word(s)
    s = _unwrap_command(s, ("text",), keep="")
    if unit is None and was_text:
        s, unit = _strip_trailing_unit(s.strip())
    s = re.sub(r"[\s.,;:]+$", "", s).strip()
    s = re.sub(r"^[\s,;:]+", "", s)
    s = _IN_PREFIX.sub("", s)
    s = re.sub(r"\s+", " ", s).strip()
    # scientific notation and repeating decimals become exact TeX
    s = _REPEATING.sub(_repeating_to_fraction, s)
    s = _E_NOTATION.sub(r"\1\\times 10^{\2}", s)
    s = re.sub(r"(\d)\.(?![\d.])", r"\1", s)  # "12." and "-1./3": a trailing point adds nothing
    s = brace_arguments(s)
    s = collapse_redundant_parens(s)
    s = re.sub(r"\s+", " ", s).strip().replace("\x00", "\\\\")
    key = squeeze(s)
    alt = None
    if _THOUSANDS.match(s):
        number = key.replace(",", "")
        if is_gold:
            s = number
        else:
            alt = number
    letters = None
    if is_gold:
        m = re.fullmatch(r"\(?\s*([A-Z])\s*\)?", key)
        if m and (was_text or "(" in key or len(key) == 1):
            letters = (m.group(1),)
        elif _LETTERS_RE.match(s) and (was_text or "(" in key):
            letters = tuple(sorted(set(re.findall(r"[A-Z]", s))))
    if word in _WORD_VALUES:
        s, word = _WORD_VALUES[word], ""
    if not _WORD_RE.match(word) or (is_gold and not was_text and word not in _KNOWN_WORDS):
        word = None  # a bare gold "ab" is a product; a prediction is read as a word when it can be
    return Norm(
        latex=s,
        unit=unit,
        percent=percent,
        word=word,
        letters=letters,
        base=_base_numeral(key),
        alt=alt,
    )


# ---------------------------------------------------------------------------------------------
# Numbers

_INT = r"[+-]?\d+"
_DEC = r"[+-]?(?:\d+\.\d*|\.\d+|\d+)"
_NUM_PATTERNS = [
    (re.compile(rf"^({_DEC})$"), lambda m: Fraction(m.group(1))),
    (re.compile(rf"^({_INT})/({_INT})$"), lambda m: Fraction(int(m.group(1)), int(m.group(2)))),
    (
        re.compile(rf"^([+-]?)\\frac\{{({_DEC})\}}\{{({_DEC})\}}$"),
        lambda m: (-1 if m.group(1) == "-" else 1) * Fraction(m.group(2)) / Fraction(m.group(3)),
    ),
    (  # mixed number 2\frac{1}{2}: only with a positive proper-looking fraction, as in MATH
        re.compile(r"^([+-]?)(\d+)\s*\\frac\{(\d+)\}\{(\d+)\}$"),
        lambda m: (-1 if m.group(1) == "-" else 1)
        * (int(m.group(2)) + Fraction(int(m.group(3)), int(m.group(4)))),
    ),
    (
        re.compile(rf"^({_DEC})\s*(?:\\times|\\cdot|\*)\s*10\s*\^\s*\{{({_INT})\}}$"),
        lambda m: Fraction(m.group(1)) * _power_of_ten(m.group(2)),
    ),
    (re.compile(rf"^10\s*\^\s*\{{({_INT})\}}$"), lambda m: _power_of_ten(m.group(1))),
]


def _power_of_ten(exponent: str) -> Fraction:
    e = int(exponent)
    if abs(e) > MAX_DIGITS:
        raise ValueError("exponent too large")  # left to the sympy stage and its screen
    return Fraction(10) ** e


def number(s: str | None) -> Fraction | None:
    """Exact value of a plain number in TeX (integer, decimal, fraction, mixed, scientific)."""
    if s is None:
        return None
    s = s.strip()
    if len(s) > 400:
        return None
    for pattern, build in _NUM_PATTERNS:
        m = pattern.match(s)
        if m:
            try:
                return build(m)
            except (ValueError, ZeroDivisionError):
                return None
    return None


def split_top_level(s: str, seps: str = ",;") -> list[str]:
    """Split at separators that are outside every bracket."""
    parts, depth, cur, i = [], 0, [], 0
    while i < len(s):
        c = s[i]
        if c == "\\" and i + 1 < len(s):
            cur.append(s[i : i + 2])
            if s[i + 1] in "{}":
                depth += 1 if s[i + 1] == "{" else -1
            i += 2
            continue
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        if c in seps and depth == 0:
            parts.append("".join(cur).strip())
            cur = []
        else:
            cur.append(c)
        i += 1
    parts.append("".join(cur).strip())
    return parts


def number_lists(s: str) -> list[list[Fraction]]:
    r"""Readings of ``s`` as a bare list of plain numbers (``1, 3, 5`` or ``\{1, 3, 5\}``).

    ``6,764, 10,945`` has two readings; the one split at ", " holds thousands separators.
    """
    t = s.strip()
    m = re.fullmatch(r"\\\{(.*)\\\}", t)
    if m:
        t = m.group(1)
    readings = []
    for parts in (split_top_level(t), re.split(r",\s+", t) if ", " in t else []):
        if len(parts) < 2:
            continue
        values = [number(p) for p in parts]
        if all(v is not None for v in values):
            readings.append(values)
            continue
        values = [number(p.replace(",", "")) if _THOUSANDS.match(p) else None for p in parts]
        if all(v is not None for v in values):
            readings.append(values)
    return readings  # type: ignore[return-value]


def number_tuples(s: str) -> list[tuple[Fraction, ...]] | None:
    """``(1,8,19), (2,7,13)``: tuples of plain numbers in parentheses, None otherwise."""
    items = split_top_level(s.strip(), ",")
    out = []
    for item in items:
        m = re.fullmatch(r"\((.*)\)", item.strip())
        if not m:
            return None
        values = [number(x) for x in split_top_level(m.group(1), ",")]
        if len(values) < 2 or any(v is None for v in values):
            return None
        out.append(tuple(values))
    return out  # type: ignore[return-value]


def decide(g: Norm, p: Norm) -> bool | None:
    """Verdict without computer algebra: True/False, or None to ask sympy."""
    # units: a different known unit is a different quantity (5 m is not 5 cm)
    if (
        g.unit and p.unit and not g.unit.startswith("?") and not p.unit.startswith("?")
        and g.unit != p.unit
    ):
        return False
    if g.letters is not None:
        return pred_letters(p) == tuple(sorted(g.letters))
    if g.word is not None:
        return p.word == g.word
    if p.word is not None and p.word in _KNOWN_WORDS:
        return False  # "YES" is an answer word, never the product Y*E*S
    if g.base is not None:
        if p.base is not None:
            return p.base == g.base
        return (p.key.upper().lstrip("0") or "0") == g.base[0]
    if g.key and g.key == p.key:
        return True
    if _SPLIT_DIGITS.search(g.key) or _SPLIT_DIGITS.search(p.key):
        return False  # "1 2": digits set apart are neither the number 12 nor a list
    gv = number(g.latex)
    if p.base is not None and gv is not None:
        return Fraction(int(p.base[0], p.base[1])) == gv or p.base[0] == g.key
    preds = [v for v in (number(p.latex), number(p.alt)) if v is not None]
    if gv is not None and preds:
        if p.percent and not g.percent:
            preds += [v / 100 for v in preds]
        return gv in preds
    g_tuples = number_tuples(g.latex)
    if g_tuples is not None:
        p_tuples = number_tuples(p.latex)
        if p_tuples is not None:  # one tuple is ordered; a list of tuples is unordered
            return Counter(g_tuples) == Counter(p_tuples)
    g_lists = number_lists(g.latex)
    p_lists = number_lists(p.latex)
    if g_lists and p_lists:
        return any(Counter(a) == Counter(b) for a in g_lists for b in p_lists)
    if gv is not None and p_lists:
        return False  # a list for a single value: a hedge
    if g_lists and preds:
        return False  # one value where several were asked for
    return None


def hostile(s: str) -> bool:
    """Inputs that are refused before any parser sees them (length, nesting, huge evaluation)."""
    if len(s) > MAX_ANSWER_CHARS or max_depth(s) > MAX_DEPTH:
        return True
    if re.search(r"\^\s*\{[^{}]*\}\s*\^|\^\s*\{[^{}]*\}\s*_\s*\{[^{}]*\}\s*\^", s):
        return True  # a double superscript is a TeX error, and the classic power tower
    for m in re.finditer(r"(\d+)\s*!", s):
        if int(m.group(1)) > MAX_FACTORIAL if len(m.group(1)) < 12 else True:
            return True
    for m in re.finditer(r"\\binom(?![A-Za-z])", s):  # sympy evaluates binomials while parsing
        i = m.end()
        for _ in range(2):
            group = _read_group(s, i)
            if group is None:
                break
            if re.search(r"[\^!]|\d{7,}", group[0]):
                return True
            i = group[1]
    return bool(re.search(r"\\(?:Gamma|gamma|operatorname)\s*[({]\s*[^)}]*\d{5,}", s))


def variants(g: Norm, p: Norm) -> tuple[list[str], list[str]]:
    """LaTeX forms for the sympy stage: gold forms and prediction forms (any pair may match)."""
    golds = [g.latex]
    preds = [p.latex] + ([p.alt] if p.alt else [])
    if p.percent and not g.percent:
        preds.append(f"\\frac{{{p.latex}}}{{100}}")
    if "=" not in g.latex and "\\approx" in p.latex:
        left, _, right = p.latex.partition("\\approx")
        preds.append(right.strip() if _ASSIGN.match(left + "=") else left.strip())
    return golds, [x for x in preds if x]


def assignment_rhs(s: str) -> str:
    """``x = 5`` -> ``5`` (the last part of a chain ``x = 2+3 = 5``)."""
    while _ASSIGN.match(s):
        s = _ASSIGN.sub("", s, count=1)
    return s


def with_assignment_dropped(g: Norm, p: Norm) -> Norm:
    """The prediction without a leading ``x =`` (gold no equation) or ``(C)`` (gold no letter).

    Each element of a list loses its own ``x =``: ``x=1, x=2`` answers ``1, 2``.
    """
    if g.letters is None:
        m = re.match(r"^\(\s*[A-E]\s*\)\s*(\S.*)$", p.latex)
        if m:
            p = replace(p, latex=m.group(1))
    if "=" in g.latex or "=" not in p.latex:
        return p
    items = []
    for item in split_top_level(p.latex, ","):
        rhs = assignment_rhs(item)
        if rhs != item:
            rhs = split_top_level(rhs, "=")[-1].strip()  # x = 2 + 3 = 5 -> 5
        items.append(rhs)
    latex = ", ".join(items)
    return p if latex == p.latex else replace(p, latex=latex, alt=None)
