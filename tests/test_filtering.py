"""Pass1@K hard-subset filtering (docs/paper-notes.md#filtering): the keep rule, sampling, the JSONL
record."""

from __future__ import annotations

import json

import pytest
import torch
from fakes import CORRECT, EOS, WRONG, FakeProblem, ScriptedPolicy, fake_verifier, seg

from dslib import files
from dslib import filtering as flt
from dslib.filtering import FilterHeader, FilterRecord, hard_subset, keep
from dslib.policy.make import model_fingerprint

# ----------------------------------------------------------------------------- keep rule


@pytest.mark.parametrize(
    ("successes", "code", "paper"),
    [(0, True, True), (1, True, False), (2, False, False), (3, False, False), (4, False, False)],
)
def test_keep_boundaries_code_le_vs_paper_lt(successes, code, paper):
    rec = FilterRecord("p", successes, 4)
    assert rec.rate == successes / 4
    assert keep(rec) is code  # default = the README's "0% or 25%": rate <= 0.25
    assert keep(rec, delta=0.25, strict=False) is code
    assert keep(rec, delta=0.25, strict=True) is paper  # paper Eq. 8-9: rate < 0.25


def test_keep_is_exact_at_a_float_boundary():
    # 3/10 and 0.3 differ in binary; the boundary must still count as "equal"
    assert keep(FilterRecord("p", 3, 10), delta=0.3)
    assert not keep(FilterRecord("p", 3, 10), delta=0.3, strict=True)


def test_record_validates_its_counts():
    with pytest.raises(ValueError, match="successes"):
        FilterRecord("p", 5, 4)
    with pytest.raises(ValueError, match="k >= 1"):
        FilterRecord("p", 0, 0)


# ----------------------------------------------------------------------------- pass1_at_k


def _by_first_token(prefix, j, max_new_tokens):
    """Prefix [c, ...]: samples j < c are correct, the rest wrong."""
    return seg([CORRECT if j < prefix[0] else WRONG, EOS])


def test_pass1_at_k_counts_successes_in_one_call_per_batch():
    items = [FakeProblem([c, 9], id=f"p{c}") for c in (0, 1, 2, 4, 3)]
    policy = ScriptedPolicy(script=_by_first_token)
    recs = flt.pass1_at_k(policy, items, fake_verifier, k=4, max_new_tokens=8, batch_problems=2)
    assert [(r.id, r.successes, r.k) for r in recs] == [
        ("p0", 0, 4), ("p1", 1, 4), ("p2", 2, 4), ("p4", 4, 4), ("p3", 3, 4)]
    assert len(policy.calls) == 3  # 5 problems, 2 per call
    assert all(c.counts == [4] * len(c.prefixes) and c.max_new_tokens == 8 for c in policy.calls)
    kept = hard_subset(items, recs)
    assert [it.id for it in kept] == ["p0", "p1"]
    assert [it.id for it in hard_subset(items, recs, strict=True)] == ["p0"]


def test_hard_subset_keeps_order_and_reports_missing_ids():
    items = [FakeProblem([1], id=i) for i in ("c", "a", "b")]
    recs = [FilterRecord("a", 0, 4), FilterRecord("b", 3, 4), FilterRecord("c", 1, 4)]
    assert [it.id for it in hard_subset(items, recs)] == ["c", "a"]
    with pytest.raises(KeyError, match=r"2 of 3 items have no filter record.*c, b"):
        hard_subset(items, recs[:1])


def test_rounds_chain_to_a_shrinking_subset():
    items = [FakeProblem([1], id=i) for i in "abcd"]
    r0 = [FilterRecord(i, s, 4) for i, s in zip("abcd", (0, 1, 1, 3), strict=True)]
    d0 = hard_subset(items, r0)
    r1 = [FilterRecord(i, s, 4) for i, s in zip("abc", (2, 0, 1), strict=True)]
    d1 = hard_subset(d0, r1)  # D_hard^(1) is filtered from D_hard^(0), not from D_train
    assert [it.id for it in d0] == ["a", "b", "c"] and [it.id for it in d1] == ["b", "c"]


# ----------------------------------------------------------------------------- file


def _header(**kw) -> FilterHeader:
    return FilterHeader(model_fingerprint="abc123", k=4, config={"max_new_tokens": 64}, **kw)


def test_filter_file_round_trips(tmp_path):
    recs = [FilterRecord("a", 0, 4), FilterRecord("b", 1, 4), FilterRecord("c", 2, 4)]
    path = flt.write_filter(tmp_path / "f.jsonl", recs, _header())
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert lines[0] == {"format": "dslib.filter", "version": 1, "model_fingerprint": "abc123",
                        "config": {"max_new_tokens": 64}, "k": 4, "delta": 0.25,
                        "strict": False}
    assert lines[1:] == [{"id": "a", "successes": 0, "k": 4, "kept": True},
                         {"id": "b", "successes": 1, "k": 4, "kept": True},
                         {"id": "c", "successes": 2, "k": 4, "kept": False}]
    header, back = flt.read_filter(path)
    assert back == recs and header == _header()
    # a plain dict header works too, and strict=True changes the kept column
    flt.write_filter(path, recs, {**_header(strict=True).to_dict()})
    assert [json.loads(x)["kept"] for x in path.read_text().splitlines()[1:]] == [
        True, False, False]
    assert flt.read_filter(path)[0].strict is True
    assert not list(tmp_path.glob(".*tmp"))  # no temporary file left behind


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda ls: ls[:1] + ['{"id": "a", "succ'], r"f\.jsonl:2: corrupt line"),
        (lambda ls: ['{"format": "other", "version": 1}'] + ls[1:], r"f\.jsonl:1: not a dslib"),
        (lambda ls: [ls[0].replace('"version": 1', '"version": 7')] + ls[1:],
         r"f\.jsonl:1: unknown filter file version 7"),
        (lambda ls: ls + ['{"id": "z", "successes": 9, "k": 4, "kept": false}'], r"f\.jsonl:4"),
        (lambda ls: ls + ['{"id": "z", "successes": 1, "k": 4, "kept": false}'],
         r"f\.jsonl:4: kept=False contradicts"),
        (lambda ls: ls + [ls[1]], r"f\.jsonl:4: duplicate id 'a'"),
        (lambda ls: [], r"empty file"),
    ],
)
def test_read_filter_names_file_and_line(tmp_path, mutate, message):
    path = tmp_path / "f.jsonl"
    flt.write_filter(path, [FilterRecord("a", 0, 4), FilterRecord("b", 2, 4)], _header())
    path.write_text("\n".join(mutate(path.read_text().splitlines())) + "\n")
    with pytest.raises(flt.FilterFileError, match=message):
        flt.read_filter(path)


def test_write_filter_rejects_inconsistent_records(tmp_path):
    with pytest.raises(ValueError, match="k=3"):
        flt.write_filter(tmp_path / "f.jsonl", [FilterRecord("a", 0, 3)], _header())
    with pytest.raises(ValueError, match="duplicate"):
        flt.write_filter(tmp_path / "f.jsonl", [FilterRecord("a", 0, 4)] * 2, _header())
    assert not (tmp_path / "f.jsonl").exists()


def test_interrupted_write_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "f.jsonl"
    flt.write_filter(path, [FilterRecord("a", 0, 4)], _header())
    before = path.read_bytes()

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(files.os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        flt.write_filter(path, [FilterRecord("b", 1, 4)], _header())
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.jsonl"]


# ----------------------------------------------------------------------------- fingerprint


def test_model_fingerprint_tracks_weights_not_identity():
    torch.manual_seed(0)
    a = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2))
    b = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2))
    b.load_state_dict(a.state_dict())
    fa = model_fingerprint(a)
    assert len(fa) == 16 and fa == model_fingerprint(b)
    with torch.no_grad():
        b[1].bias[0] += 1e-3
    assert model_fingerprint(b) != fa
    half = torch.nn.Linear(3, 4).to(torch.bfloat16)  # bf16 has no numpy dtype: must still work
    assert len(model_fingerprint(half)) == 16


def test_fault_filter_cache_of_another_model_or_setting_is_filtered_again(tmp_path):
    """Fault 7: ``filter_file(reuse=True)`` (what ``dslib rounds`` does with filter-1.jsonl)
    reuses a file only if model fingerprint, settings and problems all match; otherwise a
    warning names the file and what differs, and the problems are sampled again."""
    items = [FakeProblem([5, 6], id=f"p{i}") for i in range(3)]
    path = tmp_path / "filter-1.jsonl"
    torch.manual_seed(0)
    model = torch.nn.Linear(2, 2)

    def run(model, policy, **kw):
        return flt.filter_file(policy, model, items, fake_verifier, path, k=2,
                               config={"model": "tiny"}, reuse=True, **kw)

    first = ScriptedPolicy(seed=1)
    header, records = run(model, first)
    assert first.calls and len(records) == 3
    again = ScriptedPolicy(seed=2)
    assert run(model, again) == (header, records) and again.calls == []  # reused as it is

    other = torch.nn.Linear(2, 2)  # other weights under the same name
    with pytest.warns(UserWarning, match=r"filter-1\.jsonl: written for another model.*"
                                         r"model_fingerprint: '[0-9a-f]+' -> '[0-9a-f]+'"):
        header2, _ = run(other, ScriptedPolicy(seed=3))
    assert header2.model_fingerprint == model_fingerprint(other) != header.model_fingerprint
    assert flt.read_filter(path)[0] == header2  # the file now holds the new filter
    with pytest.warns(UserWarning, match=r"k: 2 -> 4|config\.max_new_tokens: 64 -> 8"):
        flt.filter_file(ScriptedPolicy(), other, items, fake_verifier, path, k=4,
                        max_new_tokens=8, config={"model": "tiny"}, reuse=True)
    with pytest.warns(UserWarning, match=r"config\.problems: 3 -> 2; problem ids"):
        flt.filter_file(ScriptedPolicy(), other, items[:2], fake_verifier, path, k=2,
                        config={"model": "tiny"}, reuse=True)
    path.write_text(path.read_text()[:30])
    redo = ScriptedPolicy(seed=4)
    with pytest.warns(UserWarning, match="unreadable"):
        run(other, redo)
    assert redo.calls
