"""Tests for the math-benchmark evaluation: avg@k arithmetic, resume, config checks, tiny run."""

from __future__ import annotations

import argparse
import json
import random
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from dslib import benchmarks as bm
from dslib import cli
from dslib import verify as verify_mod
from dslib.policy.base import Segment, per_prefix_counts
from dslib.tasks import math as m
from dslib.verify import Verdict

BENCH_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "benchmarks"
EOS = 0
USER, ASSISTANT = "<user>", "<assistant>"


def boxed_grader(response: str, gold: str) -> Verdict:
    """The last boxed answer equals the gold string."""
    got = m.last_boxed(response)
    if got is None:
        return Verdict(False, None, "no_answer")
    return Verdict(got == gold, got, "ok" if got == gold else "wrong")


class CharTokenizer:
    """One token per character (id = code point); EOS = 0; a two-marker chat template."""

    eos_token_id = EOS

    def apply_chat_template(self, messages, tokenize=False, add_generation_prompt=False):
        text = "".join(USER + msg["content"] for msg in messages)
        return text + (ASSISTANT if add_generation_prompt else "")

    def __call__(self, text, add_special_tokens=False):
        return {"input_ids": [ord(c) for c in text]}

    def decode(self, ids, skip_special_tokens=False):
        return "".join(chr(i) for i in ids if not (skip_special_tokens and i == EOS))


def question_of(prefix: list[int]) -> str:
    """The problem text back from a CharTokenizer prompt."""
    text = "".join(chr(i) for i in prefix)
    return text[len(USER) : -len(ASSISTANT)].removesuffix(m.INSTRUCTION_SUFFIX)


@dataclass
class TextPolicy:
    """A fake Policy answering with text: ``respond(question, sample_index, rng) -> str``.

    Records every call; raises ``RuntimeError`` on call number ``fail_on_call`` (a "kill").
    ``seed(int)`` re-seeds the RNG, as ``HFPolicy.seed`` does.
    """

    respond: object
    fail_on_call: int | None = None
    eos_token_id: int = EOS
    calls: list[tuple[list[str], list[int], int, float, float]] = field(default_factory=list)
    seeds: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.rng = random.Random(12345)

    def seed(self, seed: int) -> None:
        self.seeds.append(seed)
        self.rng = random.Random(seed)

    def sample(self, prefixes, n, max_new_tokens, temperature=1.0, top_p=1.0):
        if self.fail_on_call is not None and len(self.calls) + 1 == self.fail_on_call:
            raise RuntimeError("killed")
        counts = per_prefix_counts(prefixes, n)
        questions = [question_of(list(p)) for p in prefixes]
        self.calls.append((questions, counts, max_new_tokens, temperature, top_p))
        out = []
        for q, c in zip(questions, counts):
            segs = []
            for j in range(c):
                ids = [ord(ch) for ch in self.respond(q, j, self.rng)] + [EOS]
                finished = len(ids) <= max_new_tokens
                ids = ids[:max_new_tokens]
                segs.append(Segment(ids, [-1.0] * len(ids), finished))
            out.append(segs)
        return out

    def load_weights(self, state_dict) -> None:
        """Nothing to load."""


def problems(bench: str, golds: list[str]) -> list[m.MathProblem]:
    return [m.MathProblem(f"{bench}-{i}", f"Q{bench}{i}", g, bench) for i, g in enumerate(golds)]


def run(policy, sets, out, **kw):
    kw.setdefault("k", 4)
    kw.setdefault("max_new_tokens", 50)
    kw.setdefault("grader", boxed_grader)
    kw.setdefault("fingerprint", {"digest": "fake-model-1"})
    kw.setdefault("progress", False)
    return bm.evaluate_math(policy, CharTokenizer(), sets, out, **kw)


# --------------------------------------------------------------------------------------------
# avg@k arithmetic and the batched calls
# --------------------------------------------------------------------------------------------


def test_avg_at_k_hand_computed(tmp_path: Path) -> None:
    # problem -> number of correct samples out of k = 4; other samples answer wrong, give no
    # box, or run past the token budget
    correct = {"Qaime240": 0, "Qaime241": 1, "Qaime242": 4, "Qamc230": 2}

    def respond(q: str, j: int, rng) -> str:
        if j < correct[q]:
            return "so \\boxed{7}"
        if j == 3:
            return "x" * 80  # truncated at max_new_tokens=50, no answer
        return "no box" if j == 2 else "\\boxed{8}"

    sets = {"aime24": problems("aime24", ["7", "7", "7"]), "amc23": problems("amc23", ["7"])}
    policy = TextPolicy(respond)
    table = run(policy, sets, tmp_path, batch_problems=2, temperature=0.6, top_p=0.95)
    a, b = table["benchmarks"]["aime24"], table["benchmarks"]["amc23"]
    assert a["avg@4"] == pytest.approx((0 + 1 + 4) / 12)
    assert a["percent"] == pytest.approx(100 * 5 / 12)
    assert a["pass@4"] == pytest.approx(2 / 3)
    assert (a["problems"], a["samples"], a["correct"]) == (3, 12, 5)
    # answered: p0 has j=0,1 boxed (wrong), j=2 no box, j=3 truncated -> 2; p1: 2; p2: 4
    assert a["answer_rate"] == pytest.approx(8 / 12)
    assert a["truncated_rate"] == pytest.approx(2 / 12)  # j == 3 of p0 and p1
    assert b["avg@4"] == 0.5 and b["pass@4"] == 1.0
    assert table["average_percent"] == pytest.approx((100 * 5 / 12 + 50) / 2)
    assert table["average_over"] == ["aime24", "amc23"] and not table["complete_six"]
    # ONE call per batch of 2 problems, k samples each, the protocol's sampling parameters
    assert [c[1] for c in policy.calls] == [[4, 4], [4], [4]]
    assert all(c[2:] == (50, 0.6, 0.95) for c in policy.calls)
    assert len(policy.seeds) == 3  # one seed per batch


def test_prompt_is_chat_template_plus_suffix(tmp_path: Path) -> None:
    seen = []

    def respond(q, j, rng):
        return "\\boxed{1}"

    class Spy(TextPolicy):
        def sample(self, prefixes, n, max_new_tokens, temperature=1.0, top_p=1.0):
            seen.extend("".join(map(chr, p)) for p in prefixes)
            return super().sample(prefixes, n, max_new_tokens, temperature, top_p)

    run(Spy(respond), {"aime24": problems("aime24", ["1"])}, tmp_path, k=1)
    assert seen == [USER + "Qaime240" + m.INSTRUCTION_SUFFIX + ASSISTANT]


def test_outputs_and_markdown(tmp_path: Path) -> None:
    sets = {"math500": problems("math500", ["1", "2"])}
    table = run(TextPolicy(lambda q, j, r: "\\boxed{1}"), sets, tmp_path, label="fake")
    for name in (bm.CONFIG_FILE, bm.RESULTS_FILE, bm.TABLE_JSON, bm.TABLE_MD):
        assert (tmp_path / name).exists()
    assert json.loads((tmp_path / bm.TABLE_JSON).read_text()) == table
    recs = [json.loads(x) for x in (tmp_path / bm.RESULTS_FILE).read_text().splitlines()]
    assert [(r["benchmark"], r["id"], r["correct"]) for r in recs] == [
        ("math500", "math500-0", 4), ("math500", "math500-1", 0),
    ]
    assert recs[1]["samples"][0] == {"correct": False, "extracted": "1", "reason": "wrong",
                                     "tokens": 10, "finished": True}
    md = (tmp_path / bm.TABLE_MD).read_text()
    assert "| **DeepSearch-1.5B** | 53.65 | 35.42 | 90.39 | 92.53 | 40.00 | 65.72 | 62.95 |" in md
    assert "| this run: `fake` (avg@4) | - | - | - | 50.00 | - | - | 50.00 |" in md
    assert "Partial run" in md
    assert table["paper_table1"]["rows"]["DeepSearch-1.5B"][-1] == 62.95


def test_grader_errors_are_recorded_not_fatal(tmp_path: Path) -> None:
    def grader(response: str, gold: str) -> Verdict:
        if "boom" in response:
            raise ValueError("parser exploded")
        return boxed_grader(response, gold)

    policy = TextPolicy(lambda q, j, r: "boom" if j == 0 else "\\boxed{3}")
    with pytest.warns(UserWarning, match="grader raised on 1 sample"):
        table = run(policy, {"aime25": problems("aime25", ["3"])}, tmp_path, grader=grader)
    stats = table["benchmarks"]["aime25"]
    assert stats["grader_errors"] == 1 and stats["correct"] == 3
    rec = json.loads((tmp_path / bm.RESULTS_FILE).read_text())
    assert rec["samples"][0]["reason"] == "grader_error"
    assert "parser exploded" in rec["samples"][0]["error"]


def test_default_grader_missing_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delattr(verify_mod, "check", raising=False)
    with pytest.raises(RuntimeError, match="verify.check"):
        run(TextPolicy(lambda q, j, r: ""), {"aime24": problems("aime24", ["1"])}, tmp_path,
            grader=None)


# --------------------------------------------------------------------------------------------
# Resume and config checks
# --------------------------------------------------------------------------------------------


def random_respond(q: str, j: int, rng: random.Random) -> str:
    """Correct with probability 0.4, from the (per-batch seeded) RNG."""
    return "\\boxed{5}" if rng.random() < 0.4 else "\\boxed{6}"


def resume_sets() -> dict[str, list[m.MathProblem]]:
    return {"aime24": problems("aime24", ["5"] * 5), "math500": problems("math500", ["5"] * 4)}


def test_resume_after_kill_gives_the_uninterrupted_table(tmp_path: Path) -> None:
    full = run(TextPolicy(random_respond), resume_sets(), tmp_path / "full", batch_problems=2)
    killed = TextPolicy(random_respond, fail_on_call=3)  # dies after 2 batches = 4 problems
    with pytest.raises(RuntimeError, match="killed"):
        run(killed, resume_sets(), tmp_path / "resumed", batch_problems=2)
    lines = (tmp_path / "resumed" / bm.RESULTS_FILE).read_text().splitlines()
    assert [json.loads(x)["id"] for x in lines] == ["aime24-0", "aime24-1", "aime24-2", "aime24-3"]
    again = TextPolicy(random_respond)
    resumed = run(again, resume_sets(), tmp_path / "resumed", batch_problems=2)
    asked = [q for c in again.calls for q in c[0]]
    assert asked == ["Qaime244", "Qmath5000", "Qmath5001", "Qmath5002", "Qmath5003"]
    assert resumed == full
    assert (tmp_path / "resumed" / bm.TABLE_MD).read_text() == (
        tmp_path / "full" / bm.TABLE_MD
    ).read_text()
    # a finished directory: nothing is sampled again
    idle = TextPolicy(random_respond)
    assert run(idle, resume_sets(), tmp_path / "resumed", batch_problems=2) == full
    assert idle.calls == []


def test_torn_last_line_is_redone(tmp_path: Path) -> None:
    sets = {"aime24": problems("aime24", ["5"] * 3)}
    full = run(TextPolicy(random_respond), sets, tmp_path, batch_problems=1)
    path = tmp_path / bm.RESULTS_FILE
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:2]) + "\n" + lines[2][:25])  # killed mid-write
    policy = TextPolicy(random_respond)
    with pytest.warns(UserWarning, match="dropped 1 unreadable line"):
        again = run(policy, sets, tmp_path, batch_problems=1)
    assert [c[0] for c in policy.calls] == [["Qaime242"]]
    assert again == full
    assert path.read_text().splitlines() == lines


def test_config_mismatch_and_overwrite(tmp_path: Path) -> None:
    sets = {"aime24": problems("aime24", ["5"] * 2)}
    run(TextPolicy(random_respond), sets, tmp_path)
    for change, says in (({"k": 8}, "k: 4 -> 8"), ({"temperature": 1.0}, "temperature"),
                         ({"max_new_tokens": 10}, "max_new_tokens: 50 -> 10"),
                         ({"top_p": 1.0}, "top_p"),
                         ({"fingerprint": {"digest": "another"}}, "model: 'fake-model-1'")):
        with pytest.raises(bm.EvalConfigMismatch, match=f"{says}.*--overwrite"):
            run(TextPolicy(random_respond), sets, tmp_path, **change)
    # limit/batch/benchmarks may change: the same directory extends
    more = {"aime24": problems("aime24", ["5"] * 3)}
    policy = TextPolicy(random_respond)
    run(policy, more, tmp_path)
    assert [c[0] for c in policy.calls] == [["Qaime242"]]
    policy = TextPolicy(random_respond)
    table = run(policy, sets, tmp_path, k=2, overwrite=True)
    assert table["benchmarks"]["aime24"]["samples"] == 4 and len(policy.calls) == 1
    assert len((tmp_path / bm.RESULTS_FILE).read_text().splitlines()) == 2


def test_results_without_config_refuse(tmp_path: Path) -> None:
    (tmp_path / bm.RESULTS_FILE).write_text('{"benchmark": "aime24", "id": "x"}\n')
    with pytest.raises(bm.EvalConfigMismatch, match="without config.json"):
        run(TextPolicy(random_respond), {"aime24": problems("aime24", ["5"])}, tmp_path)


# --------------------------------------------------------------------------------------------
# CLI glue and the end-to-end tiny run
# --------------------------------------------------------------------------------------------


def test_cli_arguments_and_main_eval(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    parser = cli.add_eval_arguments(argparse.ArgumentParser())
    args = parser.parse_args(["--model", "tiny", "--benchmarks", "all", "--k", "4",
                              "--limit", "5", "--out", str(tmp_path)])
    assert (args.k, args.limit, args.temperature, args.top_p) == (4, 5, 0.6, 0.95)
    assert args.max_new_tokens == 32768 and args.backend == "hf" and not args.overwrite
    seen = {}

    def fake_run_eval(model, benchmarks, data_dir, out_dir, **kw):
        seen.update(model=model, benchmarks=benchmarks, out=out_dir, **kw)
        sets = {"aime24": problems("aime24", ["5"])}
        return run(TextPolicy(random_respond), sets, tmp_path, label=model)

    monkeypatch.setattr(bm, "run_eval", fake_run_eval)
    assert cli._eval(args) == 0
    assert seen["model"] == "tiny" and seen["k"] == 4 and seen["limit"] == 5
    assert "this run: `tiny`" in capsys.readouterr().out

    def mismatch(*a, **kw):
        raise bm.EvalConfigMismatch("holds results of another evaluation config")

    monkeypatch.setattr(bm, "run_eval", mismatch)
    with pytest.raises(SystemExit, match="another evaluation config"):
        cli._eval(args)


@pytest.mark.skipif(not BENCH_DIR.is_dir(), reason="../shared/data is absent")
def test_run_eval_tiny_end_to_end(tmp_path: Path) -> None:
    grader = None if hasattr(verify_mod, "check") else boxed_grader
    with warnings.catch_warnings():
        warnings.simplefilter("error", m.BadRowsWarning)
        table = bm.run_eval("tiny", "all", BENCH_DIR, tmp_path, k=2, max_new_tokens=8, limit=2,
                            grader=grader, progress=False)
    assert list(table["benchmarks"]) == list(m.BENCHMARKS)
    for stats in table["benchmarks"].values():
        assert (stats["problems"], stats["samples"]) == (2, 4)
        assert stats["mean_response_tokens"] <= 8 and stats["grader_errors"] == 0
    assert table["label"] == "tiny" and table["config"]["model"].startswith("sha256:")
    assert table["config"]["fingerprint"]["name"] == "tiny"
    lines = (tmp_path / bm.RESULTS_FILE).read_text().splitlines()
    assert len(lines) == 12
    # the same command again resumes: nothing new is evaluated
    again = bm.run_eval("tiny", "all", BENCH_DIR, tmp_path, k=2, max_new_tokens=8, limit=2,
                        grader=grader, progress=False)
    assert again == table
    assert len((tmp_path / bm.RESULTS_FILE).read_text().splitlines()) == 12


def test_grader_name_is_stable() -> None:
    from functools import partial

    assert bm.grader_name(None) == "dslib.verify.check"
    assert bm.grader_name(boxed_grader) == f"{__name__}.boxed_grader"
    assert bm.grader_name(partial(boxed_grader)) == f"{__name__}.boxed_grader"  # no address
