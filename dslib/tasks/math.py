r"""Math problems: DeepMath-103K (training) and the six evaluation benchmarks of the paper.

Everything here is text-level and light (no torch/transformers import): loaders turn rows into
:class:`MathProblem` records, :func:`prompt_text` appends the released run's instruction suffix,
:func:`prompted` renders the tokenizer's chat template, and :func:`verify` grades a response
with an injectable grader (default ``dslib.verify.check``, imported at call time).

Sources (docs/paper-notes.md#hyperparameters and #evaluation; ``shared/data/*/README.md`` describe
the local copies):

==================  ============================================================================
source              accepted forms
==================  ============================================================================
DeepMath-103K       the released parquet (``prompt`` = one user message ending with the suffix,
                    ``reward_model.ground_truth``, ``extra_info.{index,difficulty,topic}``);
                    the JSONL conversion (``id``, ``problem``, ``ground_truth``, ``difficulty``,
                    ``topic``); the Hugging Face dataset ``zwhe99/DeepMath-103K`` (``question``,
                    ``final_answer``, ``difficulty``, ``topic``; ids ``zwhe99--DeepMath-103K-<row>``
                    as in the released parquet)
benchmarks          ``<dir>/<name>.jsonl`` (the kit's conversion), ``<dir>/<name>/test.jsonl``
                    (Qwen2.5-Math's ``evaluation/data`` layout), parquet, or a dataset name
==================  ============================================================================

Gold answers per benchmark:

* **minerva_math**: the source rows have only a ``solution``; the gold is the content of its
  LAST ``\boxed{}`` (brace-matched, as the Qwen2.5-Math evaluator does), see
  :func:`last_boxed`. An ``answer`` field, when present, wins. Plain scientific notation
  (``4.4e7``, 58 of 272 golds) is rewritten ``4.4\times 10^{7}`` because math-verify reads
  ``4.4e7`` as 4.4*E*7 (Euler's number); the raw gold stays in ``meta["answer_raw"]``.
* **olympiadbench**: ``final_answer`` is a list of ``$...$`` strings; several answers inside one
  string are separated by ``$,$`` (or ``$, $``). :func:`olympiad_answers` splits them into
  :attr:`MathProblem.answers`, and for ``is_multiple_answer`` items also splits a single
  string at top-level commas (``1,3,5`` -> ``1``, ``3``, ``5``; ``(1,8,19), (2,7,13)`` -> two
  tuples). The gold handed to the grader is ``", ".join(answers)``: math-verify reads a
  top-level comma list as a SET (order irrelevant, as OlympiadBench's multi-answer items
  require), while a parenthesised tuple stays ORDERED (``(5,4,7) != (4,5,7)``). The ``unit``
  is kept in ``meta`` and not appended to the gold.
* **amc23**: numeric golds stored as floats (``27.0``) become integer strings (``27``).

Bad rows never crash a load and are never silently dropped: they are listed in
:attr:`MathSet.bad_rows` (line number, id when known, reason) and summarised in ONE
:class:`BadRowsWarning` per load. A row is bad when it is not JSON, not UTF-8 (decoded line by
line, so one bad byte costs one row), not an object, has a missing or non-string problem, a
duplicate id, or a gold the graders cannot take: missing or empty, a boolean, NaN or infinity, a
dict or list (only OlympiadBench's ``final_answer`` is a list, of strings), or anything
``dslib.verify.gold_fault`` refuses (over ``MAX_GOLD_CHARS`` characters, a control character,
too deeply nested). Integer and finite float golds are text (``27.0`` -> ``27``). A leading
UTF-8 byte-order mark is skipped. A file (or dataset) with no usable row at all raises
:class:`NoProblemsError` naming it and the first reasons.
"""

from __future__ import annotations

import json
import math
import os
import re
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dslib._grading import _BOX_RE
from dslib._grading import last_boxed as _grading_last_boxed
from dslib.tasks.base import Prompted, chat_prompt_ids
from dslib.verify import Verdict, gold_fault

#: The instruction appended to every question in the released run, leading space included
#: (docs/paper-notes.md#hyperparameters "Prompt template" and docs/paper-notes.md#evaluation
#: "Prompt"; ``shared/data/deepmath/README.md``).
INSTRUCTION_SUFFIX = " Let's think step by step and output the final answer within \\boxed{}."

#: Hugging Face name of the training data (docs/paper-notes.md#hyperparameters, "Data").
DEEPMATH_HF_NAME = "zwhe99/DeepMath-103K"

#: The six benchmarks in Table 1's column order, with the column header of Table 1
#: (docs/paper-notes.md#table-1).
BENCHMARKS: dict[str, str] = {
    "aime24": "AIME24",
    "aime25": "AIME25",
    "amc23": "AMC23",
    "math500": "MATH",
    "minerva_math": "Minerva",
    "olympiadbench": "Olympiad",
}
#: Other spellings accepted by :func:`benchmark_names`.
BENCHMARK_ALIASES: dict[str, str] = {
    "aime2024": "aime24", "aime2025": "aime25", "amc": "amc23", "amc2023": "amc23",
    "math": "math500", "math-500": "math500", "math_500": "math500", "minerva": "minerva_math",
    "olympiad": "olympiadbench", "olympiad_bench": "olympiadbench",
}
#: Standard sizes (``shared/data/benchmarks/README.md``); a smaller set is flagged as partial.
BENCHMARK_SIZES: dict[str, int] = {
    "aime24": 30, "aime25": 30, "amc23": 40, "math500": 500, "minerva_math": 272,
    "olympiadbench": 675,
}

#: Table 1 of the paper, Pass1@1 (avg@32) in percent, verbatim (docs/paper-notes.md#table-1,
#: [P4 Table 1] = [P1 Table 1]). Columns: AIME24, AIME25, AMC23, MATH, Minerva, Olympiad, Avg.
PAPER_TABLE1: tuple[tuple[str, tuple[float, ...]], ...] = (
    ("Qwen2.5-Math-1.5B", (8.33, 6.35, 44.06, 66.67, 18.42, 30.74, 29.10)),
    ("Qwen2.5-Math-1.5B-Instruct", (10.10, 8.85, 55.08, 74.83, 29.32, 40.00, 36.37)),
    ("DeepSeek-R1-Distill-Qwen-1.5B", (31.15, 24.06, 72.81, 85.01, 32.18, 51.55, 49.46)),
    ("STILL-3-1.5B", (31.46, 25.00, 75.08, 86.24, 32.77, 53.84, 50.73)),
    ("Qwen2.5-Math-1.5B-Oat-Zero", (20.00, 10.00, 52.50, 74.20, 26.84, 37.78, 36.89)),
    ("Open-RS1-1.5B", (30.94, 22.60, 73.05, 84.90, 29.92, 52.82, 49.04)),
    ("Open-RS2-1.5B", (28.96, 24.37, 73.52, 85.06, 29.74, 52.63, 49.05)),
    ("Open-RS3-1.5B", (30.94, 24.79, 72.50, 84.47, 29.11, 52.25, 49.01)),
    ("DeepScaleR-1.5B", (38.54, 30.52, 80.86, 88.79, 36.19, 58.95, 55.64)),
    ("Nemotron-Research-Reasoning-Qwen-1.5B v1", (45.62, 33.85, 85.70, 92.01, 39.27, 64.56, 60.17)),
    ("Nemotron-Research-Reasoning-Qwen-1.5B v2", (51.77, 32.92, 88.83, 92.24, 39.75, 64.69, 61.70)),
    ("DeepSearch-1.5B", (53.65, 35.42, 90.39, 92.53, 40.00, 65.72, 62.95)),
)
TABLE1_COLUMNS: tuple[str, ...] = (*BENCHMARKS.values(), "Avg")

Grader = Callable[[str, str], Verdict]
"""``grader(response_text, gold) -> Verdict`` (``dslib.verify.check`` has this shape)."""


class BadRowsWarning(UserWarning):
    """Some rows of a data file could not be turned into problems (see ``MathSet.bad_rows``)."""


class NoProblemsError(ValueError):
    """A file or dataset gave no usable problem: it is empty, or every row is bad."""


class RowError(ValueError):
    """A row that cannot become a problem; ``row_id`` names it in the bad-row report."""

    def __init__(self, reason: str, row_id: str | None = None) -> None:
        super().__init__(reason)
        self.row_id = row_id


@dataclass(frozen=True)
class MathProblem:
    """One math problem: what the task protocol (``tasks/base.py``) needs, plus its origin.

    ``answer`` is the gold string given to the grader; ``answers`` are its parts (several only
    for OlympiadBench multi-answer items); ``level`` is MATH's level or DeepMath's difficulty.
    """

    id: str
    problem: str
    answer: str
    source: str
    level: float | None = None
    answers: tuple[str, ...] = ()
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class BadRow:
    """A row that was skipped: 1-based line (JSONL) or row number, its id if known, why."""

    line: int
    id: str | None
    reason: str


@dataclass
class MathSet(Sequence[MathProblem]):
    """The problems of one file or dataset, plus the rows that could not be used."""

    name: str
    problems: list[MathProblem]
    bad_rows: list[BadRow] = field(default_factory=list)
    origin: str = ""

    def __len__(self) -> int:
        return len(self.problems)

    def __iter__(self) -> Iterator[MathProblem]:
        return iter(self.problems)

    def __getitem__(self, i: Any) -> Any:
        return self.problems[i]


# ----------------------------------------------------------------------------- answers


_BARE_BOX = re.compile(r"\\(?:boxed|fbox)\b(?!\s*\{)")


def last_boxed(text: str) -> str | None:
    r"""Content of the LAST ``\boxed{...}`` (or ``\fbox{...}``), stripped; None if absent.

    The braced form is :func:`dslib._grading.last_boxed` (the grader's rule: the last complete
    box, escaped braces skipped). Gold solutions also write ``\boxed 5`` (no braces): when the
    last box is of that form, the token after the space is the answer, as Qwen2.5-Math's
    extractor reads it.
    """
    bare = [m.end() for m in _BARE_BOX.finditer(text)]
    braced = [m.start() for m in _BOX_RE.finditer(text)]
    if bare and (not braced or bare[-1] > braced[-1]):
        token = text[bare[-1]:].strip().split("$")[0].split()
        return token[0] if token else None
    got = _grading_last_boxed(text)
    return got.strip() if got is not None else None


_SCI = re.compile(r"^\s*(-?\d+(?:\.\d+)?)[eE]([-+]?\d+)\s*$")


def sci_to_latex(answer: str) -> str:
    r"""``4.4e7`` -> ``4.4\times 10^{7}``; anything that is not plain e-notation is unchanged."""
    m = _SCI.match(answer)
    if not m:
        return answer
    return f"{m.group(1)}\\times 10^{{{int(m.group(2))}}}"


def split_top_level(text: str, sep: str = ",") -> list[str]:
    """Split at ``sep`` outside (), [], {} (so tuples and intervals stay whole)."""
    parts, depth, cur = [], 0, []
    for ch in text:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth = max(0, depth - 1)
        if ch == sep and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return [p.strip() for p in parts if p.strip()]


def olympiad_answers(final_answer: Sequence[str] | str, multiple: bool) -> tuple[str, ...]:
    r"""The separate gold answers of one OlympiadBench item (see the module docstring).

    ``['$69$,$84$']`` -> ``('69', '84')``; with ``multiple``, ``['1,3,5']`` -> ``('1','3','5')``
    and ``['$(1,8,19), (2,7,13)$']`` -> ``('(1,8,19)', '(2,7,13)')``.
    """
    items = [final_answer] if isinstance(final_answer, str) else list(final_answer)
    parts = [
        _unwrap(piece) for item in items for piece in re.split(r"\$\s*,\s*\$", str(item))
    ]
    parts = [p for p in parts if p]
    if multiple and len(parts) == 1:
        parts = [_unwrap(p) for p in split_top_level(parts[0])] or parts
    return tuple(p for p in parts if p)


def _unwrap(piece: str) -> str:
    """Drop outer ``$`` and a stray final period (``$221,$8$``, ``...\\{1\\}$.`` occur)."""
    return piece.strip().strip("$").strip().rstrip(".").strip().strip("$").strip()


def answer_string(value: Any) -> str:
    """A gold value as a string: integral floats lose their ``.0`` (AMC 2023 stores ``27.0``)."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (int, float)):
        return str(value)
    return str(value).strip()


def gold_text(value: Any, rid: str | None) -> str:
    """A gold value as the grader's text; :class:`RowError` (naming the row) when it cannot be one.

    Strings are stripped; integers and finite floats become text (``27.0`` -> ``27``); booleans,
    NaN, infinities, dicts, lists and other types are refused, as is any text that
    ``dslib.verify.gold_fault`` refuses (empty, too long, a control character, too deep).
    """
    if isinstance(value, bool):
        raise RowError(f"answer is a boolean ({str(value).lower()}); write it as a string such "
                       "as \"Yes\"", rid)
    if isinstance(value, float) and not math.isfinite(value):
        raise RowError(f"answer is not a finite number ({value})", rid)
    if not isinstance(value, (str, int, float)):
        raise RowError(f"answer is a {type(value).__name__} (expected a string or a number)", rid)
    text = answer_string(value)
    fault = gold_fault(text)
    if fault == "empty":
        raise RowError("empty answer", rid)
    if fault is not None:
        raise RowError(f"answer {fault}", rid)
    return text


def _problem_text(row: Mapping[str, Any], rid: str, *keys: str) -> str:
    """The question of a row (suffix removed); :class:`RowError` when missing or not a string."""
    text = _first(row, *keys)
    if text is None:
        text = _message_text(row.get("prompt"))
    if text is not None and not isinstance(text, str):
        raise RowError(f"problem is a {type(text).__name__} (expected a string)", rid)
    if text is None or not strip_suffix(text).strip():
        raise RowError("missing problem", rid)
    return strip_suffix(text).strip()


def strip_suffix(text: str) -> str:
    """The question without the instruction suffix (the released parquet bakes it in)."""
    if text.endswith(INSTRUCTION_SUFFIX):
        return text[: -len(INSTRUCTION_SUFFIX)]
    if text.endswith(INSTRUCTION_SUFFIX.strip()):
        return text[: -len(INSTRUCTION_SUFFIX.strip())].rstrip()
    return text


# ----------------------------------------------------------------------------- row -> problem


def _first(row: Mapping[str, Any], *keys: str) -> Any:
    """The first present, non-None value among ``keys`` (dotted keys look inside dicts)."""
    for key in keys:
        value: Any = row
        for part in key.split("."):
            value = value.get(part) if isinstance(value, Mapping) else None
        if value is not None:
            return value
    return None


def _message_text(prompt: Any) -> str | None:
    """The user text of a released-parquet ``prompt`` (a list of chat messages)."""
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, Sequence) and prompt:
        users = [m for m in prompt if isinstance(m, Mapping) and m.get("role") == "user"]
        if users and isinstance(users[-1].get("content"), str):
            return users[-1]["content"]
    return None


def _level(value: Any) -> float | None:
    try:
        return None if value is None or value == "" else float(value)
    except (TypeError, ValueError):
        return None


def deepmath_problem(row: Mapping[str, Any], index: int, source: str = "deepmath") -> MathProblem:
    """One DeepMath row (parquet, JSONL or HF schema) -> problem; :class:`RowError` if bad.

    ``index`` (0-based row) names rows without an id: ``zwhe99--DeepMath-103K-<index>``, the
    released parquet's ``extra_info.index`` convention (docs/paper-notes.md#filtering).
    """
    rid = _first(row, "id", "index", "extra_info.index")
    rid = str(rid) if rid is not None else f"zwhe99--DeepMath-103K-{index}"
    text = _problem_text(row, rid, "problem", "question")
    gold = _first(row, "ground_truth", "final_answer", "answer", "reward_model.ground_truth")
    if gold is None:
        raise RowError("missing answer", rid)
    answer = gold_text(gold, rid)
    meta = {
        k: v for k, v in (
            ("topic", _first(row, "topic", "extra_info.topic")),
            ("data_source", row.get("data_source")),
        ) if v is not None
    }
    return MathProblem(
        id=rid, problem=text, answer=answer, source=source,
        level=_level(_first(row, "difficulty", "extra_info.difficulty")),
        answers=(answer,), meta=meta,
    )


#: id prefixes of the kit's benchmark files (``minerva-0``, not ``minerva_math-0``).
_ID_PREFIX = {"minerva_math": "minerva"}


def benchmark_problem(row: Mapping[str, Any], index: int, bench: str) -> MathProblem:
    """One benchmark row -> problem (gold rules: module docstring); :class:`RowError` if bad."""
    rid = _first(row, "id", "unique_id", "idx")
    rid = str(rid) if rid is not None else str(index)
    prefix = _ID_PREFIX.get(bench, bench)
    if not rid.startswith(prefix):  # raw source ids are bare numbers: name them as the kit does
        rid = f"{prefix}-{rid}"
    text = _problem_text(row, rid, "problem", "question", "Problem", "raw_problem")
    meta: dict[str, Any] = {}
    gold = _first(row, "answer", "final_answer", "Answer", "ground_truth",
                  "reward_model.ground_truth")
    answers: tuple[str, ...] = ()
    if bench == "olympiadbench":
        listed = _first(row, "final_answer_list", "final_answer")
        if listed is not None:
            items = [listed] if isinstance(listed, str) else listed
            if not isinstance(items, list) or not all(isinstance(x, str) for x in items):
                raise RowError("final_answer must be a string or a list of strings, not "
                               + _kinds(items), rid)
            answers = olympiad_answers(items, bool(row.get("is_multiple_answer", False)))
        if answers:
            gold = ", ".join(answers)  # a top-level comma list: the grader reads a set
        for key in ("is_multiple_answer", "unit", "answer_type", "subfield"):
            if row.get(key) is not None:
                meta[key] = row[key]
    if bench == "minerva_math" and (gold is None or (isinstance(gold, str) and not gold.strip())):
        solution = row.get("solution")
        gold = last_boxed(solution) if isinstance(solution, str) else None
        if gold is None:
            raise RowError(
                "no \\boxed{} answer in solution" if solution else "missing answer", rid
            )
        meta["answer_from"] = "last \\boxed{} of solution"
    if gold is None:
        raise RowError("missing answer", rid)
    gold = gold_text(gold, rid)
    if bench == "minerva_math":
        meta["answer_raw"] = gold
        gold = sci_to_latex(gold)
    for key in ("subject", "type", "url"):
        if row.get(key) is not None:
            meta[key] = row[key]
    return MathProblem(
        id=rid, problem=strip_suffix(text).strip(), answer=gold, source=bench,
        level=_level(_first(row, "level", "difficulty")), answers=answers or (gold,), meta=meta,
    )


def _kinds(value: Any) -> str:
    """``a list holding dict, int`` / ``a dict``: what a wrong-typed field holds, for messages."""
    if isinstance(value, list):
        inner = sorted({type(x).__name__ for x in value if not isinstance(x, str)})
        return "a list holding " + ", ".join(inner)
    return f"a {type(value).__name__}"


# ----------------------------------------------------------------------------- reading rows


_UNDECODED = re.compile(r"[\udc80-\udcff]")  # what surrogateescape makes of a non-UTF-8 byte


def read_jsonl_rows(path: Path) -> Iterator[tuple[int, Any | None, str | None]]:
    """``(line number, parsed row or None, error or None)`` per non-blank line.

    UTF-8, a leading byte-order mark skipped. Each line is decoded on its own: a byte that is not
    UTF-8 makes that row bad (its id still reported when the rest of the line parses), never the
    whole file. Only opening the file can raise.
    """
    with open(path, encoding="utf-8-sig", errors="surrogateescape") as fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            bad_byte = _UNDECODED.search(line)
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                row, error = None, f"not JSON ({err.msg})"
            else:
                error = None
            if bad_byte is not None:
                byte = ord(bad_byte.group()) - 0xDC00
                error = (f"not UTF-8 (byte 0x{byte:02X} at character {bad_byte.start() + 1}); "
                         "re-save the file as UTF-8")
            yield n, row, error


def read_parquet_rows(path: Path) -> Iterator[tuple[int, Any | None, str | None]]:
    """Rows of a parquet file as dicts (1-based numbers); needs pyarrow (``datasets`` has it)."""
    try:
        import pyarrow.parquet as pq
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            f"reading {path} needs pyarrow: pip install pyarrow (or datasets)"
        ) from err
    try:
        table = pq.read_table(path)
    except Exception as err:  # pyarrow's messages do not name the file
        raise ValueError(f"{path}: not a readable parquet file ({err})") from err
    for n, row in enumerate(table.to_pylist(), start=1):
        yield n, row, None


def read_rows(path: str | Path) -> Iterator[tuple[int, Any | None, str | None]]:
    """Rows of a local ``.jsonl``/``.json`` (one object per line) or ``.parquet`` file."""
    path = Path(path)
    if path.suffix == ".parquet":
        return read_parquet_rows(path)
    if path.suffix in (".jsonl", ".json"):
        return read_jsonl_rows(path)
    raise ValueError(f"{path}: unsupported file type (use .jsonl or .parquet)")


def hf_rows(name: str, split: str = "train", **kwargs: Any) -> Iterator[tuple[int, Any, None]]:
    """Rows of a Hugging Face dataset (imports ``datasets`` lazily; may download)."""
    try:
        import datasets
    except ImportError as err:
        raise ImportError(
            f"loading the dataset {name!r} needs the `datasets` package: pip install datasets "
            "(or pass a local .jsonl/.parquet path)"
        ) from err
    try:
        ds = datasets.load_dataset(name, split=split, **kwargs)
    except Exception as err:
        raise RuntimeError(
            f"could not load the Hugging Face dataset {name!r} (split {split!r}): {err}. "
            "Offline? Pass a local .jsonl/.parquet path instead."
        ) from err
    for n, row in enumerate(ds, start=1):
        yield n, dict(row), None


def collect(
    rows: Iterable[tuple[int, Any | None, str | None]],
    convert: Callable[[Mapping[str, Any], int], MathProblem],
    name: str,
    origin: str,
    warn: bool = True,
) -> MathSet:
    """Turn rows into a :class:`MathSet`, recording (never raising on) bad rows."""
    problems: list[MathProblem] = []
    bad: list[BadRow] = []
    seen: set[str] = set()
    for line, row, error in rows:
        rid = str(row.get("id")) if isinstance(row, Mapping) and row.get("id") is not None else None
        if error is None and not isinstance(row, Mapping):
            error = f"not a JSON object ({type(row).__name__})"
        if error is None:
            try:
                p = convert(row, line - 1)
            except ValueError as err:
                error = str(err)
                rid = getattr(err, "row_id", None) or rid
            else:
                rid = p.id
                if p.id in seen:
                    error = "duplicate id"
                else:
                    seen.add(p.id)
                    problems.append(p)
        if error is not None:
            bad.append(BadRow(line, rid, error))
    if bad and warn:
        warn_bad_rows(origin, bad, len(problems))
    return MathSet(name, problems, bad, origin)


def require_problems(loaded: MathSet) -> MathSet:
    """``loaded`` itself, or :class:`NoProblemsError` when it holds no usable problem."""
    if loaded.problems:
        return loaded
    if not loaded.bad_rows:
        raise NoProblemsError(
            f"{loaded.origin}: no rows (empty, or only blank lines); expected one JSON object "
            "per line with a problem and its answer"
        )
    first = "; ".join(
        f"line {b.line}" + (f" ({b.id})" if b.id else "") + f": {b.reason}"
        for b in loaded.bad_rows[:3]
    )
    raise NoProblemsError(
        f"{loaded.origin}: every row is bad ({len(loaded.bad_rows)} row(s)), so there is no "
        f"problem to use; first: {first}. Fix those rows (the reasons say how)."
    )


def warn_bad_rows(origin: str, bad: Sequence[BadRow], kept: int) -> None:
    """ONE warning per load: counts per reason and the first few rows (line 0 = whole row)."""
    reasons = ", ".join(f"{r} x{c}" for r, c in Counter(b.reason for b in bad).most_common())
    first = "; ".join(f"line {b.line}" + (f" ({b.id})" if b.id else "") for b in bad[:5])
    warnings.warn(
        f"{origin}: skipped {len(bad)} bad row(s), kept {kept} ({reasons}); first: {first}. "
        "The full list is in .bad_rows.",
        BadRowsWarning, stacklevel=3,
    )


# ----------------------------------------------------------------------------- loaders


def _is_local(source: str | Path) -> bool:
    """A path (exists, has a data-file suffix, or starts like one), not a hub dataset name."""
    s = str(source)
    return (isinstance(source, Path) or Path(s).exists()
            or s.endswith((".jsonl", ".json", ".parquet")) or s.startswith((".", "/", "~")))


def load_deepmath(
    source: str | Path | Sequence[str | Path] = DEEPMATH_HF_NAME,
    split: str = "train",
    limit: int | None = None,
) -> MathSet:
    """DeepMath-103K problems from local file(s) or a Hugging Face dataset name
    (docs/paper-notes.md#hyperparameters "Data").

    A list of files is read in order (round 0 of the released run = ``train_0`` + ``train_25``);
    ``limit`` keeps the first problems. A local path that does not exist raises
    ``FileNotFoundError``; a file or dataset with no usable row raises :class:`NoProblemsError`;
    a dataset name needs ``datasets`` and the network (or its cache).
    """
    sources = [source] if isinstance(source, (str, Path)) else list(source)
    problems: list[MathProblem] = []
    bad: list[BadRow] = []
    seen: set[str] = set()
    for src in sources:
        if _is_local(src):
            path = Path(src)
            if not path.exists():
                raise FileNotFoundError(f"{path}: no such DeepMath file")
            part = collect(read_rows(path), deepmath_problem, "deepmath", str(path), warn=False)
        else:
            rows = hf_rows(str(src), split)
            part = collect(rows, deepmath_problem, "deepmath", str(src), warn=False)
        require_problems(part)
        bad += part.bad_rows
        for p in part.problems:
            if p.id in seen:  # line 0: the row is fine in its file, but an earlier file has it
                bad.append(BadRow(0, p.id, f"duplicate id (again in {part.origin})"))
                continue
            seen.add(p.id)
            problems.append(p)
    origin = ", ".join(str(s) for s in sources)
    if bad:
        warn_bad_rows(origin, bad, len(problems))
    return MathSet("deepmath", problems[:limit] if limit is not None else problems, bad, origin)


def benchmark_names(names: str | Iterable[str]) -> list[str]:
    """Canonical names from ``"all"``, a comma list or a list; unknown names: ``ValueError``."""
    items = names.split(",") if isinstance(names, str) else [n for x in names for n in x.split(",")]
    out: list[str] = []
    for raw in (x.strip().lower() for x in items):
        if not raw:
            continue
        chosen = list(BENCHMARKS) if raw == "all" else [BENCHMARK_ALIASES.get(raw, raw)]
        for name in chosen:
            if name not in BENCHMARKS:
                raise ValueError(
                    f"unknown benchmark {raw!r}; choose from {list(BENCHMARKS)} or all"
                )
            if name not in out:
                out.append(name)
    if not out:
        raise ValueError("no benchmark given")
    return out


def default_data_dir() -> Path | None:
    """``$DSLIB_BENCHMARKS``, else ``<repo>/../shared/data/benchmarks`` when it exists, else None.

    The kit never copies benchmark data into the repository; this default only finds the shared
    folder that sits next to a checkout.
    """
    env = os.environ.get("DSLIB_BENCHMARKS")
    if env:
        return Path(env)
    for base in (Path(__file__).resolve().parents[2].parent, Path.cwd().parent):
        cand = base / "shared" / "data" / "benchmarks"
        if cand.is_dir():
            return cand
    return None


def benchmark_file(name: str, data_dir: str | Path) -> Path:
    """The file holding benchmark ``name`` in ``data_dir`` (several layouts, see module doc)."""
    d = Path(data_dir)
    stems = [name] + [a for a, c in BENCHMARK_ALIASES.items() if c == name]
    for stem in stems:
        for cand in (d / f"{stem}.jsonl", d / f"{stem}.parquet", d / stem / "test.jsonl",
                     d / stem / "test.parquet"):
            if cand.exists():
                return cand
    raise FileNotFoundError(f"no file for benchmark {name!r} in {d} (looked for {name}.jsonl, "
                            f"{name}.parquet, {name}/test.jsonl)")


def load_benchmark(
    name: str,
    data_dir: str | Path | None = None,
    *,
    hf_dataset: str | None = None,
    split: str = "test",
    limit: int | None = None,
) -> MathSet:
    """One of the six benchmarks (docs/paper-notes.md#evaluation) from ``data_dir`` or a Hugging
    Face dataset.

    ``data_dir`` defaults to :func:`default_data_dir`; ``hf_dataset`` (e.g. a hub copy of
    MATH-500) bypasses local files. ``limit`` keeps the first problems in file order. A source
    with no usable row raises :class:`NoProblemsError`.
    """
    (bench,) = benchmark_names([name])
    if hf_dataset is not None:
        rows = hf_rows(hf_dataset, split)
        origin = hf_dataset
    else:
        d = Path(data_dir) if data_dir is not None else default_data_dir()
        if d is None:
            raise FileNotFoundError(
                "no benchmark directory: pass data_dir (a folder with aime24.jsonl, ...) or set "
                "$DSLIB_BENCHMARKS"
            )
        path = benchmark_file(bench, d)
        rows, origin = read_rows(path), str(path)
    loaded = collect(rows, lambda r, i: benchmark_problem(r, i, bench), bench, origin,
                     warn=False)
    require_problems(loaded)
    if loaded.bad_rows:
        warn_bad_rows(origin, loaded.bad_rows, len(loaded.problems))
    if limit is not None:
        loaded.problems = loaded.problems[:limit]
    return loaded


def load_benchmarks(
    names: str | Iterable[str] = "all",
    data_dir: str | Path | None = None,
    limit: int | None = None,
) -> dict[str, MathSet]:
    """Several benchmarks at once, in Table 1 order of ``names``."""
    return {b: load_benchmark(b, data_dir, limit=limit) for b in benchmark_names(names)}


# ----------------------------------------------------------------------------- prompts, grading


def prompt_text(problem: MathProblem) -> str:
    """The user message of the released run: question + :data:`INSTRUCTION_SUFFIX`
    (docs/paper-notes.md#hyperparameters, #evaluation)."""
    return problem.problem + INSTRUCTION_SUFFIX


def prompt_ids(
    tokenizer: Any, problem: MathProblem, max_prompt_tokens: int | None = None
) -> list[int]:
    """Chat-template token ids (``add_generation_prompt=True``), left-truncated if asked.

    The released run keeps the most recent 2,048 prompt tokens (``truncation="left"``,
    docs/paper-notes.md#hyperparameters).
    """
    ids = chat_prompt_ids(tokenizer, prompt_text(problem))
    if max_prompt_tokens is not None and len(ids) > max_prompt_tokens:
        ids = ids[len(ids) - max_prompt_tokens:]
    return ids


def prompted(
    tokenizer: Any, problems: Iterable[MathProblem], max_prompt_tokens: int | None = None
) -> list[Prompted]:
    """Problems with their prompt ids, ready for ``search.run`` / ``evaluate``."""
    return [Prompted(p, prompt_ids(tokenizer, p, max_prompt_tokens)) for p in problems]


def default_grader(response: str, gold: str) -> Verdict:
    """``dslib.verify.check`` (imported at call time, so this module loads without it)."""
    from dslib import verify as verify_mod

    check = getattr(verify_mod, "check", None)
    if check is None:
        raise RuntimeError("dslib.verify.check is not available in this build; pass a grader")
    return check(response, gold)


def verify(problem: MathProblem, text: str, grader: Grader | None = None) -> Verdict:
    """Grade a decoded response against the problem's gold (``TokenVerifier`` takes this)."""
    return (grader or default_grader)(text, problem.answer)


def dapo_grader(response: str, gold: str) -> Verdict:
    """The released TRAINING reward as a verdict (``dslib.verify.dapo_score``,
    docs/paper-notes.md#terminal-score).

    ``correct`` is math_dapo's exact match after Minerva normalisation; a response with no
    ``\\boxed{}`` in its last 300 characters is ``no_answer`` (``[INVALID]`` there), every other
    miss ``wrong``. The score the search backs up is then +1 / -1 as in the released run.
    """
    from dslib.verify import dapo_score

    res = dapo_score(response, gold)
    if res["acc"]:
        return Verdict(True, res["pred"], "ok")
    return Verdict(False, None if res["pred"] == "[INVALID]" else res["pred"],
                   "no_answer" if res["pred"] == "[INVALID]" else "wrong")


#: a few problems in DeepMath's shape for ``dry_run`` training without data files
SAMPLE_PROBLEMS: tuple[MathProblem, ...] = tuple(
    MathProblem(f"sample-{i}", q, a, "sample") for i, (q, a) in enumerate((
        ("What is $7 \\times 8$?", "56"),
        ("Simplify $\\frac{12}{18}$.", "\\frac{2}{3}"),
        ("Find $x$ if $2x + 3 = 11$.", "4"),
        ("How many primes are less than 20?", "8"),
        ("Compute $\\sqrt{144}$.", "12"),
        ("What is the sum of the interior angles of a hexagon, in degrees?", "720"),
        ("Is 91 a prime number? Answer Yes or No.", "No"),
        ("Evaluate $2^{10}$.", "1024"),
    ))
)
