"""``reproduce/gpu_check.py``: its dry run end to end, and its pure parts on hand-made cases."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
import torch
from transformers import Qwen2Config, Qwen2ForCausalLM

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "reproduce"))
import gpu_check  # noqa: E402

from dslib.verify import Verdict  # noqa: E402

CHECKS = ["logprobs vs fresh forward", "batched vs unbatched greedy", "EOS inside a chunk",
          "checkpoint and exact resume"]


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory) -> tuple[dict, str]:
    out = tmp_path_factory.mktemp("gpu_check") / "report.json"
    env = {**os.environ, "TQDM_DISABLE": "1",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "reproduce" / "gpu_check.py"), "--dry-run", "--out", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads(out.read_text()), proc.stdout


def test_dry_run_report_has_every_part_and_every_check_passed(dry_run):
    report, _ = dry_run
    assert {"command", "dry_run", "device", "versions", "model", "sizes", "memory_kind",
            "checks", "steps", "checkpoint", "projection", "passed", "error", "wall_s"} <= set(
        report)
    assert report["dry_run"] and report["device"] == "cpu" and report["error"] is None
    assert report["memory_kind"].startswith("ru_maxrss")  # the CPU says what it reports
    assert [c["name"] for c in report["checks"]] == CHECKS
    assert all(c["passed"] for c in report["checks"]) and report["passed"]
    resume = report["checks"][3]["detail"]
    assert resume["state_difference"] is None and resume["next_step_samples_equal"]
    assert resume["loss_abs_diff"] == 0.0 and resume["resumed_at_step"] == 1
    assert resume["next_step_loss"][0] != 0.0  # coin verdicts: the update had work to do
    assert report["model"]["arch"]["tie_word_embeddings"] is False
    assert report["model"]["arch"]["vocab_size"] > report["model"]["tokenizer_vocab"]
    assert report["checkpoint"]["bytes"] > 0


def test_dry_run_steps_are_measured_at_the_same_response_cap(dry_run):
    report, _ = dry_run
    sizes = report["sizes"]
    steps = report["steps"]
    assert set(steps) == {"deepsearch", "grpo"}
    for name, s in steps.items():
        assert s["mode"] == name and s["problems"] == sizes["problems"]
        assert s["samples"] == sizes["problems"] * sizes["trajectories"]
        assert s["search_s"] > 0 and s["logprob_s"] > 0 and s["update_s"] > 0
        assert s["search_tokens_per_s"] == pytest.approx(s["sampled_tokens"] / s["search_s"])
        assert s["peak_search_bytes"] > 0 and s["peak_update_bytes"] > 0
    cap = sizes["depth"] * sizes["step_tokens"]
    # random weights never stop early: flat samples and trajectories are all cap long
    assert steps["grpo"]["sampled_tokens"] == sizes["problems"] * sizes["trajectories"] * cap
    assert steps["deepsearch"]["trained_tokens"] == steps["grpo"]["trained_tokens"]
    assert steps["deepsearch"]["sampled_tokens"] > steps["grpo"]["sampled_tokens"]  # a tree
    assert steps["deepsearch"]["search_iterations"] >= sizes["depth"]


def test_dry_run_projection_is_labelled_and_adds_up(dry_run):
    report, printed = dry_run
    p, rate = report["projection"], report["steps"]["deepsearch"]
    assert p["label"] == "projection" and p["from_rates_of"] == "deepsearch"
    assert p["leaves_out"] and "SGLang/vLLM generation" in p["leaves_out"]
    seconds = (p["sampled_tokens_per_step"] / rate["search_tokens_per_s"]
               + p["trained_tokens_per_step"] / rate["logprob_tokens_per_s"]
               + p["trained_tokens_per_step"] / rate["update_tokens_per_s"])
    assert p["gpu_hours"] == pytest.approx(p["recipe"]["steps"] * seconds / 3600)
    assert "PROJECTION (not a measurement)" in printed and "means nothing" in printed
    assert "ALL CHECKS PASSED" in printed
    assert "| batched vs unbatched greedy | PASS |" in printed


def test_projection_by_hand():
    recipe = gpu_check.Recipe(steps=2, problems_per_step=1, iterations_per_tree=1, width=2,
                              step_tokens=10, trajectories=1, trajectory_tokens=30)
    cost = gpu_check.StepCost(
        mode="deepsearch", problems=1, samples=1, search_s=1, logprob_s=1, update_s=1, step_s=3,
        sampled_tokens=10, trained_tokens=30, search_tokens_per_s=10.0,
        logprob_tokens_per_s=30.0, update_tokens_per_s=15.0, peak_search_bytes=0,
        peak_update_bytes=0, loss=0.0, updates=1)
    p = gpu_check.project(cost, recipe)
    # 20 sampled tokens at 10/s, 30 trained at 30/s and at 15/s: 2 + 1 + 2 = 5 s a step
    assert (p["sampled_tokens_per_step"], p["trained_tokens_per_step"]) == (20, 30)
    assert p["gpu_hours"] == pytest.approx(2 * 5 / 3600)
    assert p["gpu_hours_by_phase"]["update"] == pytest.approx(2 * 2 / 3600)
    zero = gpu_check.dataclasses.replace(cost, update_tokens_per_s=0.0)
    assert "error" in gpu_check.project(zero, recipe)


def test_the_1p5b_architecture_has_the_released_models_size():
    with torch.device("meta"):
        model = Qwen2ForCausalLM(Qwen2Config(**gpu_check.ARCH_1P5B))
    # untied: 2 x 151,936 x 1,536 embeddings + 28 x 46,797,824 per layer + the final norm
    assert sum(p.numel() for p in model.parameters()) == 1_777_088_000
    cfg = model.config
    assert (cfg.hidden_size, cfg.num_hidden_layers, cfg.num_attention_heads,
            cfg.num_key_value_heads, cfg.vocab_size, cfg.intermediate_size) == (
        1536, 28, 12, 2, 151_936, 8960)


@pytest.mark.parametrize("a, b, k", [
    ([1, 2, 3], [1, 2, 3], None), ([1, 2, 3], [1, 5, 3], 1), ([1, 2], [1, 2, 9], 2),
    ([], [], None), ([4], [5], 0),
])
def test_parting(a, b, k):
    assert gpu_check.parting(a, b) == k


def test_first_difference_names_the_first_differing_entry():
    a = {"model": {"w": torch.ones(2)}, "learner": {"state": [torch.zeros(3), 4]}, "step": 1}
    same = {"model": {"w": torch.ones(2)}, "learner": {"state": [torch.zeros(3), 4]}, "step": 1}
    assert gpu_check.first_difference(a, same) is None
    flipped = {**same, "learner": {"state": [torch.tensor([0.0, 1e-30, 0.0]), 4]}}
    assert gpu_check.first_difference(a, flipped) == "/learner/state[0]: values differ"
    assert "float64" in gpu_check.first_difference(
        a, {**same, "model": {"w": torch.ones(2, dtype=torch.float64)}})
    assert gpu_check.first_difference(a, {**same, "step": 2}) == "/step: 1 vs 2"
    assert gpu_check.first_difference(a, {**same, "model": {}}).startswith("/model: keys")


def test_coin_verifier_is_a_function_of_the_tokens():
    calls = []

    def grader(item, ids):
        calls.append(list(ids))
        return Verdict(False, None, "no_answer")

    coin = gpu_check.CoinVerifier(grader)
    for ids in ([1, 2, 3], [7], [10, 20]):
        heads = zlib.crc32(",".join(map(str, ids)).encode()) % 2 == 1
        v = coin(None, ids)
        assert (v.correct, v.reason) == (heads, "ok" if heads else "wrong")
    assert calls == [[1, 2, 3], [7], [10, 20]]  # the real grader still ran on each
    assert {coin(None, [i]).correct for i in range(20)} == {True, False}
