"""Tests for dslib.tasks.math: loaders (local, parquet, HF names), bad rows, golds, prompts."""

from __future__ import annotations

import json
import sys
import types
import warnings
from functools import partial
from pathlib import Path

import pytest

from dslib import verify as verify_mod
from dslib.tasks import math as m
from dslib.tasks.base import Prompted, TokenVerifier
from dslib.verify import Verdict

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
BENCH_DIR = SHARED / "benchmarks"
DEEPMATH_DIR = SHARED / "deepmath"
needs_shared = pytest.mark.skipif(not BENCH_DIR.is_dir(), reason="../shared/data is absent")


def boxed_grader(response: str, gold: str) -> Verdict:
    """A simple grader: the last boxed answer equals the gold string."""
    got = m.last_boxed(response)
    if got is None:
        return Verdict(False, None, "no_answer")
    return Verdict(got == gold, got, "ok" if got == gold else "wrong")


def write_jsonl(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def load_quietly(fn, *args, **kwargs):
    """Call a loader and return (result, the BadRowsWarnings it raised)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = fn(*args, **kwargs)
    return out, [w for w in caught if issubclass(w.category, m.BadRowsWarning)]


# --------------------------------------------------------------------------------------------
# The real files in ../shared (skip only when the folder is absent)
# --------------------------------------------------------------------------------------------


@needs_shared
@pytest.mark.parametrize("name", list(m.BENCHMARKS))
def test_each_local_benchmark_loads_at_standard_size(name: str) -> None:
    ds, warned = load_quietly(m.load_benchmark, name, BENCH_DIR)
    assert not warned and ds.bad_rows == []
    assert len(ds) == m.BENCHMARK_SIZES[name]
    assert len({p.id for p in ds}) == len(ds)
    for p in ds:
        assert p.source == name and p.problem.strip() and p.answer.strip()
        assert not p.problem.endswith(m.INSTRUCTION_SUFFIX)
        assert p.answers and all(a.strip() for a in p.answers)


@needs_shared
def test_local_benchmark_gold_details() -> None:
    sets = m.load_benchmarks("all", BENCH_DIR)
    assert sets["aime24"][0].id == "aime24-60" and sets["aime24"][0].answer == "204"
    assert all(p.answer.lstrip("-").isdigit() for p in sets["amc23"])  # 27.0 -> "27"
    assert {p.level for p in sets["math500"]} == {1.0, 2.0, 3.0, 4.0, 5.0}
    minerva = sets["minerva_math"]
    converted = [p for p in minerva if p.answer != p.meta["answer_raw"]]
    assert len(converted) == 58  # the e-notation golds of the README
    assert all("\\times 10^{" in p.answer for p in converted)
    oly = sets["olympiadbench"]
    multi = [p for p in oly if len(p.answers) > 1]
    assert 90 <= len(multi) <= 94  # 94 flagged; two flagged items are a single tuple
    assert all(p.answer == ", ".join(p.answers) for p in multi)
    assert not any("$" == p.answer[0] or p.answer.endswith("$") for p in oly)


@needs_shared
def test_local_benchmark_limit_and_default_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DSLIB_BENCHMARKS", str(BENCH_DIR))
    assert m.default_data_dir() == BENCH_DIR
    ds = m.load_benchmark("math", limit=3)  # alias, default dir
    assert [p.id for p in ds] == ["math500-0", "math500-1", "math500-2"]


@needs_shared
def test_deepmath_round0_files() -> None:
    files = [DEEPMATH_DIR / f"deepmath103k_round0_train_{x}.jsonl" for x in (0, 25)]
    ds, warned = load_quietly(m.load_deepmath, files)
    assert len(warned) == 1  # one summary for the whole load
    assert ds.bad_rows == [m.BadRow(860, "zwhe99--DeepMath-103K-99696", "empty answer")]
    assert len(ds) == 14449 + 6055 - 1
    first = ds[0]
    assert first.id == "zwhe99--DeepMath-103K-224" and first.answer == "2"
    assert first.level == 8.0 and first.source == "deepmath" and "topic" in first.meta
    assert m.prompt_text(first).endswith(" Let's think step by step and output the final "
                                         "answer within \\boxed{}.")


# --------------------------------------------------------------------------------------------
# Hand-written files: schema and bad-row reporting (never skipped)
# --------------------------------------------------------------------------------------------


def test_bad_rows_are_reported_not_dropped_silently(tmp_path: Path) -> None:
    good = {"id": "a", "problem": "1+1?", "ground_truth": "2", "difficulty": 3, "topic": "t"}
    path = write_jsonl(tmp_path / "dm.jsonl", [
        json.dumps(good),
        "{not json",
        json.dumps({"id": "b", "ground_truth": "3"}),
        "",
        json.dumps({"id": "c", "problem": "x?", "ground_truth": ""}),
        json.dumps([1, 2]),
        json.dumps({"id": "a", "problem": "again", "ground_truth": "5"}),
        json.dumps({"id": "d", "problem": "y?"}),
        json.dumps({"id": "e", "problem": "z?", "final_answer": 7.0}),
    ])
    ds, warned = load_quietly(m.load_deepmath, path)
    assert [p.id for p in ds] == ["a", "e"]
    assert ds[1].answer == "7"
    assert [(b.line, b.id, b.reason.split(" (")[0]) for b in ds.bad_rows] == [
        (2, None, "not JSON"),
        (3, "b", "missing problem"),
        (5, "c", "empty answer"),
        (6, None, "not a JSON object"),
        (7, "a", "duplicate id"),
        (8, "d", "missing answer"),
    ]
    assert len(warned) == 1
    msg = str(warned[0].message)
    assert "skipped 6 bad row(s), kept 2" in msg and "line 2" in msg and str(path) in msg


def test_benchmark_bad_rows_and_clean_file_is_silent(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "aime24.jsonl", [
        json.dumps({"id": "aime24-1", "problem": "p", "answer": "5"}),
        json.dumps({"id": "aime24-2", "problem": "", "answer": "5"}),
        json.dumps({"id": "aime24-3", "problem": "q", "answer": "  "}),
    ])
    ds, warned = load_quietly(m.load_benchmark, "aime24", tmp_path)
    assert [p.id for p in ds] == ["aime24-1"] and len(warned) == 1
    assert [(b.line, b.reason) for b in ds.bad_rows] == [
        (2, "missing problem"), (3, "empty answer"),
    ]
    write_jsonl(tmp_path / "amc23.jsonl", [json.dumps({"id": 0, "problem": "p", "answer": 27.0})])
    ds, warned = load_quietly(m.load_benchmark, "amc23", tmp_path)
    assert not warned and ds[0].id == "amc23-0" and ds[0].answer == "27"


# --------------------------------------------------------------------------------------------
# Faults in data files: each ends in a bad row naming line and id, or a clear error (issue 18)
# --------------------------------------------------------------------------------------------


def test_gold_types_are_checked_per_type(tmp_path: Path) -> None:
    rows = [
        {"id": "int", "problem": "p", "ground_truth": 12},
        {"id": "float", "problem": "p", "ground_truth": 2.5},
        {"id": "whole", "problem": "p", "ground_truth": 27.0},
        {"id": "text", "problem": "p", "ground_truth": " 1/2 "},
        {"id": "dict", "problem": "p", "ground_truth": {"value": 3}},
        {"id": "list", "problem": "p", "ground_truth": ["3"]},
        {"id": "bool", "problem": "p", "ground_truth": True},
        {"id": "nan", "problem": "p", "ground_truth": float("nan")},
        {"id": "inf", "problem": "p", "ground_truth": float("-inf")},
        {"id": "long", "problem": "p", "ground_truth": "1" * (verify_mod.MAX_GOLD_CHARS + 1)},
        {"id": "nul", "problem": "p", "ground_truth": "1\x002"},
        {"id": "qdict", "problem": {"text": "p"}, "ground_truth": "3"},
    ]
    path = write_jsonl(tmp_path / "dm.jsonl", [json.dumps(r) for r in rows])  # NaN, -Infinity
    ds, warned = load_quietly(m.load_deepmath, path)
    assert [(p.id, p.answer) for p in ds] == [
        ("int", "12"), ("float", "2.5"), ("whole", "27"), ("text", "1/2"),
    ]
    assert [(b.line, b.id, b.reason) for b in ds.bad_rows] == [
        (5, "dict", "answer is a dict (expected a string or a number)"),
        (6, "list", "answer is a list (expected a string or a number)"),
        (7, "bool", 'answer is a boolean (true); write it as a string such as "Yes"'),
        (8, "nan", "answer is not a finite number (nan)"),
        (9, "inf", "answer is not a finite number (-inf)"),
        (10, "long", f"answer longer than {verify_mod.MAX_GOLD_CHARS} characters "
                     f"({verify_mod.MAX_GOLD_CHARS + 1})"),
        (11, "nul", "answer has a control character (U+0000) at character 2"),
        (12, "qdict", "problem is a dict (expected a string)"),
    ]
    assert len(warned) == 1 and "skipped 8 bad row(s), kept 4" in str(warned[0].message)
    # the benchmarks take the same rule; OlympiadBench's final_answer must hold strings
    write_jsonl(tmp_path / "aime24.jsonl", [
        json.dumps({"id": "aime24-1", "problem": "p", "answer": 204}),
        json.dumps({"id": "aime24-2", "problem": "p", "answer": [204]}),
    ])
    ds, _ = load_quietly(m.load_benchmark, "aime24", tmp_path)
    assert [p.answer for p in ds] == ["204"]
    assert ds.bad_rows[0].reason == "answer is a list (expected a string or a number)"
    write_jsonl(tmp_path / "olympiadbench.jsonl", [
        json.dumps({"id": 1, "question": "q", "final_answer": ["$3$"]}),
        json.dumps({"id": 2, "question": "q", "final_answer": [{"x": 1}, "$3$"]}),
        json.dumps({"id": 3, "question": "q", "final_answer": [False]}),
    ])
    ds, _ = load_quietly(m.load_benchmark, "olympiadbench", tmp_path)
    assert [p.answer for p in ds] == ["3"]
    assert [(b.id, b.reason) for b in ds.bad_rows] == [
        ("olympiadbench-2", "final_answer must be a string or a list of strings, not a list "
                            "holding dict"),
        ("olympiadbench-3", "final_answer must be a string or a list of strings, not a list "
                            "holding bool"),
    ]


def test_byte_order_mark_keeps_the_first_row(tmp_path: Path) -> None:
    path = tmp_path / "dm.jsonl"
    lines = [json.dumps({"id": f"r{i}", "problem": "p", "ground_truth": str(i)}) for i in range(3)]
    path.write_bytes(b"\xef\xbb\xbf" + "\n".join(lines).encode() + b"\n")
    ds, warned = load_quietly(m.load_deepmath, path)
    assert [p.id for p in ds] == ["r0", "r1", "r2"] and not warned and ds.bad_rows == []
    bench = tmp_path / "aime25.jsonl"
    bench.write_bytes(b"\xef\xbb\xbf" + json.dumps({"id": "aime25-1", "problem": "p",
                                                    "answer": "7"}).encode())
    ds, warned = load_quietly(m.load_benchmark, "aime25", tmp_path)
    assert [p.answer for p in ds] == ["7"] and not warned


def test_a_non_utf8_byte_costs_its_row_only(tmp_path: Path) -> None:
    path = tmp_path / "dm.jsonl"
    good = [json.dumps({"id": f"r{i}", "problem": "p", "ground_truth": str(i)}).encode()
            for i in range(3)]
    broken = b'{"id": "r9", "problem": "caf\xe9 \xff", "ground_truth": "1"}'  # Latin-1 bytes
    path.write_bytes(b"\n".join([good[0], broken, good[1], b"\xff\xfe", good[2]]) + b"\n")
    ds, warned = load_quietly(m.load_deepmath, path)
    assert [p.id for p in ds] == ["r0", "r1", "r2"]
    assert [(b.line, b.id, b.reason) for b in ds.bad_rows] == [
        (2, "r9", "not UTF-8 (byte 0xE9 at character 29); re-save the file as UTF-8"),
        (4, None, "not UTF-8 (byte 0xFF at character 1); re-save the file as UTF-8"),
    ]
    assert len(warned) == 1 and str(path) in str(warned[0].message)


@pytest.mark.parametrize("content", [b"", b"\n\n  \n", b"\xef\xbb\xbf"])
def test_an_empty_file_is_a_clear_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "dm.jsonl"
    path.write_bytes(content)
    with pytest.raises(m.NoProblemsError, match=f"{path}: no rows"):
        m.load_deepmath(path)
    (tmp_path / "amc23.jsonl").write_bytes(content)
    with pytest.raises(m.NoProblemsError, match="amc23.jsonl: no rows"):
        m.load_benchmark("amc23", tmp_path)


def test_an_all_bad_file_is_a_clear_error_with_the_first_reasons(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "dm.jsonl", [
        "{not json",
        json.dumps({"id": "b", "problem": "p", "ground_truth": None}),
        json.dumps({"id": "c", "problem": "p", "ground_truth": True}),
        json.dumps({"id": "d", "problem": "p", "ground_truth": ""}),
    ])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the error alone says it: no warning before it
        with pytest.raises(m.NoProblemsError) as err:
            m.load_deepmath([path])
    msg = str(err.value)
    assert msg.startswith(f"{path}: every row is bad (4 row(s))")
    assert "line 1: not JSON" in msg and "line 2 (b): missing answer" in msg
    assert "line 3 (c): answer is a boolean" in msg and "line 4" not in msg  # the first three
    write_jsonl(tmp_path / "math500.jsonl", [json.dumps({"id": "math500-1", "problem": "p"})])
    with pytest.raises(m.NoProblemsError, match="math500.jsonl: every row is bad .*missing answer"):
        m.load_benchmark("math500", tmp_path)
    # a later file that repeats an earlier one is not "all bad": its rows are duplicates
    ok = write_jsonl(tmp_path / "ok.jsonl", [json.dumps({"id": "a", "problem": "p",
                                                          "ground_truth": "1"})])
    ds, _ = load_quietly(m.load_deepmath, [ok, ok])
    assert len(ds) == 1 and ds.bad_rows[0].reason.startswith("duplicate id")


def test_an_unreadable_parquet_names_the_file(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    path = tmp_path / "train.parquet"
    path.write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(ValueError, match=f"{path}: not a readable parquet file"):
        m.load_deepmath(path)


def test_qwen_layout_and_missing_file(tmp_path: Path) -> None:
    (tmp_path / "minerva_math").mkdir()
    write_jsonl(tmp_path / "minerva_math" / "test.jsonl", [
        json.dumps({"idx": 0, "problem": "Find v.", "solution": "So $v=\\boxed{4.4e7}$ m/s.",
                    "type": "Astro"}),
    ])
    ds = m.load_benchmark("minerva", tmp_path)
    p = ds[0]
    assert p.id == "minerva-0" and p.answer == "4.4\\times 10^{7}"
    assert p.meta["answer_raw"] == "4.4e7" and p.meta["type"] == "Astro"
    with pytest.raises(FileNotFoundError, match="olympiadbench"):
        m.load_benchmark("olympiadbench", tmp_path)
    with pytest.raises(ValueError, match="unknown benchmark"):
        m.load_benchmark("gsm8k", tmp_path)


def test_released_parquet_schema(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    rows = [
        {
            "data_source": "deepmath_103k",
            "prompt": [{"role": "user", "content": "What is 2+3?" + m.INSTRUCTION_SUFFIX}],
            "ability": "MATH",
            "reward_model": {"style": "rule-lighteval/MATH_v2", "ground_truth": "5"},
            "extra_info": {"index": "zwhe99--DeepMath-103K-7", "difficulty": 4.5,
                           "topic": "Arithmetic"},
        },
        {
            "data_source": "deepmath_103k",
            "prompt": [{"role": "user", "content": "Options (A)-(E)." + m.INSTRUCTION_SUFFIX}],
            "ability": "MATH",
            "reward_model": {"style": "rule-lighteval/MATH_v2", "ground_truth": ""},
            "extra_info": {"index": "zwhe99--DeepMath-103K-8", "difficulty": 5.0, "topic": "x"},
        },
    ]
    path = tmp_path / "train_0.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    ds, warned = load_quietly(m.load_deepmath, path)
    assert len(warned) == 1
    assert ds.bad_rows == [m.BadRow(2, "zwhe99--DeepMath-103K-8", "empty answer")]
    p = ds[0]
    assert (p.id, p.problem, p.answer, p.level) == ("zwhe99--DeepMath-103K-7", "What is 2+3?",
                                                    "5", 4.5)
    assert p.meta["topic"] == "Arithmetic"
    assert m.prompt_text(p) == "What is 2+3?" + m.INSTRUCTION_SUFFIX  # suffix not doubled


def test_hf_dataset_name_uses_datasets_lazily(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = types.ModuleType("datasets")
    calls = []

    def load_dataset(name, split=None, **kwargs):
        calls.append((name, split))
        return [
            {"question": "Is 7 prime?", "final_answer": "Yes", "difficulty": 2.0, "topic": "NT"},
            {"question": "Empty", "final_answer": "", "difficulty": 2.0, "topic": "NT"},
        ]

    fake.load_dataset = load_dataset
    monkeypatch.setitem(sys.modules, "datasets", fake)
    ds, warned = load_quietly(m.load_deepmath, "zwhe99/DeepMath-103K")
    assert calls == [("zwhe99/DeepMath-103K", "train")]
    assert ds[0].id == "zwhe99--DeepMath-103K-0" and ds[0].answer == "Yes"
    assert ds.bad_rows == [m.BadRow(2, "zwhe99--DeepMath-103K-1", "empty answer")]
    assert len(warned) == 1


def test_hf_dataset_errors_are_clear(monkeypatch: pytest.MonkeyPatch) -> None:
    offline = types.ModuleType("datasets")

    def load_dataset(name, split=None, **kwargs):
        raise ConnectionError("no network")

    offline.load_dataset = load_dataset
    monkeypatch.setitem(sys.modules, "datasets", offline)
    with pytest.raises(RuntimeError, match="Offline.*local"):
        m.load_benchmark("math500", hf_dataset="someone/MATH-500")
    monkeypatch.setitem(sys.modules, "datasets", None)  # "not installed"
    with pytest.raises(ImportError, match="pip install datasets"):
        m.load_deepmath("zwhe99/DeepMath-103K")
    with pytest.raises(FileNotFoundError):
        m.load_deepmath("no/such/file.jsonl")


def test_no_data_dir_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(m, "default_data_dir", lambda: None)
    with pytest.raises(FileNotFoundError, match="data_dir"):
        m.load_benchmark("aime24")


def test_benchmark_names() -> None:
    assert m.benchmark_names("all") == list(m.BENCHMARKS)
    assert m.benchmark_names("minerva,MATH,aime24,math500") == ["minerva_math", "math500", "aime24"]
    assert m.benchmark_names(["olympiad", "amc"]) == ["olympiadbench", "amc23"]
    with pytest.raises(ValueError):
        m.benchmark_names("")


# --------------------------------------------------------------------------------------------
# Gold answers: Minerva extraction, OlympiadBench lists
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ("The answer is $\\boxed{1.6}$ cm.", "1.6"),
    ("first \\boxed{1} then \\boxed{\\frac{1}{2}}", "\\frac{1}{2}"),
    ("nested \\boxed{\\left\\{ x^{2} \\right\\}}", "\\left\\{ x^{2} \\right\\}"),
    ("$\\boxed{4.4e7}$", "4.4e7"),
    ("no space form \\boxed 5$ end", "5"),
    ("\\fbox{12}", "12"),
    ("unclosed \\boxed{3", None),
    ("no box at all", None),
    ("\\boxedfoo{1}", None),
])
def test_last_boxed(text: str, expected: str | None) -> None:
    assert m.last_boxed(text) == expected


@pytest.mark.parametrize(("raw", "expected"), [
    ("4.4e7", "4.4\\times 10^{7}"),
    ("1e-5", "1\\times 10^{-5}"),
    ("2.7778e-6", "2.7778\\times 10^{-6}"),
    ("3.61e+2", "3.61\\times 10^{2}"),
    ("1.6", "1.6"),
    ("e^2", "e^2"),
    ("7e", "7e"),
])
def test_sci_to_latex(raw: str, expected: str) -> None:
    assert m.sci_to_latex(raw) == expected


def test_minerva_rows() -> None:
    row = {"problem": "Q", "solution": "a \\boxed{2} b \\boxed{\\mathrm{3e8}}", "idx": 5}
    p = m.benchmark_problem(row, 0, "minerva_math")
    assert p.answer == "\\mathrm{3e8}" and p.meta["answer_from"].startswith("last")
    assert m.benchmark_problem({"problem": "Q", "answer": "1e3"}, 0, "minerva_math").answer == (
        "1\\times 10^{3}"
    )
    with pytest.raises(ValueError, match="no \\\\boxed"):
        m.benchmark_problem({"problem": "Q", "solution": "none"}, 0, "minerva_math")


@pytest.mark.parametrize(("final", "multiple", "expected"), [
    (["$69$,$84$"], True, ("69", "84")),
    (["$2^{-2 / 3}$, $8$"], True, ("2^{-2 / 3}", "8")),
    (["1,3,5"], True, ("1", "3", "5")),
    (["$(1,8,19), (2,7,13), (4,5,7)$"], True, ("(1,8,19)", "(2,7,13)", "(4,5,7)")),
    (["$221,$8$"], True, ("221", "8")),
    (["$(-\\frac{1}{2}, \\frac{7}{2})$"], True, ("(-\\frac{1}{2}, \\frac{7}{2})",)),
    (["$[1, 7]$"], False, ("[1, 7]",)),
    (["$1,000$"], False, ("1,000",)),  # not multi-answer: never split a number
    (["$(-\\infty, 0) \\cup\\{1\\}$."], False, ("(-\\infty, 0) \\cup\\{1\\}",)),
    ("$5$", False, ("5",)),
])
def test_olympiad_answers(final, multiple: bool, expected: tuple[str, ...]) -> None:
    assert m.olympiad_answers(final, multiple) == expected


def test_olympiad_raw_row_gold() -> None:
    row = {"id": 2231, "question": "Find all.", "final_answer": ["$69$,$84$"],
           "is_multiple_answer": True, "unit": None, "answer_type": "Numerical"}
    p = m.benchmark_problem(row, 0, "olympiadbench")
    assert p.id == "olympiadbench-2231" and p.answers == ("69", "84") and p.answer == "69, 84"
    assert p.meta["is_multiple_answer"] is True


def test_olympiad_gold_is_an_unordered_list_for_math_verify() -> None:
    """The documented contract: a comma list is a set, a tuple inside it stays ordered."""
    mv = pytest.importorskip("math_verify")

    def same(gold: str, answer: str) -> bool:
        return mv.verify(mv.parse(f"${gold}$"), mv.parse(f"\\boxed{{{answer}}}"))

    assert same("69, 84", "84, 69")
    assert not same("69, 84", "69")
    assert same("(1,8,19), (2,7,13)", "(2,7,13), (1,8,19)")
    assert not same("(1,8,19), (2,7,13)", "(8,1,19), (2,7,13)")


# --------------------------------------------------------------------------------------------
# Prompts (the tiny tokenizer's chat template) and grading
# --------------------------------------------------------------------------------------------


def test_prompt_ids_use_the_chat_template(tiny_reasoner) -> None:
    tok = tiny_reasoner.load_tokenizer()
    p = m.MathProblem("x-1", "What is $1+1$?", "2", "aime24")
    ids = m.prompt_ids(tok, p)
    expected = tok.apply_chat_template(
        [{"role": "user", "content": p.problem + m.INSTRUCTION_SUFFIX}], tokenize=False,
        add_generation_prompt=True,
    )
    assert tok.decode(ids) == expected
    assert expected.startswith("<|im_start|>user\nWhat is $1+1$? Let's think step by step")
    assert expected.endswith("\\boxed{}.<|im_end|>\n<|im_start|>assistant\n")
    short = m.prompt_ids(tok, p, max_prompt_tokens=10)
    # left truncation keeps the most recent tokens (docs/paper-notes.md#hyperparameters)
    assert short == ids[-10:]
    items = m.prompted(tok, [p])
    assert isinstance(items[0], Prompted) and items[0].id == "x-1" and items[0].prompt_ids == ids
    verifier = TokenVerifier(tok, partial(m.verify, grader=boxed_grader))
    answer_ids = tok("so \\boxed{2}", add_special_tokens=False)["input_ids"]
    assert verifier(items[0], answer_ids) == Verdict(True, "2", "ok")


def test_verify_uses_injected_or_default_grader(monkeypatch: pytest.MonkeyPatch) -> None:
    p = m.MathProblem("x", "q", "2", "aime24")
    assert m.verify(p, "\\boxed{2}", grader=boxed_grader).correct
    assert m.verify(p, "\\boxed{3}", grader=boxed_grader).reason == "wrong"
    seen = []
    monkeypatch.setattr(verify_mod, "check", lambda r, g: seen.append((r, g)) or Verdict(
        False, None, "no_answer"), raising=False)
    assert m.verify(p, "text").reason == "no_answer" and seen == [("text", "2")]
    monkeypatch.delattr(verify_mod, "check")
    with pytest.raises(RuntimeError, match="pass a grader"):
        m.verify(p, "text")


def test_paper_table1_rows_are_consistent() -> None:
    """Avg of every transcribed row = mean of its six numbers (docs/paper-notes.md#evaluation:
    +-0.007)."""
    assert len(m.PAPER_TABLE1) == 12 and m.PAPER_TABLE1[-1][0] == "DeepSearch-1.5B"
    for name, vals in m.PAPER_TABLE1:
        assert len(vals) == 7, name
        assert abs(sum(vals[:6]) / 6 - vals[6]) <= 0.0075, name
    assert m.PAPER_TABLE1[-1][1] == (53.65, 35.42, 90.39, 92.53, 40.00, 65.72, 62.95)


@pytest.mark.skipif(not hasattr(verify_mod, "check"), reason="verify.check not in this build")
def test_golds_with_the_default_grader() -> None:
    """The benchmark golds as built here grade as intended with ``verify.check``."""
    row = {"id": 1, "question": "Q", "final_answer": ["$(1,8,19), (2,7,13)$"],
           "is_multiple_answer": True}
    tuples = m.benchmark_problem(row, 0, "olympiadbench")
    assert m.verify(tuples, "\\boxed{(2,7,13), (1,8,19)}").correct  # unordered list
    assert not m.verify(tuples, "\\boxed{(8,1,19), (2,7,13)}").correct  # ordered tuples
    assert not m.verify(tuples, "\\boxed{(1,8,19)}").correct  # incomplete list
    sci = m.benchmark_problem({"problem": "Q", "solution": "\\boxed{4.4e7}"}, 0, "minerva_math")
    for answer in ("4.4e7", "4.4 \\times 10^7", "44000000"):
        assert m.verify(sci, f"\\boxed{{{answer}}}").correct, answer
