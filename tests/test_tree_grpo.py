"""Tree-GRPO rewards, advantages and loss (docs/paper-notes.md#tree-grpo) against hand-computed
numbers, plus a cross-check of the loss against TRL's GRPOTrainer (loss_type="dapo")."""

import contextlib
import math
import types
from collections import defaultdict
from types import SimpleNamespace

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dslib.search import Trajectory
from dslib.tree import Tree
from dslib.tree_grpo import (
    TreeGRPOConfig,
    advantages,
    aggregation_count,
    clipped_surrogate,
    group_advantages,
    node_rewards,
    outcome_token_rewards,
    overlong_penalty,
    policy_loss,
    step_ids_from_spans,
    token_rewards,
    tree_terminal_scores,
)

TANH_05 = 0.46211715726000974  # tanh(0.5)
TANH_025 = 0.24491866240370913  # tanh(0.25)
TANH_06 = 0.5370495669980353  # tanh(0.6)


def fake_traj(values, lengths, score=None):
    """A Trajectory look-alike: nodes of the given token lengths and accumulated values."""
    spans, start = [], 0
    for n in lengths:
        spans.append((start, start + n))
        start += n
    return SimpleNamespace(
        response_ids=list(range(start)),
        node_spans=spans,
        node_values=list(values),
        score=values[-1] if score is None else score,
    )


# ---------------------------------------------------------------- config


@pytest.mark.parametrize(
    "kwargs",
    [
        {"reward": "dense"},
        {"baseline": "terminals"},
        {"loss_agg": "token-mean"},
        {"eps_q": 0.0},
        {"overlong_buffer": 4},  # no max_response_tokens
        {"overlong_buffer": 8, "max_response_tokens": 4},
        {"clip_low": 1.0},
        {"dual_clip": 1.0},
    ],
)
def test_config_rejects_bad_values(kwargs):
    with pytest.raises(ValueError, match="TreeGRPOConfig"):
        TreeGRPOConfig(**kwargs)


def test_config_defaults_follow_the_code():
    cfg = TreeGRPOConfig()
    assert (cfg.reward, cfg.baseline, cfg.std_norm, cfg.loss_agg) == (
        "fine",
        "recorded",
        False,
        "token_mean",
    )
    assert (cfg.clip_low, cfg.clip_high, cfg.dual_clip, cfg.eps_q, cfg.q_max) == (
        0.2,
        0.28,
        10.0,
        1.0,
        1.0,
    )
    assert cfg.overlong_buffer is None and overlong_penalty(10**6, cfg) == 0.0
    run = TreeGRPOConfig.paper_1p5b()
    assert (run.overlong_buffer, run.max_response_tokens) == (4096, 16384)
    # the released run: 0 up to 12288 tokens, -0.5 half-way through the buffer, -1 at the cap
    assert overlong_penalty(12288, run) == 0.0
    assert overlong_penalty(14336, run) == -0.5
    assert overlong_penalty(16384, run) == -1.0


# ------------------------------------------------ token rewards (docs/paper-notes.md#token-rewards)

THREE_NODES = fake_traj([0.5, -0.25, 1.0], [2, 3, 1])  # nodes of 2, 3, 1 tokens; correct leaf


def test_fine_rewards_soft_clip_intermediate_nodes_only():
    rewards = token_rewards(THREE_NODES, TreeGRPOConfig())
    assert rewards == pytest.approx([TANH_05] * 2 + [-TANH_025] * 3 + [1.0], abs=1e-15)
    # eps_q = 2, q_max = 0.5: tanh(0.25) * 0.5 and tanh(-0.125) * 0.5; the terminal stays raw
    rewards = token_rewards(THREE_NODES, TreeGRPOConfig(eps_q=2.0, q_max=0.5))
    tanh_0125 = 0.12435300177159619
    assert rewards == pytest.approx(
        [TANH_025 * 0.5] * 2 + [-tanh_0125 * 0.5] * 3 + [1.0], abs=1e-15
    )


def test_coarse_and_fine_raw_rewards():
    assert token_rewards(THREE_NODES, TreeGRPOConfig(reward="coarse")) == [1.0] * 6
    assert token_rewards(THREE_NODES, TreeGRPOConfig(reward="fine_raw")) == (
        [0.5] * 2 + [-0.25] * 3 + [1.0]
    )
    # a large accumulated q saturates with the soft clip, not without it
    assert node_rewards([3.0, -1.0], TreeGRPOConfig()) == pytest.approx([0.9950547536867305, -1])
    assert node_rewards([3.0, -1.0], TreeGRPOConfig(reward="fine_raw")) == [3.0, -1.0]
    with pytest.raises(ValueError, match="at least one"):
        node_rewards([], TreeGRPOConfig())


def test_token_rewards_check_the_spans():
    bad = fake_traj([0.5, 1.0], [2, 2])
    bad.response_ids = bad.response_ids[:3]
    with pytest.raises(ValueError, match="tile"):
        token_rewards(bad, TreeGRPOConfig())
    bad = fake_traj([0.5, 1.0], [2, 2])
    bad.node_values = [1.0]
    with pytest.raises(ValueError, match="spans"):
        token_rewards(bad, TreeGRPOConfig())


@pytest.mark.parametrize(
    "length, factor, expected",
    [
        (3, 1.0, 0.0),  # well below the buffer
        (6, 1.0, 0.0),  # the buffer starts at max - buffer = 6
        (7, 1.0, -0.25),  # linear inside the buffer
        (8, 1.0, -0.5),
        (10, 1.0, -1.0),  # at the cap: -factor
        (10, 0.5, -0.5),
        (8, 0.5, -0.25),
    ],
)
def test_overlong_penalty_boundaries(length, factor, expected):
    cfg = TreeGRPOConfig(overlong_buffer=4, max_response_tokens=10, overlong_factor=factor)
    assert overlong_penalty(length, cfg) == pytest.approx(expected, abs=1e-15)


def test_overlong_penalty_is_added_to_every_token():
    cfg = TreeGRPOConfig(overlong_buffer=4, max_response_tokens=8)  # starts at 4; 6 tokens: -0.5
    assert token_rewards(THREE_NODES, cfg) == pytest.approx(
        [TANH_05 - 0.5] * 2 + [-TANH_025 - 0.5] * 3 + [0.5], abs=1e-15
    )
    assert (
        token_rewards(
            THREE_NODES, TreeGRPOConfig(reward="coarse", overlong_buffer=4, max_response_tokens=8)
        )
        == [0.5] * 6
    )
    assert outcome_token_rewards(6, -1.0, cfg) == [-1.5] * 6
    assert outcome_token_rewards(3, 1.0, TreeGRPOConfig()) == [1.0] * 3


def test_step_ids_from_spans():
    assert step_ids_from_spans([(0, 2), (2, 5), (5, 6)], 8) == [0, 0, 1, 1, 1, 2, -1, -1]
    with pytest.raises(ValueError, match="outside"):
        step_ids_from_spans([(0, 4)], 3)


# ------------------------------------------------------- advantages (docs/paper-notes.md#advantage)


def test_advantages_code_baseline_is_the_mean_of_recorded_finals():
    rewards = [[0.2, 1.0], [-0.3, -1.0, -1.0], [-1.0]]
    finals = [1.0, -1.0, -1.0]  # mu = -1/3
    got = advantages(rewards, finals, TreeGRPOConfig())
    mu = -1 / 3
    assert got[0] == pytest.approx([0.2 - mu, 1.0 - mu])
    assert got[1] == pytest.approx([-0.3 - mu, -1.0 - mu, -1.0 - mu])
    assert got[2] == pytest.approx([-1.0 - mu])


def test_advantages_paper_baseline_uses_every_terminal_of_the_tree():
    rewards = [[0.2, 1.0], [-0.3, -1.0, -1.0], [-1.0]]
    finals = [1.0, -1.0, -1.0]
    cfg = TreeGRPOConfig(baseline="tree")
    tree_terminals = [1.0, 1.0, 1.0, -1.0, -1.0, -1.0, -1.0, 1.0]  # mu = 0: differs from -1/3
    got = advantages(rewards, finals, cfg, tree_terminals)
    assert got == [[0.2, 1.0], [-0.3, -1.0, -1.0], [-1.0]]
    with pytest.raises(ValueError, match="tree_terminal_scores"):
        advantages(rewards, finals, cfg)
    # "none": no baseline at all
    assert advantages(rewards, finals, TreeGRPOConfig(baseline="none")) == rewards


def test_advantages_std_norm_divides_by_population_sigma():
    rewards = [[0.2, 1.0], [-1.0], [-1.0]]
    finals = [1.0, -1.0, -1.0]
    # mu = -1/3; sigma_pop = sqrt(((4/3)^2 + 2 (2/3)^2) / 3) = sqrt(8/9)
    mu, sigma = -1 / 3, math.sqrt(8 / 9)
    got = advantages(rewards, finals, TreeGRPOConfig(std_norm=True))
    assert got[0] == pytest.approx([(0.2 - mu) / (sigma + 1e-6), (1.0 - mu) / (sigma + 1e-6)])
    assert got[1] == pytest.approx([(-1.0 - mu) / (sigma + 1e-6)])
    # paper baseline + std: mu and sigma of the tree terminals [1, -1] -> 0 and 1
    got = advantages(rewards, finals, TreeGRPOConfig(std_norm=True, baseline="tree"), [1.0, -1.0])
    assert got[0] == pytest.approx([0.2 / (1 + 1e-6), 1.0 / (1 + 1e-6)])


def test_group_of_one_uses_mu_zero_sigma_one():
    assert advantages([[0.3, 1.0]], [1.0], TreeGRPOConfig()) == [[0.3, 1.0]]
    got = advantages([[0.3, 1.0]], [1.0], TreeGRPOConfig(std_norm=True))
    assert got == [[pytest.approx(0.3 / (1 + 1e-6)), pytest.approx(1.0 / (1 + 1e-6))]]
    assert advantages([], [], TreeGRPOConfig()) == []


@pytest.mark.parametrize("std_norm", [False, True])
def test_all_equal_group_gives_zero_advantages(std_norm):
    cfg = TreeGRPOConfig(reward="coarse", std_norm=std_norm)
    trajs = [fake_traj([0.3, 1.0], [2, 1]), fake_traj([0.9, 0.1, 1.0], [1, 1, 3])]
    for adv in group_advantages(trajs, cfg):
        assert adv == [0.0] * len(adv)


def small_tree():
    """root -> a (q 0.6) -> c correct (recorded), d wrong (not recorded);
    root -> e (q -0.5) -> f wrong (recorded); root -> g wrong (not recorded)."""
    tree = Tree([9, 9])
    a = tree.add_child(tree.root, [5, 6])
    c = tree.add_child(a, [1, 0], finished=True, terminal=True)
    d = tree.add_child(a, [2, 0], finished=True, terminal=True)
    e = tree.add_child(tree.root, [8])
    f = tree.add_child(e, [2, 0], finished=True, terminal=True)
    g = tree.add_child(tree.root, [2, 0], finished=True, terminal=True)
    a.value, e.value = 0.6, -0.5
    for leaf, score in ((c, 1.0), (d, -1.0), (f, -1.0), (g, -1.0)):
        leaf.score, leaf.outcome = score, "correct" if score > 0 else "wrong"
    c.value, f.value = 1.0, -1.0  # the two backed-up leaves
    tree.recorded = [c, f]
    return tree, [Trajectory.from_leaf(c), Trajectory.from_leaf(f)]


def test_group_advantages_on_a_real_tree_code_vs_paper():
    tree, trajs = small_tree()
    assert sorted(tree_terminal_scores(tree)) == [-1.0, -1.0, -1.0, 1.0]
    # code: mu = mean(+1, -1) = 0
    code = group_advantages(trajs, TreeGRPOConfig())
    assert code[0] == pytest.approx([TANH_06, TANH_06, 1.0, 1.0])
    assert code[1] == pytest.approx([-TANH_05, -1.0, -1.0])
    # paper: mu over the 4 terminals of the tree = -0.5; the tree is found from the leaves
    paper = group_advantages(trajs, TreeGRPOConfig(baseline="tree"))
    assert paper == group_advantages(trajs, TreeGRPOConfig(baseline="tree"), tree=tree)
    assert paper[0] == pytest.approx([TANH_06 + 0.5, TANH_06 + 0.5, 1.5, 1.5])
    assert paper[1] == pytest.approx([-TANH_05 + 0.5, -0.5, -0.5])


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.lists(st.integers(1, 3), min_size=1, max_size=4),  # node lengths
            st.lists(st.floats(-3, 3), min_size=3, max_size=3),  # intermediate values
            st.sampled_from([1.0, -1.0, -0.5]),  # terminal score
        ),
        min_size=1,
        max_size=6,
    ),
    st.booleans(),
)
def test_coarse_recorded_mean_only_advantage_is_score_minus_mean(group, overlong):
    cfg = TreeGRPOConfig(
        reward="coarse",
        overlong_buffer=3 if overlong else None,
        max_response_tokens=8 if overlong else None,
    )
    trajs = [
        fake_traj(values[: len(lengths) - 1] + [score], lengths) for lengths, values, score in group
    ]
    finals = [t.score + overlong_penalty(len(t.response_ids), cfg) for t in trajs]
    mu = sum(finals) / len(finals) if len(finals) > 1 else 0.0
    for traj, final, adv in zip(trajs, finals, group_advantages(trajs, cfg)):
        assert len(adv) == len(traj.response_ids)
        assert adv == pytest.approx([final - mu] * len(adv), abs=1e-12)


# ----------------------------------------------------------- loss (docs/paper-notes.md#policy-loss)

# (A, rho, per-token loss, d loss / d logp) with clip 0.2 / 0.28 and dual clip c = 10
LOSS_CASES = [
    (1.0, 1.1, -1.1, -1.1),  # inside the clip range
    (1.0, 1.5, -1.28, 0.0),  # A > 0 above 1 + eps_high: clipped, flat
    (1.0, 0.5, -0.5, -0.5),  # A > 0 below 1 - eps_low: max(-0.5, -0.8) keeps rho
    (-1.0, 0.5, 0.8, 0.0),  # A < 0 below 1 - eps_low: clipped, flat
    (-1.0, 1.5, 1.5, 1.5),  # A < 0 above 1 + eps_high: max keeps rho, under the cap
    (-1.0, 20.0, 10.0, 0.0),  # A < 0, rho > c: dual clip caps at -A c
    (-2.0, 0.9, 1.8, 1.8),
    (2.0, 20.0, -2.56, 0.0),
]


def run_loss(cases, cfg=None, **kwargs):
    adv = torch.tensor([[a for a, *_ in cases]], dtype=torch.float64)
    logp = torch.tensor([[math.log(r) for _, r, *_ in cases]], dtype=torch.float64)
    logp.requires_grad_(True)
    mask = torch.ones_like(adv)
    loss, metrics = policy_loss(logp, torch.zeros_like(logp), adv, mask, cfg or TreeGRPOConfig())
    loss.backward()
    return loss, logp.grad[0], metrics


def test_per_token_loss_hand_computed():
    for a, rho, expected, _ in LOSS_CASES:
        got = clipped_surrogate(torch.tensor(math.log(rho)), torch.tensor(a), TreeGRPOConfig())
        assert float(got) == pytest.approx(expected, rel=1e-6), (a, rho)
    loss, grad, metrics = run_loss(LOSS_CASES)
    n = len(LOSS_CASES)
    assert loss.item() == pytest.approx(sum(c[2] for c in LOSS_CASES) / n, rel=1e-12)
    # gradient: -A rho / n where the unclipped term is active, exactly 0 on the flat parts
    assert grad.tolist() == pytest.approx([c[3] / n for c in LOSS_CASES], rel=1e-12, abs=0)
    assert metrics["clip_frac_high"] == pytest.approx(2 / n)  # (1, 1.5), (2, 20)
    assert metrics["clip_frac_low"] == pytest.approx(1 / n)  # (-1, 0.5)
    assert metrics["dual_clip_frac"] == pytest.approx(1 / n)  # (-1, 20)
    assert metrics["approx_kl"] == pytest.approx(-sum(math.log(c[1]) for c in LOSS_CASES) / n)
    assert metrics["ratio_mean"] == pytest.approx(sum(c[1] for c in LOSS_CASES) / n)
    assert metrics["adv_mean"] == pytest.approx(sum(c[0] for c in LOSS_CASES) / n)
    assert metrics["n_tokens"] == n


def test_without_dual_clip_negative_advantages_are_unbounded():
    cfg = TreeGRPOConfig(dual_clip=None)
    loss, grad, metrics = run_loss([(-1.0, 20.0, None, None)], cfg)
    assert loss.item() == pytest.approx(20.0) and float(grad[0]) == pytest.approx(20.0)
    assert metrics["dual_clip_frac"] == 0.0


def two_row_batch():
    """Rows of 4 and 3 tokens, A = -1 so the per-token loss is rho (all in [0.8, 10])."""
    rho = torch.tensor([[1.0, 1.0, 1.0, 4.0], [2.0, 3.0, 5.0, 7.0]], dtype=torch.float64)
    logp = rho.log().requires_grad_(True)
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]])
    steps = torch.tensor(
        [step_ids_from_spans([(0, 3), (3, 4)], 4), step_ids_from_spans([(0, 1), (1, 3)], 4)]
    )
    assert steps.tolist() == [[0, 0, 0, 1], [0, 1, 1, -1]]
    return logp, torch.zeros_like(logp), -torch.ones_like(logp), mask, steps


def test_token_mean_vs_step_mean_vs_seq_mean():
    logp, old, adv, mask, steps = two_row_batch()
    token, _ = policy_loss(logp, old, adv, mask, TreeGRPOConfig())
    assert token.item() == pytest.approx(17 / 7)  # (1 + 1 + 1 + 4 + 2 + 3 + 5) / 7
    step, _ = policy_loss(logp, old, adv, mask, TreeGRPOConfig(loss_agg="step_mean"), steps)
    assert step.item() == pytest.approx((1 + 4 + 2 + 4) / 4)  # step means 1, 4 | 2, (3+5)/2
    seq, _ = policy_loss(logp, old, adv, mask, TreeGRPOConfig(loss_agg="seq_mean_token_mean"))
    assert seq.item() == pytest.approx((7 / 4 + 10 / 3) / 2)
    step.backward()
    # d/dlogp = rho / (#steps * |s_j|): row 0 step 0 has 3 tokens, step 1 one token
    assert logp.grad.flatten().tolist() == pytest.approx(
        [1 / 12, 1 / 12, 1 / 12, 4 / 4] + [2 / 4, 3 / 8, 5 / 8, 0.0]
    )
    with pytest.raises(ValueError, match="step_ids"):
        policy_loss(logp, old, adv, mask, TreeGRPOConfig(loss_agg="step_mean"))


@pytest.mark.parametrize("agg", ["token_mean", "step_mean", "seq_mean_token_mean"])
def test_micro_batches_with_the_mini_batch_normalizer_add_up(agg):
    logp, old, adv, mask, steps = two_row_batch()
    cfg = TreeGRPOConfig(loss_agg=agg)
    full, _ = policy_loss(logp, old, adv, mask, cfg, steps)
    count = aggregation_count(mask, cfg, steps)
    assert count == {"token_mean": 7, "step_mean": 4, "seq_mean_token_mean": 2}[agg]
    parts = [
        policy_loss(
            logp[i : i + 1],
            old[i : i + 1],
            adv[i : i + 1],
            mask[i : i + 1],
            cfg,
            steps[i : i + 1],
            normalizer=count,
        )[0]
        for i in range(2)
    ]
    assert sum(parts).item() == pytest.approx(full.item(), rel=1e-12)


@pytest.mark.parametrize("agg", ["token_mean", "step_mean", "seq_mean_token_mean"])
def test_masked_tokens_do_not_contribute(agg):
    cfg = TreeGRPOConfig(loss_agg=agg)
    logp, old, adv, mask, steps = two_row_batch()
    loss, metrics = policy_loss(logp, old, adv, mask, cfg, steps)
    loss.backward()
    grad = logp.grad.clone()
    # garbage (nan, inf, huge advantage) on the padded position: same loss, same gradients
    logp2 = logp.detach().clone()
    logp2[1, 3] = float("nan")
    logp2.requires_grad_(True)
    old2, adv2 = old.clone(), adv.clone()
    old2[1, 3], adv2[1, 3] = float("-inf"), 1e6
    loss2, metrics2 = policy_loss(logp2, old2, adv2, mask, cfg, steps)
    loss2.backward()
    assert loss2.item() == loss.item() and metrics2 == metrics
    assert torch.equal(logp2.grad, grad) and float(grad[1, 3]) == 0.0


# ---------------------------------------------------------------- TRL cross-check
#
# TRL 1.16.0, trl/trainer/grpo_trainer.py, GRPOTrainer._compute_loss:
#   l. 3113-3119   coef_2 = clamp(rho, 1 - eps_low, 1 + eps_high)
#                  if delta is not None: coef_1 = clamp(rho, max=delta)    ("two-sided clipping")
#                  per_token_loss = -min(coef_1 * A, coef_2 * A)
#   l. 3168-3173   loss_type "dapo": sum(per_token_loss * mask) / normalizer with
#                  normalizer = num_items_in_batch / num_processes * grad_accum / steps_per_gen
#                  (num_items_in_batch = the mask's token count over the whole generation batch,
#                  gathered over processes): a flat token mean over the generation batch, split
#                  into micro-batches that add up - our ``normalizer=aggregation_count(...)``.
#
# TRL's delta (INTELLECT-2) clamps the RATIO from above for both signs of A; verl's dual clip caps
# the LOSS at -A c for A < 0 only. Per token, with rho the ratio:
#   TRL,  A >= 0:  -A min(rho, delta, clip(rho))    verl:  -A min(rho, clip(rho))
#   TRL,  A <  0:  |A| max(min(rho, delta), clip(rho))   verl:  |A| min(max(rho, clip(rho)), c)
# Since clip(rho) <= 1 + eps_high, the two are the same function of rho (value and gradient,
# ties at rho = delta aside) whenever delta = c >= 1 + eps_high - the DeepSearch recipe
# (c = 10 >= 1.28), so the cross-checks below use delta = c = 10 and must agree to 1e-6.
# They differ when delta = c < 1 + eps_high, for every rho > delta: TRL clips positive
# advantages at delta (verl at 1 + eps_high, and only from there on) and caps negative ones at
# max(delta, clip(rho)) instead of c, so in (delta, 1 + eps_high) not at all;
# test_trl_delta_differs_from_dual_clip_below_one_plus_eps_high asserts exactly that.


@pytest.fixture(scope="module")
def trl_model():
    from transformers import Qwen2Config, Qwen2ForCausalLM
    from trl.trainer.utils import add_fused_lm_head

    torch.manual_seed(0)
    config = Qwen2Config(
        vocab_size=64,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
    )
    model = Qwen2ForCausalLM(config)
    model.train()
    # as GRPOTrainer.__init__ does: log-probs from a fused LM head (model(..., fused_lm_head=True))
    add_fused_lm_head(model, outputs=("log_probs", "entropy"))
    return model


def trl_trainer(model, delta=10.0, grad_accum=1):
    """A GRPOTrainer carrying only what ``_compute_loss`` reads (no dataset, no generation).

    The full constructor needs a dataset, reward functions and a tokenizer and sets up
    generation; ``_compute_loss`` itself only reads the attributes below, set from a real
    GRPOConfig exactly as ``GRPOTrainer.__init__`` sets them. The accelerator is a one-process
    stand-in (gather/reduce are the identity with one process).
    """
    from trl import GRPOConfig
    from trl.trainer.grpo_trainer import GRPOTrainer

    args = GRPOConfig(
        output_dir="trl-unused",
        loss_type="dapo",
        epsilon=0.2,
        epsilon_high=0.28,
        delta=delta,
        beta=0.0,
        scale_rewards="none",
        gradient_accumulation_steps=grad_accum,
        report_to=[],
        bf16=False,
        use_cpu=True,
    )
    trainer = GRPOTrainer.__new__(GRPOTrainer)
    trainer.args, trainer.model = args, model
    for name in (
        "loss_type",
        "beta",
        "importance_sampling_level",
        "off_policy_mask_threshold",
        "top_entropy_quantile",
        "use_vllm",
        "vllm_importance_sampling_correction",
        "temperature",
        "entropy_coef",
        "use_adaptive_entropy",
    ):
        setattr(trainer, name, getattr(args, name))
    trainer.epsilon_low, trainer.epsilon_high = args.epsilon, args.epsilon_high
    trainer.aux_loss_enabled = False
    trainer._entropy_bonus_enabled = args.entropy_coef != 0.0 or args.use_adaptive_entropy
    trainer.current_gradient_accumulation_steps = grad_accum
    trainer._metrics = {"train": defaultdict(list), "eval": defaultdict(list)}
    trainer.accelerator = types.SimpleNamespace(
        num_processes=1,
        is_main_process=True,
        autocast=contextlib.nullcontext,
        gather=lambda x: x,
        reduce=lambda x, reduction="sum": x,
    )
    assert args.steps_per_generation == grad_accum
    return trainer


# log-ratios log(pi / pi_old) per token, chosen away from every clip boundary:
# rows 0, 2 have A > 0, rows 1, 3 A < 0; 0 marks padding (lengths 6, 4, 5, 3)
LOG_RATIOS = [
    [0.0, 0.1, 0.5, -0.5, 3.0, -0.1],  # inside, above 1.28 (clipped), below 0.8, above delta
    [0.05, 0.5, -0.5, 3.0, 0.0, 0.0],  # inside, above 1.28 (kept), below 0.8 (clipped), dual
    [0.2, -1.0, 1.0, 2.5, 0.0, 0.0],
    [2.5, 1.0, -1.0, 0.0, 0.0, 0.0],  # dual clip (rho 12.2), kept (2.7), clipped (0.37)
]
SEQ_ADV = [1.0, -0.5, 0.75, -1.25]


def model_batch(model):
    g = torch.Generator().manual_seed(1)
    prompt = torch.randint(1, 64, (4, 3), generator=g)
    completion = torch.randint(1, 64, (4, 6), generator=g)
    cmask = (torch.arange(6)[None] < torch.tensor([6, 4, 5, 3])[:, None]).long()
    pmask = torch.ones_like(prompt)
    with torch.no_grad():
        logp_now = completion_logp(model, prompt, pmask, completion, cmask)
    inputs = {
        "prompt_ids": prompt,
        "prompt_mask": pmask,
        "completion_ids": completion,
        "completion_mask": cmask,
        "advantages": torch.tensor(SEQ_ADV),
        "old_per_token_logps": logp_now - torch.tensor(LOG_RATIOS),  # rho = exp(LOG_RATIOS)
        "num_items_in_batch": cmask.sum(),
    }
    return inputs


def completion_logp(model, prompt, pmask, completion, cmask):
    """Our side: plain forward, log-softmax of the logits, log-prob of each completion token."""
    logits = model(
        input_ids=torch.cat([prompt, completion], 1), attention_mask=torch.cat([pmask, cmask], 1)
    ).logits
    logits = logits[:, prompt.shape[1] - 1 : -1].float()
    return torch.log_softmax(logits, -1).gather(-1, completion.unsqueeze(-1)).squeeze(-1)


def our_model_loss(model, inputs, rows=slice(None), normalizer=None):
    p, pm = inputs["prompt_ids"][rows], inputs["prompt_mask"][rows]
    c, cm = inputs["completion_ids"][rows], inputs["completion_mask"][rows]
    logp = completion_logp(model, p, pm, c, cm)
    adv = inputs["advantages"][rows].unsqueeze(1).expand_as(logp)  # sequence-level advantages
    old = inputs["old_per_token_logps"][rows]
    return policy_loss(logp, old, adv, cm, TreeGRPOConfig(), normalizer=normalizer)


def grads(model):
    out = {name: p.grad.detach().clone() for name, p in model.named_parameters()}
    model.zero_grad(set_to_none=True)
    return out


def test_loss_and_gradients_match_trl_dapo(trl_model):
    model = trl_model
    inputs = model_batch(model)
    trainer = trl_trainer(model)
    model.zero_grad(set_to_none=True)
    trl_loss = trainer._compute_loss(model, inputs)
    trl_loss.backward()
    trl_grads = grads(model)
    ours, metrics = our_model_loss(model, inputs)
    ours.backward()
    our_grads = grads(model)
    assert abs(trl_loss.item() - ours.item()) <= 1e-6
    assert max(float(g.abs().max()) for g in our_grads.values()) > 1e-3  # a real signal
    for name, g in our_grads.items():
        assert float((g - trl_grads[name]).abs().max()) <= 1e-6, name
    # every regime is present: 4 high-clipped, 2 low-clipped, 2 dual-clipped tokens out of 18
    logged = trainer._metrics["train"]
    assert metrics["clip_frac_high"] == pytest.approx(logged["clip_ratio/high_mean"][-1])
    assert metrics["clip_frac_low"] == pytest.approx(logged["clip_ratio/low_mean"][-1])
    assert (metrics["clip_frac_high"], metrics["clip_frac_low"]) == pytest.approx((4 / 18, 2 / 18))
    assert metrics["dual_clip_frac"] == pytest.approx(2 / 18)


def test_trl_dapo_normalizer_over_micro_batches_matches_ours(trl_model):
    """Two micro-batches of one generation batch (grad_accum = steps_per_generation = 2):
    TRL divides each by num_items_in_batch (all 18 tokens), so the two losses add up to the flat
    token mean; ours does the same with normalizer = the mini-batch token count."""
    model = trl_model
    inputs = model_batch(model)
    trainer = trl_trainer(model, grad_accum=2)
    halves = [slice(0, 2), slice(2, 4)]
    total_trl = 0.0
    for rows in halves:
        part = {k: (v[rows] if k != "num_items_in_batch" else v) for k, v in inputs.items()}
        loss = trainer._compute_loss(model, part)
        loss.backward()
        total_trl += loss.item()
    trl_grads = grads(model)
    count = aggregation_count(inputs["completion_mask"], TreeGRPOConfig())
    total_ours = 0.0
    for rows in halves:
        loss, _ = our_model_loss(model, inputs, rows, normalizer=count)
        loss.backward()
        total_ours += loss.item()
    our_grads = grads(model)
    full, _ = our_model_loss(model, inputs)
    model.zero_grad(set_to_none=True)
    assert total_trl == pytest.approx(total_ours, abs=1e-6)
    assert total_ours == pytest.approx(full.item(), abs=1e-6)
    for name, g in our_grads.items():
        assert float((g - trl_grads[name]).abs().max()) <= 1e-6, name


def trl_token_loss(trainer, log_ratio, adv):
    """TRL's _compute_loss on ONE token with a given ratio: the log-prob comes from a leaf tensor
    (the model call is replaced), so the clipping regime is exact."""
    logp = torch.zeros(1, 1, dtype=torch.float64, requires_grad=True)
    entropies = torch.zeros_like(logp)
    trainer._get_per_token_logps_and_entropies = lambda *a, **k: (logp, entropies, None)
    ones = torch.ones(1, 1, dtype=torch.long)
    inputs = {
        "prompt_ids": ones,
        "prompt_mask": ones,
        "completion_ids": ones,
        "completion_mask": ones,
        "advantages": torch.tensor([adv], dtype=torch.float64),
        "old_per_token_logps": torch.tensor([[-log_ratio]], dtype=torch.float64),
        "num_items_in_batch": torch.tensor(1),
    }
    loss = trainer._compute_loss(trainer.model, inputs)
    loss.backward()
    return loss.item(), float(logp.grad)


def our_token_loss(cfg, log_ratio, adv):
    logp = torch.zeros(1, 1, dtype=torch.float64, requires_grad=True)
    old = torch.tensor([[-log_ratio]], dtype=torch.float64)
    loss, _ = policy_loss(
        logp, old, torch.tensor([[adv]], dtype=torch.float64), torch.ones(1, 1), cfg
    )
    loss.backward()
    return loss.item(), float(logp.grad)


RATIOS = [0.05, 0.5, 0.79, 0.81, 1.0, 1.1, 1.2, 1.27, 1.29, 2.0, 9.9, 10.1, 50.0]


def test_trl_delta_equals_dual_clip_when_delta_is_c_at_least_one_plus_eps_high(trl_model):
    trainer = trl_trainer(trl_model, delta=10.0)
    cfg = TreeGRPOConfig(dual_clip=10.0)
    for rho in RATIOS:
        for adv in (-2.0, -0.5, 0.0, 0.5, 2.0):
            trl = trl_token_loss(trainer, math.log(rho), adv)
            ours = our_token_loss(cfg, math.log(rho), adv)
            assert ours == pytest.approx(trl, rel=1e-12, abs=1e-12), (rho, adv)


def test_trl_delta_differs_from_dual_clip_below_one_plus_eps_high(trl_model):
    trainer = trl_trainer(trl_model, delta=1.1)
    cfg = TreeGRPOConfig(dual_clip=1.1)
    rho = 1.2  # in (delta, 1 + eps_high) = (1.1, 1.28)
    # A > 0: TRL clamps the ratio at delta (flat); verl keeps rho (not yet at 1 + eps_high)
    assert trl_token_loss(trainer, math.log(rho), 1.0) == pytest.approx((-1.1, 0.0))
    assert our_token_loss(cfg, math.log(rho), 1.0) == pytest.approx((-1.2, -1.2))
    # A < 0: TRL's max(min(rho, delta), clip(rho)) = rho (no cap); verl caps -A rho at -A c
    assert trl_token_loss(trainer, math.log(rho), -1.0) == pytest.approx((1.2, 1.2))
    assert our_token_loss(cfg, math.log(rho), -1.0) == pytest.approx((1.1, 0.0))
    # above 1 + eps_high: TRL -A delta vs verl -A (1 + eps_high); |A| 1.28 vs verl's cap |A| c
    assert trl_token_loss(trainer, math.log(3.0), 1.0) == pytest.approx((-1.1, 0.0))
    assert our_token_loss(cfg, math.log(3.0), 1.0) == pytest.approx((-1.28, 0.0))
    assert trl_token_loss(trainer, math.log(3.0), -1.0) == pytest.approx((1.28, 0.0))
    assert our_token_loss(cfg, math.log(3.0), -1.0) == pytest.approx((1.1, 0.0))
    # for rho <= delta they still agree
    for r in (0.5, 0.9, 1.05):
        for adv in (-1.0, 1.0):
            assert trl_token_loss(trainer, math.log(r), adv) == pytest.approx(
                our_token_loss(cfg, math.log(r), adv)
            )
