# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 04 · Tree-GRPO: from a searched tree to a gradient
#
# Notebooks 01–03 built a search tree and its q-values. This one turns them into training
# signal, the part of DeepSearch the paper calls **Tree-GRPO** (v4 Sec. 4.3, Eq. 13–15):
#
# 1. **per-token rewards**: every token of a node gets that node's q-value, soft-clipped by
#    tanh (Eq. 13), and the answer's tokens get the terminal score ±1;
# 2. **advantages**: subtract the mean final score of the problem's trajectories, and do *not*
#    divide by the standard deviation (mean-only normalisation, Eq. 15);
# 3. **the loss**: PPO's clipped ratio with DAPO's Clip-Higher and a dual clip, no KL term (Eq. 14).
#
# Then a short training run of the tiny reasoner with `dslib.trainer`, next to the flat
# GRPO/DAPO baseline. All the code lives in `dslib.tree_grpo`, `dslib.learner` and
# `dslib.trainer`; the notebook calls it and draws it.

# %% tags=["parameters"]
seed = 0
level = 4            # countdown difficulty of the real searches
n_problems = 8       # trees searched for the heat maps
train_steps = 20     # steps of each short training run (the tiny preset runs 300)

# %%
import tempfile
import warnings

warnings.filterwarnings("ignore", message="IProgress not found")  # tqdm without ipywidgets

import matplotlib.pyplot as plt
import numpy as np
import torch
from transformers.utils import logging as hf_logging

from dslib import search, tiny, tree_grpo, viz
from dslib.build import countdown_task
from dslib.config import SearchConfig, TreeGRPOConfig, update
from dslib.presets import preset
from dslib.trainer import Trainer
from dslib.tree import Tree

hf_logging.disable_progress_bar()  # quieter checkpoint loading
torch.set_num_threads(1)  # the tiny model gains nothing from more threads; one avoids contention

# %% [markdown]
# ## 1. Per-token rewards (v4 Eq. 13, [paper notes](../docs/paper-notes.md#token-rewards))
#
# A recorded trajectory is a root-to-leaf path s_1 … s_L; node j owns a chunk of tokens. After
# the whole tree is built, node j has an **accumulated** value v_j (the sum of its backups, not
# the average q/N). Every token of node j gets
#
# $$r_j = \tanh(v_j / \varepsilon_q)\, q_{\max} \quad (j < L),$$
# $$r_L = q(s_{\text{end}}) \in \{+1, -1\}$$
#
# with ε_q = q_max = 1. The tanh keeps a node that collected many backups from dominating; the
# terminal keeps its raw ±1. A hand-built tree: a prefix a → b shared by a correct and a wrong
# answer, and a second branch c that only failed.

# %%
tree = Tree(prompt_ids=[0])
a = tree.add_child(tree.root, [1] * 4)
b = tree.add_child(a, [2] * 4)
ok = tree.add_child(b, [3] * 3, finished=True, terminal=True)
bad = tree.add_child(b, [4] * 3, finished=True, terminal=True)
c = tree.add_child(tree.root, [5] * 4)
bad2 = tree.add_child(c, [6] * 3, finished=True, terminal=True)
for leaf, score, outcome in ((ok, 1.0, "correct"), (bad, -1.0, "wrong"), (bad2, -1.0, "wrong")):
    leaf.score, leaf.outcome = score, outcome
# accumulated values as a few backups would leave them (q of a node on a correct path stays >= 0)
a.value, b.value, c.value = 0.9, 1.3, -0.6
ok.value, bad.value, bad2.value = 1.0, -1.0, -1.0

trajs = [search.Trajectory.from_leaf(leaf) for leaf in (ok, bad, bad2)]
cfg = TreeGRPOConfig()
for name, t in zip(("a-b-ok", "a-b-bad", "c-bad2"), trajs):
    print(f"{name:8s} node values {t.node_values} -> node rewards "
          f"{[round(r, 3) for r in tree_grpo.node_rewards(t.node_values, cfg)]}")

# %% [markdown]
# `tanh(1.3) = 0.862`: node b was on a correct path twice, its tokens get a large positive
# reward, but less than the answer's +1. The tokens of c (a branch that only failed) get
# `tanh(-0.6) = -0.537`.
#
# ## 2. Advantages, mean only (v4 Eq. 15, [paper notes](../docs/paper-notes.md#advantage))
#
# The advantage of a token is its reward minus a baseline μ, the mean **final** score of the
# problem's trajectories. The released code takes μ over the *recorded* trajectories (the ones
# the search backed up); the paper writes "all terminal nodes of the tree" (switch
# `baseline="tree"`). Dividing by σ, as standard GRPO does, is switched off (`std_norm=False`):
# the paper credits this for keeping response lengths in check.

# %%
def heat(ax, rows, spans=None, title=""):
    """Per-token advantages, one row per trajectory (white = 0, red < 0, blue > 0)."""
    width = max(len(r) for r in rows)
    grid = np.full((len(rows), width), np.nan)
    for i, r in enumerate(rows):
        grid[i, : len(r)] = r
    lim = max(1e-6, np.nanmax(np.abs(grid)))
    im = ax.imshow(grid, cmap="RdBu", vmin=-lim, vmax=lim, aspect="auto", interpolation="none")
    if spans:
        for i, sp in enumerate(spans):
            for start, _ in sp[1:]:
                ax.plot([start - 0.5, start - 0.5], [i - 0.5, i + 0.5], color="k", lw=0.6)
    ax.set(title=title, xlabel="response token", ylabel="trajectory")
    return im


variants = {
    "fine, mean-only (default)": TreeGRPOConfig(),
    "coarse (= DAPO)": TreeGRPOConfig(reward="coarse"),
    "fine, std-normalised": TreeGRPOConfig(std_norm=True),
}
fig, axes = plt.subplots(1, 3, figsize=(13, 2.6))
for ax, (name, vcfg) in zip(axes, variants.items()):
    im = heat(ax, tree_grpo.group_advantages(trajs, vcfg), [t.node_spans for t in trajs], name)
    ax.set_yticks(range(3), ["a-b-ok", "a-b-bad", "c-bad2"])
fig.colorbar(im, ax=axes, shrink=0.8, label="advantage")
plt.show()

# %% [markdown]
# Read the rows left to right (black ticks are node boundaries). μ = (1 − 1 − 1)/3 = −1/3.
#
# - With **coarse** rewards (DAPO) the shared prefix a → b is pushed up in the correct row and
#   down in the wrong one: the two cancel, and the step that was fine is blamed for the bad
#   ending.
# - With **fine** rewards, a → b has the same positive advantage in both rows: credit goes to
#   the steps by their q-values, only the last wrong chunk is pushed down.
# - **std-normalisation** rescales everything by 1/σ: small differences in a group where all
#   answers are wrong become as large as the difference between right and wrong.
#
# ## 3. The same on real trees
#
# Search a few level-4 problems with the tiny reasoner (the search of notebooks 01–03) and draw
# the advantages of each tree's recorded trajectories. On hard problems most trees find no
# correct answer; their trajectories are confident negatives (notebook 03).

# %%
reasoner = tiny.build(progress=False)
policy = reasoner.load_policy(seed=seed)
items = reasoner.prompted(level, "rl", n_problems)
results = search.run(items, policy, reasoner.verifier(), SearchConfig.tiny(seed=seed))
solved = [r for r in results if any(t.correct for t in r.trajectories)]
print(f"{len(solved)} of {len(results)} trees found a correct answer")

# %%
shown = (solved[:1] + [r for r in results if r not in solved])[:3]
fig, axes = plt.subplots(1, len(shown), figsize=(13, 2.8))
for ax, res in zip(np.atleast_1d(axes), shown):
    rows = tree_grpo.group_advantages(res.trajectories, TreeGRPOConfig(), tree=res.tree)
    outcome = "".join("✓" if t.correct else "✗" for t in res.trajectories)
    im = heat(ax, rows, [t.node_spans for t in res.trajectories],
              f"{res.problem.id}  {outcome}")
fig.colorbar(im, ax=axes, shrink=0.8, label="advantage")
plt.show()

# %% [markdown]
# In a tree without a correct answer all final scores are −1, so μ = −1 and the terminal
# chunks get advantage 0, while the intermediate nodes, whose accumulated q is only slightly
# negative (γ-weighted backups), get tanh(v) + 1 > 0. That is what the released code computes:
# relative to its failures, the policy is nudged toward the steps it was confident about,
# which lowers entropy. A tree with a correct answer puts clearly more mass on that path.
#
# ## 4. The loss and its clipping (v4 Eq. 14, [paper notes](../docs/paper-notes.md#policy-loss))
#
# With ρ = π_θ / π_old the per-token loss is
#
# $$L = \max\big(-A\rho,\ -A\,\mathrm{clip}(\rho, 1-\varepsilon_{low}, 1+\varepsilon_{high})\big),
# \qquad L \leftarrow \min(L, -A\,c) \text{ if } A < 0$$
#
# with ε_low = 0.2, ε_high = 0.28 (Clip-Higher: more room to raise unlikely tokens) and the dual
# clip c = 10 that bounds the loss of a negative-advantage token whose ratio exploded. The
# default aggregation is a flat token mean over the mini-batch (code); the paper's per-step
# mean is `loss_agg="step_mean"`.

# %%
rho = torch.linspace(0.01, 14, 600)
fig, axes = plt.subplots(1, 2, figsize=(11, 3))
for ax, A in zip(axes, (1.0, -1.0)):
    loss = tree_grpo.clipped_surrogate(rho.log()[None], torch.full((1, 600), A), TreeGRPOConfig())
    ax.plot(rho, -A * rho, ":", color="grey", label="unclipped −Aρ")
    ax.plot(rho, loss[0], label="dslib.tree_grpo.clipped_surrogate")
    ax.axvspan(0.8, 1.28, color="tab:green", alpha=0.15, label="trust region [0.8, 1.28]")
    ax.set(title=f"A = {A:+.0f}", xlabel="ratio ρ", ylabel="per-token loss",
           xlim=(0, 14 if A < 0 else 3), ylim=(-3.2, 12) if A < 0 else (-3.2, 0.2))
    ax.legend(fontsize=7)
plt.show()

# %% [markdown]
# Left: for A > 0 the loss stops decreasing at ρ = 1.28, so the gradient is zero beyond it.
# Right: for A < 0 the loss grows with ρ until the dual clip caps it at c·|A| = 10.
#
# `tests/test_tree_grpo.py` checks this loss against TRL's `GRPOTrainer` with
# `loss_type="dapo"`: with sequence-level advantages the two agree to 1e-6 in value and
# gradient, the paper's statement that Tree-GRPO degrades to DAPO when every node gets the
# outcome.
#
# ## 5. A short training run
#
# `dslib.trainer.Trainer` runs the loop: draw problems, search (or sample flat: the rollout
# strategy), rewards and advantages, then `dslib.learner` recomputes old log-probs and makes
# the clipped updates with AdamW. The same code is behind `dslib train --preset tiny`. Here
# both modes run `train_steps` steps from the same warm start, on the same problems, with a
# quick held-out evaluation before and after.

# %%
base = preset("tiny")
cfg_ds = update(base, {"run.steps": train_steps, "eval.every": train_steps,
                       "eval.problems": 50, "eval.samples": 4, "run.seed": seed})
task = countdown_task(cfg_ds, reasoner)
runs = {}
for mode, strategy in (("deepsearch", "tree"), ("grpo", "flat")):
    cfg = update(cfg_ds, {"rollout.strategy": strategy})
    trainer = Trainer(cfg, tempfile.mkdtemp(prefix=f"nb04-{mode}-"),
                      model=reasoner.load_model(), task=task, progress=False)
    runs[mode] = trainer.train()
    last = [r for r in runs[mode] if r["kind"] == "train"][-1]
    one_outcome = np.mean([r["zero_signal_share"] for r in runs[mode] if r["kind"] == "train"])
    print(f"{mode:10s}: {train_steps} steps, {last['cumulative_sampled_tokens']} sampled tokens, "
          f"groups with one outcome only: {one_outcome:.2f}")

# %%
fig = viz.plot_training(runs["deepsearch"], title="deepsearch", others={"grpo": runs["grpo"]})
plt.show()

# %% [markdown]
# The middle panel is the problem the paper attacks. On hard problems most groups have one
# outcome only, nearly always "all wrong". For flat GRPO such a group has zero advantage and
# no gradient. A DeepSearch tree with only wrong answers still produces graded node values, so
# it always carries a gradient, but, with the released code's baseline, a *positive* one on the
# steps leading to its confident mistakes (section 3).
#
# Note the budgets: a tree spends about three times the sampled tokens of 4 flat samples
# (printed above). A 20-step run on two CPU cores shows the mechanics, not a result; the
# measured 300-step comparison of the two modes, over three seeds, is in the README
# ("Training"), and `make demo` (notebook 06) adds filtering and the replay buffer.

# %% [markdown]
# ## Summary
#
# Tree-GRPO turns a searched tree into per-token training signal: each node's tokens get its
# soft-clipped accumulated q-value, the answer's tokens get ±1, and the advantage subtracts the
# mean final score of the problem's recorded trajectories without dividing by their spread.
# The loss is PPO's clipped ratio with DAPO's clip-higher and a dual clip, averaged over tokens;
# with sequence-level rewards it is exactly DAPO's loss (checked against TRL in the tests). Its
# strength is that an all-wrong tree still carries a gradient; its catch, with the code's
# baseline, is that the gradient favours the prefixes of the confident mistake. Notebook 05
# adds the machinery that decides *which* problems get a tree at all.
#
# **Exercise.** Switch the baseline to the paper's mean over every terminal of the tree:
# `TreeGRPOConfig(baseline="tree")` in section 2 (and `"optim.grpo.baseline": "tree"` in the
# training cell's `update`). How do the heat maps of the all-wrong trees change, and does the
# short training run still raise the reward?
