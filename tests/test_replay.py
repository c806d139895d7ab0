"""Replay buffer (docs/paper-notes.md#replay-buffer), cached groups
(docs/paper-notes.md#hybrid-groups), data hygiene (docs/paper-notes.md#hygiene)."""

from __future__ import annotations

import json
import os
import random
from dataclasses import replace

import pytest
import torch
from fakes import CORRECT, EOS, WRONG, FakeProblem, ScriptedPolicy, fake_verifier, seg

from dslib import hygiene
from dslib.config import HygieneConfig, SearchConfig, TrainConfig, TreeGRPOConfig, update
from dslib.hygiene import is_degenerate
from dslib.replay import ReplayBuffer, ReplayBufferError
from dslib.rollouts import CachedRollout, FlatRollout, hybrid_group

OK1, OK2, OK3, OK4, OK5 = ([5 + i, CORRECT, EOS] for i in range(5))  # distinct correct answers
BAD = [6, WRONG, EOS]

# ----------------------------------------------------------------------------- registration


def test_register_code_rule_boundaries():
    buf = ReplayBuffer()
    outcomes = {
        "none": [(BAD, False)] * 4,                                       # 0/4: nothing to cache
        "one": [(OK1, True), (BAD, False), (BAD, False), (BAD, False)],   # 1/4 <= 0.25
        "two": [(OK1, True), (OK2, True), (BAD, False), (BAD, False)],    # 2/4 >  0.25
    }
    assert buf.register_round(outcomes, threshold=0.25, round=0) == ["one"]
    assert "one" in buf and "none" not in buf and "two" not in buf and len(buf) == 1
    assert buf.solutions("one") == [OK1]
    assert buf.rounds == [{"round": 0, "rule": "code", "threshold": 0.25, "problems_seen": 3,
                           "registered": 1, "new_solutions": 1}]
    # a looser threshold takes the 2/4 problem with ALL its correct responses
    assert ReplayBuffer().register_round(outcomes, threshold=0.5) == ["one", "two"]
    both = ReplayBuffer()
    both.register_round(outcomes, threshold=0.5)
    assert both.solutions("two") == [OK1, OK2]
    with pytest.raises(KeyError, match="not in the replay buffer"):
        buf.solutions("two")


def test_register_paper_rule_uses_the_fresh_rate_strictly():
    outcomes = {"a": [(OK1, True), (OK2, True)],   # 100 % at rollout time: code would skip it
                "b": [(OK3, True), (BAD, False)],
                "c": [(BAD, False)]}
    buf = ReplayBuffer()
    got = buf.register_round(outcomes, rule="paper", round=2,
                             fresh_rates={"a": 0.0, "b": 0.25, "c": 0.0})
    assert got == ["a"]  # b: 0.25 is not < 0.25; c: no correct solution
    assert buf.solutions("a") == [OK1, OK2] and buf.entries("a")[0].round == 2
    assert ReplayBuffer().register_round(outcomes, rule="code") == []
    with pytest.raises(KeyError, match="fresh_rates lacks 1 problems.*b"):
        ReplayBuffer().register_round(outcomes, rule="paper", fresh_rates={"a": 0.0})
    with pytest.raises(ValueError, match="needs fresh_rates"):
        ReplayBuffer().register_round(outcomes, rule="paper")
    with pytest.raises(ValueError, match="rule must be"):
        ReplayBuffer().register_round(outcomes, rule="both")


def test_duplicates_are_dropped_and_the_first_round_kept():
    buf = ReplayBuffer()
    round0 = {"p": [(OK1, True, "sol one"), (OK1, True, "sol one")] + [(BAD, False)] * 6}
    buf.register_round(round0, round=0)
    assert buf.solutions("p") == [OK1]  # the same token sequence twice = one solution
    round1 = {"p": [(OK1, True), (OK2, True)] + [(BAD, False)] * 6}
    buf.register_round(round1, round=1)
    assert [(s.response_ids, s.round, s.text) for s in buf.entries("p")] == [
        (OK1, 0, "sol one"), (OK2, 1, None)]
    assert buf.rounds[-1]["new_solutions"] == 1 and buf.n_solutions == 2
    with pytest.raises(ValueError, match="empty response"):
        buf.add("p", [], round=0)


def test_json_round_trip_and_merge_across_rounds(tmp_path):
    r0, r1 = ReplayBuffer(), ReplayBuffer()
    r0.register_round({"a": [(OK1, True, "t")] + [(BAD, False)] * 3}, round=0)
    r1.register_round({"a": [(OK1, True), (OK2, True)] + [(BAD, False)] * 6,
                       "b": [(OK3, True)] + [(BAD, False)] * 3}, round=1)
    assert ReplayBuffer.from_json(r0.to_json()) == r0
    merged = ReplayBuffer().merge(r0).merge(r1)
    assert merged.ids() == ["a", "b"] and len(merged) == 2
    assert [(s.response_ids, s.round) for s in merged.entries("a")] == [(OK1, 0), (OK2, 1)]
    assert [r["round"] for r in merged.rounds] == [0, 1]
    path = merged.save(tmp_path / "buffer.json")
    again = ReplayBuffer.load(path)
    assert again == merged and again.entries("a")[0].text == "t"
    assert json.loads(path.read_text())["format"] == "dslib.replay"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["buffer.json"]  # no temp file left


@pytest.mark.parametrize(
    ("corrupt", "message"),
    [
        (lambda text: text[: len(text) // 2], r"corrupt replay buffer \(not valid JSON"),
        (lambda text: text.replace('"dslib.replay"', '"something.else"'),
         r"not a dslib replay buffer \(format 'something.else'"),
        (lambda text: text.replace('"version": 1', '"version": 2'),
         r"unknown replay buffer version 2"),
        (lambda text: text.replace('"round": 0', '"round": "zero"'), r"problem 'a', solution 0"),
        (lambda text: "[1, 2]", r"not a dslib replay buffer"),
    ],
)
def test_bad_file_is_a_clear_error_and_stays_untouched(tmp_path, corrupt, message):
    path = tmp_path / "buffer.json"
    buf = ReplayBuffer()
    buf.register_round({"a": [(OK1, True)] + [(BAD, False)] * 3}, round=0)
    buf.save(path)
    path.write_text(corrupt(path.read_text()))
    before, stat = path.read_bytes(), path.stat()
    with pytest.raises(ReplayBufferError, match=message) as info:
        ReplayBuffer.load(path)
    assert str(path) in str(info.value)
    assert path.read_bytes() == before and path.stat().st_mtime_ns == stat.st_mtime_ns
    assert sorted(p.name for p in tmp_path.iterdir()) == ["buffer.json"]


def test_fault_token_ids_outside_the_vocabulary_or_of_wrong_type(tmp_path):
    """Fault 6: a buffer whose ids the model cannot embed (another tokenizer's), or whose ids
    are not integers: an error naming the file, the entry and what to do, raised when the
    trainer starts (before its policy is built), not deep inside torch."""
    from types import SimpleNamespace

    from dslib.trainer import Trainer

    path = tmp_path / "buffer.json"
    buf = ReplayBuffer()
    buf.add("a", OK1, round=0)
    buf.add("b", [7, 70000, EOS], round=0)
    buf.save(path)
    ReplayBuffer.load(path).check_token_ids(70001)  # fits a vocabulary of 70001
    with pytest.raises(ReplayBufferError, match=r"problem 'b', solution 0: token id 70000 is "
                                                r"outside the tokenizer's vocabulary \(0\.\.63\)"):
        ReplayBuffer.load(path).check_token_ids(64)
    with pytest.raises(ReplayBufferError, match="problem 'a', solution 0: token id -1"):
        _with(ReplayBuffer(), "a", [-1, EOS]).check_token_ids(64)
    cfg = update(TrainConfig(), {"rollout.replay_buffer": str(path)})
    task = SimpleNamespace(tokenizer=[None] * 64)  # a tokenizer of 64 ids
    with pytest.raises(ReplayBufferError, match=rf"{path}: problem 'b'.*rebuild it"):
        Trainer(cfg, tmp_path / "run", model=object(), task=task, progress=False)
    path.write_text(path.read_text().replace("70000", '"7"'))
    with pytest.raises(ReplayBufferError, match=r"problem 'b', solution 0: bad entry "
                                                r"\(response_ids must be .*rebuild the buffer"):
        ReplayBuffer.load(path)


def _with(buf: ReplayBuffer, pid: str, ids: list[int]) -> ReplayBuffer:
    buf.add(pid, ids, round=0)
    return buf


def test_non_utf8_file_is_a_clear_error(tmp_path):
    path = tmp_path / "buffer.json"
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ReplayBufferError, match="not UTF-8"):
        ReplayBuffer.load(path)
    assert path.read_bytes() == b"\xff\xfe\x00garbage"


def test_interrupted_save_leaves_the_old_file_intact(tmp_path, monkeypatch):
    path = tmp_path / "buffer.json"
    old = ReplayBuffer()
    old.register_round({"a": [(OK1, True)] + [(BAD, False)] * 3}, round=0)
    old.save(path)
    before = path.read_bytes()
    new = ReplayBuffer().merge(old)
    new.register_round({"b": [(OK2, True)] + [(BAD, False)] * 3}, round=1)

    def killed(*args, **kwargs):
        raise KeyboardInterrupt  # the process dies between writing and swapping

    monkeypatch.setattr(os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        new.save(path)
    monkeypatch.undo()
    assert path.read_bytes() == before and ReplayBuffer.load(path) == old
    assert sorted(p.name for p in tmp_path.iterdir()) == ["buffer.json"]


# ----------------------------------------------------------------------------- hybrid groups

ITEM = FakeProblem(prompt_ids=[7, 8], id="p")


def _fresh(n_wrong: int = 1) -> list:
    return [seg([9, WRONG, EOS], lp=-0.5)] * n_wrong + [
        seg([9, CORRECT, EOS], lp=-0.25), seg([9, 9, 9, 9], lp=-1.0, finished=False)]


def test_hybrid_k_less_than_n_replaces_the_first_direct_rollouts():
    cfg = TreeGRPOConfig()
    # code path: n = 3 rollouts sampled, the first k = 1 overwritten by the cached solution
    group = hybrid_group(ITEM, [OK1], _fresh(), fake_verifier, cfg, incomplete_score=-0.5)
    assert [s.response_ids for s in group] == [OK1, [9, CORRECT, EOS], [9, 9, 9, 9]]
    assert [s.score for s in group] == [1.0, 1.0, -0.5] and [s.correct for s in group] == [
        True, True, False]
    # mu = (1 + 1 - 0.5) / 3 = 0.5: A = 0.5, 0.5, -1.0 on every token
    assert [s.advantages for s in group] == [[0.5] * 3, [0.5] * 3, [-1.0] * 4]
    assert group[0].behaviour_logprobs == [0.0] * 3  # unknown: recomputed by the trainer
    assert group[1].behaviour_logprobs == [-0.25] * 3
    assert all(s.prompt_ids == [7, 8] for s in group)
    assert [s.cached for s in group] == [True, False, False]
    assert all(s.step_ids == [0] * len(s.response_ids) for s in group)
    # economical path: only the n - k = 2 needed rollouts were sampled -> the same group
    again = hybrid_group(ITEM, [OK1], _fresh()[1:], fake_verifier, cfg, incomplete_score=-0.5,
                         n=3)
    assert again == group


def test_hybrid_k_equal_and_greater_than_n_has_no_fresh_members():
    cfg = TreeGRPOConfig()
    full = hybrid_group(ITEM, [OK1, BAD, OK2], [], fake_verifier, cfg, n=3)
    # the cached wrong one is re-verified, not trusted: scores 1, -1, 1, mu = 1/3
    assert [s.response_ids for s in full] == [OK1, BAD, OK2]
    assert [s.correct for s in full] == [True, False, True]
    assert [s.advantages[0] for s in full] == pytest.approx([2 / 3, -4 / 3, 2 / 3])
    over = hybrid_group(ITEM, [OK1, OK2, OK3, OK4, OK5], _fresh(), fake_verifier, cfg)
    assert [s.response_ids for s in over] == [OK1, OK2, OK3]  # n = len(fresh) = 3: first 3
    assert all(s.advantages == [0.0] * 3 for s in over)  # all correct: no signal
    with pytest.raises(ValueError, match="need 2 fresh samples"):
        hybrid_group(ITEM, [OK1], _fresh()[2:], fake_verifier, cfg, n=3)
    with pytest.raises(ValueError, match="n >= 1"):
        hybrid_group(ITEM, [OK1], [], fake_verifier, cfg)


def test_hybrid_rewards_include_the_overlong_penalty_and_unfinished_cached():
    cfg = TreeGRPOConfig(overlong_buffer=2, max_response_tokens=4)
    # cached [9, 9] has no answer and no EOS: incomplete (-0.5); 2 tokens, no penalty
    # fresh [9, CORRECT, EOS]: +1 and p_over(3) = -(3 - 2) / 2 = -0.5 -> 0.5
    group = hybrid_group(ITEM, [[9, 9]], [seg([9, CORRECT, EOS])], fake_verifier, cfg,
                         incomplete_score=-0.5, n=2, eos_token_id=EOS)
    assert [s.score for s in group] == [-0.5, 1.0]
    mu = (-0.5 + 0.5) / 2
    assert group[0].advantages == [-0.5 - mu] * 2 and group[1].advantages == [0.5 - mu] * 3


def _cached(buf: ReplayBuffer, n: int = 3) -> CachedRollout:
    """Cached groups standing in for flat groups of ``n`` samples capped at 6 tokens."""
    return CachedRollout(buf, FlatRollout(n, 6, 1.0, TreeGRPOConfig()), TreeGRPOConfig())


def test_cached_groups_sample_only_what_each_group_needs_in_one_call():
    buf = ReplayBuffer()
    for pid, sols in {"a": [OK1], "b": [OK1, OK2, OK3], "c": [OK1, OK2, OK3, OK4, OK5]}.items():
        for s in sols:
            buf.add(pid, s, round=0)
    items = [FakeProblem([i + 1], id=pid) for i, pid in enumerate("dabc")]
    policy = ScriptedPolicy(script=lambda prefix, j, m: seg([9, WRONG, EOS]))
    cached = _cached(buf)
    groups = cached(items, policy, fake_verifier)
    assert [g.problem_id for g in groups] == ["a", "b", "c"]  # "d" is not buffered
    assert [it in cached for it in items] == [False, True, True, True]
    assert len(policy.calls) == 1
    assert policy.calls[0].prefixes == [[2], [3], [4]] and policy.calls[0].counts == [2, 0, 0]
    assert policy.calls[0].max_new_tokens == 6  # the flat strategy's cap
    assert [len(g.samples) for g in groups] == [3, 3, 3]
    assert [s.response_ids for s in groups[0].samples] == [OK1, [9, WRONG, EOS], [9, WRONG, EOS]]
    assert [g.sampled_tokens for g in groups] == [6, 0, 0]
    assert [g.stats for g in groups] == [
        {"cached_members": 1, "fresh_members": 2, "saved_tokens_estimate": 3},
        {"cached_members": 3, "fresh_members": 0, "saved_tokens_estimate": 9},
        {"cached_members": 3, "fresh_members": 0, "saved_tokens_estimate": 9}]
    # every group already full: no sampling call at all
    policy.calls.clear()
    assert len(cached(items[2:], policy, fake_verifier)) == 2 and policy.calls == []


# ----------------------------------------------------------------------------- hygiene


def test_hygiene_passes_normal_solutions():
    for text in ["6*5=30\n30-4=26\n\\boxed{6*5-4}",
                 "Since x ≤ 5 and π ≈ 3.14, 2π·x ≤ 31.4 ✓ — so \\boxed{31.4}",
                 "=" * 60 + "\nStep 1\n" + "-" * 60,  # layout rules are not loops
                 "\n".join(f"{a}*{b}={a * b}, {a * b}-{b}={a * b - b}"
                           for a in range(3, 40) for b in (2, 5, 8))]:
        assert is_degenerate(text) is None, text[:40]


def test_hygiene_flags_repetition():
    assert is_degenerate("1+1=2\n" * 20) == "repetition"
    assert hygiene.repeated_block("1+1=2\n" * 20) == (6, 120)
    assert is_degenerate("The answer is 4. " + "0" * 45) == "repetition"
    assert is_degenerate("1+1=2\n" * 5) is None  # 5 repeats: below min_repeats = 10
    # a 150-character paragraph looped: too long a block for the scan, caught by zlib
    para = ("We differentiate f(x) = x^3 - 2x + 7 and set the result to zero; this gives "
            "3x^2 - 2 = 0, hence x equals plus or minus sqrt(2/3), as claimed. ")
    assert len(para) > 100 and hygiene.repeated_block(para * 10) is None
    assert hygiene.compression_ratio(para * 10) < 0.1 and is_degenerate(para * 10) == "repetition"


def test_hygiene_flags_garbled_text():
    rng = random.Random(0)
    junk = "".join(chr(rng.choice([rng.randint(0x4E00, 0x9FFF), rng.randint(0xE000, 0xF8FF),
                                   rng.randint(0x1F300, 0x1F6FF), rng.randint(0x01, 0x1F)]))
                   for _ in range(200))
    assert is_degenerate(junk) == "garbled"
    assert is_degenerate("6*5=30 " + "\ufffd" * 10) == "garbled"  # 10 / 17 undecodable
    assert is_degenerate("6*5=30\n30-4=26 \ufffd") is None  # one stray character: 1 / 16
    wide = replace(HygieneConfig(), allowed_ranges=((0x4E00, 0x9FFF),))
    assert is_degenerate("答案是" * 2 + "42", wide) is None


# ----------------------------------------------------------------------------- end to end


@pytest.mark.parametrize("mode", ["grpo", "deepsearch"])
def test_cached_groups_go_through_the_real_trainer_step(quick_reasoner, tmp_path, mode):
    """The buffer through ``Trainer(buffer=...)``: counted, sampled, and trained on."""
    from dslib.build import countdown_task
    from dslib.tasks import countdown
    from dslib.trainer import Trainer

    n = 3
    cfg = update(TrainConfig(), {
        "rollout.strategy": {"grpo": "flat", "deepsearch": "tree"}[mode], "run.steps": 1,
        "run.problems_per_step": 4, "rollout.samples_per_problem": n, "optim.lr": 1e-3,
        "optim.warmup_steps": 1, "optim.weight_decay": 0.0, "optim.mini_batches": 2,
        "eval.every": 0, "task.levels": (3,), "eval.levels": (3,), "eval.problems": 2,
        "rollout.max_new_tokens": 32,
        "rollout.search": SearchConfig.tiny(n_trajectories=n, width=2, max_depth=5)})
    task = countdown_task(cfg, quick_reasoner)
    buf = ReplayBuffer()
    trainer = Trainer(cfg, tmp_path / "run", model=quick_reasoner.load_model(), task=task,
                      progress=False, buffer=buf)
    eos = trainer.policy.eos_token_id
    items = trainer.problems_for(0)
    solutions = {}
    for it in items[:2]:  # two of the four problems are buffered; the second with 2 solutions
        ids = task.tokenizer(countdown.solution_text(it.problem),
                             add_special_tokens=False)["input_ids"]
        solutions[it.id] = [list(ids) + [eos], list(ids)][: 1 + len(solutions)]
        for s in solutions[it.id]:
            buf.add(it.id, s, round=0)
    seen = {}
    real_update = trainer.learner.update

    def spy(samples, seed):  # the samples the optimizer really sees
        seen["samples"] = list(samples)
        return real_update(samples, seed)

    trainer.learner.update = spy
    before = {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}
    row = trainer.train_step()
    after = trainer.model.state_dict()

    samples = seen["samples"]
    assert row["cached_groups"] == 2 and row["cache_cached_problems"] == 2
    assert row["cache_fresh_members"] == (n - 1) + (n - 2)
    per_fresh = [sum(s.prompt_ids == it.prompt_ids for s in samples) for it in items[2:]]
    if mode == "grpo":
        assert per_fresh == [n] * 2
        assert row["sequences"] == (4 - 2) * n + 2 * n == 12
    else:  # a tree records up to n_trajectories (fewer if its frontier runs dry)
        assert all(1 <= c <= n for c in per_fresh)
        assert row["search_iterations"] > 0
        assert row["sequences"] == sum(per_fresh) + 2 * n == len(samples)
    groups = {g.problem_id: g for g in trainer.last_groups}
    for it in items[:2]:  # cached members first, re-verified correct, then fresh samples
        mine = groups[str(it.id)].samples
        k = len(solutions[it.id])
        assert groups[str(it.id)].strategy == "cached"
        assert len(mine) == n and [s.response_ids for s in mine[:k]] == solutions[it.id]
        assert all(s.correct and s.score == 1.0 and s.cached for s in mine[:k])
        if not all(s.correct for s in mine):  # a correct cached member beats the mean: A > 0
            assert all(a > 0 for a in mine[0].advantages)
    assert any(a != 0.0 for s in samples for a in s.advantages)
    assert any(not torch.equal(before[k], after[k]) for k in before)  # the update happened
