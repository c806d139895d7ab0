"""The tiny reasoner: tokenizer round trip, checkpoint loading, cache, and its difficulty regime."""

from __future__ import annotations

import json
from dataclasses import asdict, replace

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedTokenizerFast

from dslib import tiny
from dslib.evaluate import pass_at_k
from dslib.policy.hf import HFPolicy, sequence_logprobs
from dslib.tasks import countdown
from dslib.tasks.base import TokenVerifier, chat_prompt_ids, prompt_all


def test_config_hash_is_stable_and_sensitive():
    a, b = tiny.TinyConfig(), tiny.TinyConfig()
    assert a.key() == b.key()
    assert replace(a, sft_steps=a.sft_steps + 1).key() != a.key()


def test_splits_are_disjoint_by_key():
    cfg = replace(tiny.TinyConfig(), problems_per_level=400)
    for level in cfg.levels:
        keys = {s: {p.key for p in tiny.task_problems(cfg, level, s)} for s in cfg.fractions()}
        assert keys["sft"] and keys["test"]
        assert not keys["sft"] & keys["test"]
        assert not keys["sft"] & keys["rl"]
        assert not keys["rl"] & keys["test"]
    with pytest.raises(ValueError):
        tiny.task_problems(cfg, 3, "validation")


def test_checkpoint_loads_with_auto_classes(quick_reasoner):
    path = quick_reasoner.path
    for name in ("config.json", "model.safetensors", "tokenizer.json", "build_info.json"):
        assert (path / name).exists(), name
    auto_tok = AutoTokenizer.from_pretrained(str(path))
    fast_tok = PreTrainedTokenizerFast.from_pretrained(str(path))
    problem = quick_reasoner.problems(5, "test", 1)[0]
    text = countdown.prompt_text(problem) + "\n" + countdown.solution_text(problem)
    # the Qwen2Tokenizer that AutoTokenizer returns must give the trained tokenizer's ids
    assert auto_tok(text)["input_ids"] == fast_tok(text)["input_ids"]
    assert auto_tok.decode(auto_tok(text)["input_ids"]) == text
    assert auto_tok.eos_token == "<|im_end|>"
    ids = chat_prompt_ids(auto_tok, countdown.prompt_text(problem))
    rendered = auto_tok.decode(ids)
    assert rendered.startswith("<|im_start|>user\nNumbers:")
    assert rendered.endswith("<|im_start|>assistant\n")
    model = AutoModelForCausalLM.from_pretrained(str(path))
    n_params = sum(p.numel() for p in model.parameters())
    assert n_params == quick_reasoner.info["parameters"]
    assert model.generation_config.eos_token_id == auto_tok.eos_token_id


def test_cached_build_is_reused(quick_reasoner):
    again = tiny.build(
        quick_reasoner.config, evaluate=False, progress=False,
        cache_dir=quick_reasoner.path.parent,
    )
    assert again.path == quick_reasoner.path
    assert again.info["key"] == quick_reasoner.config.key()


def test_sft_lowers_the_loss(quick_reasoner):
    info = quick_reasoner.info
    assert info["initial_loss"] > 4.0  # about ln(vocab) = 5.8 at initialisation
    assert info["final_loss"] < 0.6 * info["initial_loss"]


def test_policy_logprobs_match_training_forward_on_tiny_model(quick_reasoner):
    policy = quick_reasoner.load_policy(seed=0)
    tok = quick_reasoner.load_tokenizer()
    items = prompt_all(tok, quick_reasoner.problems(4, "test", 6), countdown.prompt_text)
    out = policy.sample([it.prompt_ids for it in items], n=3, max_new_tokens=24)
    worst = 0.0
    with torch.no_grad():
        for it, segs in zip(items, out):
            for seg in segs:
                ref = sequence_logprobs(policy.model, it.prompt_ids, seg.token_ids)
                worst = max(worst, (ref - torch.tensor(seg.logprobs)).abs().max().item())
    assert worst <= 1e-5


def test_pass_at_k_estimator():
    assert pass_at_k(8, 0, 4) == 0.0
    assert pass_at_k(8, 8, 1) == 1.0
    assert pass_at_k(8, 2, 1) == pytest.approx(0.25)
    # 1 - C(6,4)/C(8,4) = 1 - 15/70
    assert pass_at_k(8, 2, 4) == pytest.approx(1 - 15 / 70)
    assert pass_at_k(8, 5, 4) == 1.0
    with pytest.raises(ValueError):
        pass_at_k(4, 5, 1)


def test_default_reasoner_is_in_the_plateau_regime(tiny_reasoner):
    """Easy problems solved sometimes, hard ones almost never: where flat GRPO stalls.

    Measured on the default build: pass@1 0.21 / 0.09 / 0.03 for 3 / 4 / 5 numbers (below
    the 0.40 aimed at for the easy level; see the README). Bounds leave room for the
    sampling error of 100 problems x 8 samples (about 0.03).
    """
    rows = {r["level"]: r for r in tiny_reasoner.info["difficulty_table"]}
    assert rows[3]["pass@1"] >= 0.12
    assert rows[3]["pass@4"] >= 0.30
    assert rows[3]["pass@1"] > rows[4]["pass@1"] >= rows[5]["pass@1"]
    assert rows[5]["share_le_25pct"] >= 0.9  # the plateau: hard groups are (nearly) all wrong
    assert rows[5]["answer_rate"] >= 0.9  # the format is learned: a boxed answer almost always
    for r in rows.values():  # the line columns: a subset of the box's successes, and shares
        assert 0.0 <= r["steps_pass@1"] <= r["pass@1"]
        assert r["lines_valid_if_correct"] is None or 0.0 <= r["lines_valid_if_correct"] <= 1.0
        assert r["first_line_valid"] >= 0.5  # the model writes valid first steps most of the time
    json.dumps(tiny_reasoner.info)


def test_line_tally_counts_what_the_lines_are_worth():
    """By hand: valid lines and box; a right box over a wrong line; a wrong box."""
    p = countdown.Problem("x", (3, 5, 6), 27, ((6, "*", 5, 30), (30, "-", 3, 27)), "6*5-3")
    tally = tiny._LineTally()
    verdicts = [tally(p, text) for text in (
        "6*5=30\n30-3=27\n\\boxed{6*5-3}",   # lines valid, box right
        "6*5=31\n31-3=28\n\\boxed{6*5-3}",   # box right, lines wrong (first line too)
        "6*5=30\n30+3=33\n\\boxed{6*5+3}",   # box wrong, first line valid
    )]
    assert [v.correct for v in verdicts] == [True, True, False]  # the box decides
    assert (tally.samples, tally.box, tally.steps, tally.box_and_steps, tally.first_line) == (
        3, 2, 1, 1, 2)


def test_difficulty_table_is_reproducible(quick_reasoner):
    a = tiny.difficulty_table(quick_reasoner, n_problems=6, n_samples=4, progress=False)
    b = tiny.difficulty_table(quick_reasoner, n_problems=6, n_samples=4, progress=False)
    assert a == b
    assert "| numbers |" in tiny.format_table(a)
    assert "steps pass@1" in tiny.format_table(a)
    old = [{k: v for k, v in r.items() if k not in ("steps_pass@1", "first_line_valid")}
           for r in a]
    assert "| - |" in tiny.format_table(old)  # older builds' tables print, lacking columns


def test_token_verifier_decodes_and_checks(quick_reasoner):
    tok = quick_reasoner.load_tokenizer()
    p = quick_reasoner.problems(3, "test", 1)[0]
    item = prompt_all(tok, [p], countdown.prompt_text)[0]
    verifier = TokenVerifier(tok, countdown.verify)
    good = tok(countdown.solution_text(p), add_special_tokens=False)["input_ids"] + [
        tok.eos_token_id
    ]
    assert verifier(item, good).correct
    assert verifier(item, good[:3]).reason == "no_answer"
    assert isinstance(HFPolicy, type)


def test_difficulty_table_scores_the_chosen_split(quick_reasoner):
    sft = tiny.difficulty_table(quick_reasoner, n_problems=5, n_samples=4, progress=False,
                                split="sft")
    assert {r["split"] for r in sft} == {"sft"}
    assert [r["problems"] for r in sft] == [
        len(quick_reasoner.problems(level, "sft", 5)) for level in quick_reasoner.config.levels
    ]
    with pytest.raises(ValueError, match="unknown split"):
        tiny.difficulty_table(quick_reasoner, n_problems=2, n_samples=4, progress=False,
                              split="train")


def test_default_reasoner_memorises_its_sft_problems(tiny_reasoner):
    """The easy level is solved far more often on problems the SFT saw than on held-out ones.

    This is why held-out easy-level pass@1 stays near 0.2 (README, "The tiny reasoner"): with
    numbers 1..6 there are only 577 three-number problems and the SFT sees 369 of them.
    """
    def pass1(split: str) -> dict[int, float]:
        rows = tiny.difficulty_table(
            tiny_reasoner, n_problems=60, n_samples=8, progress=False, split=split
        )
        return {r["level"]: r["pass@1"] for r in rows}

    seen, held = pass1("sft"), pass1("test")
    assert seen[3] > held[3] + 0.08


def test_allow_times_one_widens_the_generated_problems():
    """The generator rule is a build field: off, no reference step multiplies by 1; on, the
    3-number space grows from 577 to 623 problems and some solutions need ``x*1``."""
    def pool(cfg: tiny.TinyConfig) -> list:
        return [p for s in ("sft", "rl", "test") for p in tiny.task_problems(cfg, 3, s)]

    strict = pool(tiny.TinyConfig())
    loose = pool(replace(tiny.TinyConfig(), allow_times_one=True))
    assert (len(strict), len(loose)) == (577, 623)
    assert not any(op == "*" and b == 1 for p in strict for _, op, b, _ in p.steps)
    times_one = [p for p in loose if any(op == "*" and b == 1 for _, op, b, _ in p.steps)]
    assert times_one and all(countdown.verify(p, countdown.solution_text(p)).correct
                             for p in times_one)
    assert tiny.TinyConfig().key() != replace(tiny.TinyConfig(), allow_times_one=True).key()


def test_cache_key_covers_code_versions_and_machine(monkeypatch):
    """The key changes with the build code, a library version or the CPU kernels."""
    cfg = tiny.TinyConfig()
    env = tiny.build_environment()
    assert set(env) >= {"code", "torch", "transformers", "tokenizers", "cpu_kernels"}
    key = cfg.key()
    for field_name, value in [("code", "0" * 16), ("torch", "0.0"), ("cpu_kernels", "AVX2")]:
        monkeypatch.setattr(tiny, "build_environment", lambda f=field_name, v=value: {**env, f: v})
        assert cfg.key() != key, field_name
    monkeypatch.setattr(tiny, "build_environment", lambda: dict(env))
    assert cfg.key() == key


def test_build_uses_its_own_thread_count_and_restores_the_callers(tmp_path, monkeypatch):
    import torch

    seen = []
    monkeypatch.setattr(tiny, "_build", lambda cfg, *a: seen.append(torch.get_num_threads()))
    before = torch.get_num_threads()
    tiny.build(replace(tiny.TinyConfig(), threads=1), cache_dir=tmp_path)
    assert seen == [1] and torch.get_num_threads() == before
    assert replace(tiny.TinyConfig(), threads=1).key() != tiny.TinyConfig().key()


def test_config_or_exit_names_the_option():
    assert tiny.config_or_exit(["sft_steps=9"]).sft_steps == 9
    with pytest.raises(SystemExit, match="--set 'sft_stepz=9': unknown field 'sft_stepz' of "
                                         "TinyConfig; did you mean sft_steps"):
        tiny.config_or_exit(["sft_stepz=9"], "--set")


def test_solution_style_is_a_checked_build_field(tmp_path):
    """``backward`` changes the SFT text and the cache key; an unknown style is refused; a
    build_info without the field (an older dslib's build) is a clear error."""
    back = tiny.override(tiny.TinyConfig(), ["solution_style=backward"])
    assert back.key() != tiny.TinyConfig().key()
    first = tiny._level_pool(back, 3)[0]  # corpus_lines starts with it
    for cfg in (back, tiny.TinyConfig()):
        text = countdown.solution_text(first, cfg.solution_style)
        assert tiny.corpus_lines(cfg)[0].endswith(f"assistant\n{text}<|im_end|>\n")
    with pytest.raises(ValueError, match="solution_style must be one of .*got 'sideways'"):
        tiny.override(tiny.TinyConfig(), ["solution_style=sideways"])
    with pytest.raises(SystemExit, match="--tiny"):
        tiny.config_or_exit(["solution_style=sideways"])
    (tmp_path / "config.json").write_text("{}")
    info = {"config": asdict(back)}
    (tmp_path / "build_info.json").write_text(json.dumps(info))
    built = tiny.TinyReasoner.from_dir(tmp_path)
    assert built.config == back and built.solution_text(first).startswith(f"{first.target}=")
    del info["config"]["solution_style"]
    (tmp_path / "build_info.json").write_text(json.dumps(info))
    with pytest.raises(ValueError, match=r"build_info.json.*lacks \['solution_style'\].*rebuild"):
        tiny.TinyReasoner.from_dir(tmp_path)


def test_sft_examples_follow_the_solution_style(quick_reasoner):
    tok = quick_reasoner.load_tokenizer()
    for style in countdown.SOLUTION_STYLES:
        cfg = replace(quick_reasoner.config, solution_style=style)
        problem = tiny.task_problems(cfg, 4, "sft")[0]
        _, response = tiny.sft_examples(cfg, tok)[4][0]
        assert response[-1] == tok.eos_token_id
        assert tok.decode(response[:-1]) == countdown.solution_text(problem, style)
