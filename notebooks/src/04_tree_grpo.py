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
# **Goal.** By the end you can compute, for any recorded trajectory of a search tree, the
# advantage of each of its tokens under every switch of `TreeGRPOConfig`, and you know the one
# surprising consequence of the released choice: in a tree with no correct answer, the
# confident mistake of notebook 03 is never pushed down.
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
# Two sections look closely at a tree where every answer is wrong (sections 3 and 4), then
# come the same heat maps on real trees and a short training run of the tiny reasoner with
# `dslib.trainer`, next to the flat GRPO/DAPO baseline. All the code lives in
# `dslib.tree_grpo`, `dslib.learner` and `dslib.trainer`; the notebook calls it and draws it.

# %% tags=["parameters"]
seed = 0
level = 4            # countdown difficulty of the real searches
n_problems = 8       # trees searched for the heat maps
train_steps = 20     # steps of each short training run (the tiny preset runs 300)

# %%
import inspect
import tempfile
import warnings

warnings.filterwarnings("ignore", message="IProgress not found")  # tqdm without ipywidgets

import matplotlib.pyplot as plt
import numpy as np
import torch
from transformers.utils import logging as hf_logging

from dslib import backup, search, supervision, tiny, tree_grpo, viz
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
# with ε_q = q_max = 1 (`dslib.tree_grpo.node_rewards`, shown below; the kit's default
# `reward="fine"`). The tanh keeps a node that collected many backups from dominating; the
# terminal keeps its raw ±1. A hand-built tree: a prefix a → b shared by a correct and a wrong
# answer, and a second branch c that only failed.

# %%
print(inspect.getsource(tree_grpo.node_rewards))

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
# the paper credits this for keeping response lengths in check. The rule, as dslib has it:

# %%
print(inspect.getsource(tree_grpo.advantages))

# %% [markdown]
# > **Paper vs code.** The paper's μ is the mean over *all terminal nodes of the tree*; the
# > released code's is over the *recorded* trajectories, overlong penalty included
# > ([paper notes](../docs/paper-notes.md#pvc-baseline)). Standard deviation normalisation is off
# > in both, but on in verl's defaults: the released scripts turn it off
# > ([paper notes](../docs/paper-notes.md#pvc-std)).
#
# The heat maps below have one colour bar per panel: the three panels have different ranges.

# %%
def heat(ax, rows, spans=None, title=""):
    """Per-token advantages, one row per trajectory (white = 0, red < 0, blue > 0), with the
    panel's own colour bar (symmetric around 0, up to the panel's largest |A|)."""
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
    ax.figure.colorbar(im, ax=ax, shrink=0.9, label="advantage")
    return im


variants = {
    "fine, mean-only (default)": TreeGRPOConfig(),
    "coarse (= DAPO)": TreeGRPOConfig(reward="coarse"),
    "fine, std-normalised": TreeGRPOConfig(std_norm=True),
}
fig, axes = plt.subplots(1, 3, figsize=(14, 2.6), layout="constrained")
for ax, (name, vcfg) in zip(axes, variants.items()):
    heat(ax, tree_grpo.group_advantages(trajs, vcfg), [t.node_spans for t in trajs], name)
    ax.set_yticks(range(3), ["a-b-ok", "a-b-bad", "c-bad2"])
plt.show()

# the advantage of node a (first token) and of node b in the two rows that share them
for name, vcfg in variants.items():
    rows = tree_grpo.group_advantages(trajs, vcfg)
    a_ok, a_bad, b_ok, b_bad = rows[0][0], rows[1][0], rows[0][4], rows[1][4]
    print(f"{name:26s} a: {a_ok:+.3f} (correct row) {a_bad:+.3f} (wrong row), "
          f"net {a_ok + a_bad:+.3f} | b: {b_ok:+.3f} {b_bad:+.3f}, net {b_ok + b_bad:+.3f}")

# %% [markdown]
# Read the rows left to right (black ticks are node boundaries). μ = (1 − 1 − 1)/3 = −1/3.
#
# - With **coarse** rewards (DAPO) every token of a row gets that row's outcome minus μ: the
#   shared prefix a → b gets 1 + 1/3 = +4/3 in the correct row and −1 + 1/3 = −2/3 in the wrong
#   one. They do not cancel: each prefix token is pushed up by a net +2/3 (printed above), but
#   the wrong row blames the prefix for the bad ending as much as the answer itself.
# - With **fine** rewards, a → b has the same positive advantage in both rows (net +2.10 on a,
#   +2.39 on b): credit goes to the steps by their q-values, only the last wrong chunk is pushed
#   down.
# - **std-normalisation** divides everything by σ of the final scores, here σ = 0.943 (scores
#   +1, −1, −1), so this group barely changes. The danger is a group whose final scores are all
#   equal: σ = 0. Section 3 works one through.
#
# ## 3. A tree where every answer is wrong
#
# On hard problems this is the common case. The tree below is built the way the search builds
# one (notebook 03): an expansion of p yields three wrong answers, `dslib.supervision` picks the
# most confident one (w2) and `dslib.backup` backs up its −1; then an expansion of u (a sibling
# of those answers) and one of s2 do the same. Three recorded trajectories, seven wrong
# terminals, no correct one.

# %%
NAMES = ["x", "s1", "p", "u", "s2", "w1", "w2", "w3", "w4", "w5", "w6", "w7"]


def chunk(name, nll, n_tokens=4):
    """A chunk of n_tokens tokens (the first is the index of its name), each of NLL nll."""
    return [NAMES.index(name)] * n_tokens, [-nll] * n_tokens


def name_of(node):
    return NAMES[node.token_ids[0]]


wtree = Tree(prompt_ids=[0])
s1 = wtree.add_child(wtree.root, *chunk("s1", 0.5))
s2 = wtree.add_child(wtree.root, *chunk("s2", 0.6))
p = wtree.add_child(s1, *chunk("p", 0.5))
u = wtree.add_child(p, *chunk("u", 0.7))
wrong_trajs = []
for parent, answers in ((p, [("w1", 0.9), ("w2", 0.2), ("w3", 1.6)]),
                        (u, [("w4", 0.4), ("w5", 1.1)]),
                        (s2, [("w6", 0.3), ("w7", 0.8)])):
    leaves = []
    for name, nll in answers:  # one expansion: all of its answers are wrong
        leaf = wtree.add_child(parent, *chunk(name, nll), finished=True, terminal=True)
        leaf.score, leaf.outcome = -1.0, "wrong"
        leaves.append(leaf)
    picked = supervision.choose_terminal(leaves)  # the most confident mistake (notebook 03)
    backup.backup(picked, picked.score)
    wrong_trajs.append(search.Trajectory.from_leaf(picked))

for t in wrong_trajs:
    print(" -> ".join(f"{name_of(n)} (v = {v:+.3f})" for n, v in zip(t.nodes, t.node_values)))
print("terminal scores of the whole tree:", tree_grpo.tree_terminal_scores(wtree))

# %% [markdown]
# Every final score is −1, so μ = −1 and σ = 0 under both baselines ("recorded" and "tree").
# The advantage of each node (its tokens all share it), for each baseline and each
# normalisation, as `dslib.tree_grpo.group_advantages` computes it:

# %%
print(f"{'baseline':9s} {'std_norm':8s}  advantage per node, one trajectory per column")
for baseline in ("recorded", "tree", "none"):
    for std_norm in (False, True):
        rows = tree_grpo.group_advantages(
            wrong_trajs, TreeGRPOConfig(baseline=baseline, std_norm=std_norm), tree=wtree)
        cols = ["  ".join(f"{name_of(n)} {row[start]:+.3g}" for n, (start, _) in
                          zip(t.nodes, t.node_spans)) for t, row in zip(wrong_trajs, rows)]
        print(f"{baseline:9s} {std_norm!s:8s}  " + "  |  ".join(cols))

# %% [markdown]
# Read it row by row.
#
# - **Mean-only, "recorded" or "tree"** (the released code, and the paper): μ = −1, so the
#   answers' tokens get −1 − (−1) = 0 and every intermediate node gets tanh(v) + 1 > 0, e.g.
#   p: tanh(−1.35) + 1 = +0.126. Nothing is pushed down.
# - **std-normalised**: the same numbers divided by σ + 10⁻⁶ = 10⁻⁶, so the prefixes get
#   advantages of 1e5 to 4e5. σ is taken over the *final* scores only, which are all equal,
#   while the fine-grained rewards of the intermediate nodes differ from μ. With outcome rewards
#   (coarse, standard GRPO) r − μ is exactly 0 on every token and the 10⁻⁶ is a safe guard;
#   with Tree-GRPO's per-node rewards it is a blow-up. The clipped loss bounds the ratio, not the
#   advantage, so one such tree would dominate a whole batch.
# - **"none"** (μ = 0): the answers get −1 and every prefix tanh(v) < 0: everything is pushed
#   down, and divided by σ = 0 it blows up too (−1e6 on the answers).
#
# > **Paper vs code.** What the released code does about the blow-up is to never divide: its
# > scripts set verl's `algorithm.norm_adv_by_std_in_grpo=False` (verl's default is True), the
# > kit's `std_norm=False`. The paper credits mean-only normalisation with keeping response
# > lengths in check (Table 4); it does not mention σ = 0
# > ([paper notes](../docs/paper-notes.md#advantage), [row 12](../docs/paper-notes.md#pvc-std)).
#
# ## 4. The confident mistake is never pushed down
#
# Notebook 03 backed up the *most confident* wrong answer, the mistake that looked most useful
# to push down: the model was sure of it and it was wrong. Here is what the released advantage
# does with it. w2 is that mistake (picked above by `dslib.supervision`); the gradient of the
# Tree-GRPO loss with respect to each token's log-probability, at ratio 1 (the first update),
# is −A / (number of tokens): negative means "make this token more likely".

# %%
tokens = [torch.tensor(t.logprobs) for t in wrong_trajs]
width = max(len(x) for x in tokens)
old_logp = torch.stack([torch.nn.functional.pad(x, (0, width - len(x))) for x in tokens])
mask = torch.stack([torch.arange(width) < len(x) for x in tokens])
for baseline in ("recorded", "none"):
    rows = tree_grpo.group_advantages(wrong_trajs, TreeGRPOConfig(baseline=baseline), tree=wtree)
    adv = torch.stack([torch.nn.functional.pad(torch.tensor(r), (0, width - len(r)))
                       for r in rows])
    logp = old_logp.clone().requires_grad_(True)
    loss, _ = tree_grpo.policy_loss(logp, old_logp, adv, mask, TreeGRPOConfig())
    loss.backward()
    w2 = wrong_trajs[0]
    per_node = {name_of(n): (rows[0][start] + 0.0, logp.grad[0, start].item() + 0.0)
                for n, (start, _) in zip(w2.nodes, w2.node_spans)}
    print(f"baseline={baseline!r:10s} " + "  ".join(
        f"{k}: A {a:+.3f}, dL/dlogp {g:+.4f}" for k, (a, g) in per_node.items()))

# %% [markdown]
# With the released baseline the confident mistake's own tokens get A = 0 and **no gradient
# at all**, while its prefix s1 → p gets A > 0: the update makes the path *to* the mistake more
# likely and leaves the mistake alone. This is the most instructive fact in the kit, because the
# two notebooks pull in opposite directions:
#
# - notebook 03 chooses *which* wrong answer to back up, and that choice shapes the q-values:
#   the more a prefix led to confident failures, the lower its v, the smaller its tanh(v) + 1.
#   The choice acts through the *ranking* of prefixes (p, which failed twice, gets +0.126; s2,
#   which failed once, +0.417) and through where the search goes next (notebook 02), not
#   through the sign of the update;
# - notebook 04's μ = −1 makes every sign in an all-wrong tree ≥ 0. Relative to its failures,
#   the policy is nudged toward the steps it was already confident about, which lowers entropy.
#
# The mistake is pushed down only when its group also holds a correct answer (μ > −1, so the
# answer gets −1 − μ < 0, as in section 2) or with a baseline of 0 ("none"), which pushes every
# step of an all-wrong tree down. Flat GRPO, for comparison, gives an all-wrong group zero
# advantage everywhere (unless the overlong penalty, off by default, tells the samples apart):
# no push either way.
#
# ## 5. The same on real trees
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
fig, axes = plt.subplots(1, len(shown), figsize=(14, 2.8), layout="constrained")
for ax, res in zip(np.atleast_1d(axes), shown):
    rows = tree_grpo.group_advantages(res.trajectories, TreeGRPOConfig(), tree=res.tree)
    outcome = "".join("✓" if t.correct else "✗" for t in res.trajectories)
    heat(ax, rows, [t.node_spans for t in res.trajectories], f"{res.problem.id}  {outcome}")
plt.show()

# %% [markdown]
# In a tree without a correct answer all final scores are −1, so μ = −1 and the terminal
# chunks get advantage 0, while the intermediate nodes, whose accumulated q is only slightly
# negative (γ-weighted backups), get tanh(v) + 1 > 0, as in section 3. Each panel has its own
# colour bar: compare the scales. A tree with a correct answer puts clearly more mass on that
# path.
#
# ## 6. The loss and its clipping (v4 Eq. 14, [paper notes](../docs/paper-notes.md#policy-loss))
#
# With ρ = π_θ / π_old the per-token loss is
#
# $$L = \max\big(-A\rho,\ -A\,\mathrm{clip}(\rho, 1-\varepsilon_{low}, 1+\varepsilon_{high})\big),
# \qquad L \leftarrow \min(L, -A\,c) \text{ if } A < 0$$
#
# with ε_low = 0.2, ε_high = 0.28 (Clip-Higher: more room to raise unlikely tokens) and the dual
# clip c = 10 that bounds the loss of a negative-advantage token whose ratio exploded. The
# default aggregation is a flat token mean over the mini-batch (code); the paper's per-step
# mean is `loss_agg="step_mean"`
# ([paper notes](../docs/paper-notes.md#pvc-loss-agg)). The per-token loss, as dslib has it:

# %%
print(inspect.getsource(tree_grpo.clipped_surrogate))

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
# ## 7. A short training run
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
# steps leading to its confident mistakes (sections 3 and 4).
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
# with sequence-level rewards it is exactly DAPO's loss (checked against TRL in the tests).
# Coarse rewards do not cancel on a shared prefix (net +2/3 per token in section 2); fine
# rewards credit it by its q-value. Dividing by σ is unsafe here: an all-wrong tree has σ = 0
# and fine-grained rewards that differ from μ, hence advantages near 10⁵–10⁶; the released
# scripts never divide. Its strength is that an all-wrong tree still carries a gradient; its
# catch, with the code's baseline, is that the gradient pushes up the prefixes of the confident
# mistake and leaves the mistake itself at A = 0. Notebook 05 adds the machinery that decides
# *which* problems get a tree at all.
#
# ## Exercises
#
# **1. Predict, then run.** In the hand-built tree of section 1, switch off the soft clip:
# `TreeGRPOConfig(reward="fine_raw")`. Before running, predict the advantage of node b's tokens
# (v_b = 1.3) in the wrong row a-b-bad, and of the wrong answer's tokens. Then run
# `tree_grpo.group_advantages(trajs, TreeGRPOConfig(reward="fine_raw"))[1]`.
#
# <details><summary>Solution</summary>
#
# `fine_raw` uses v itself instead of tanh(v); the terminal and μ are unchanged (μ = −1/3). Node
# b: 1.3 + 1/3 = **+1.633** (against tanh(1.3) + 1/3 = +1.195 with the clip); node a: 0.9 + 1/3 =
# +1.233; the wrong answer: −1 + 1/3 = **−0.667**, as before. The row is
# `[1.233]*4 + [1.633]*4 + [-0.667]*3`. Without the clip, a node that collected many backups
# (here b, on a correct path twice) outweighs the correct answer itself (+1.333).
#
# </details>
#
# **2. Pencil.** Four flat samples of one problem, one correct and three wrong, coarse rewards
# (every token gets its outcome). Compute the advantage of the correct and of a wrong sample,
# mean-only and std-normalised. Check with
# `tree_grpo.advantages([[1.0], [-1.0], [-1.0], [-1.0]], [1.0, -1.0, -1.0, -1.0], cfg)`.
#
# <details><summary>Solution</summary>
#
# μ = (1 − 3)/4 = −0.5. Mean-only: correct 1 + 0.5 = **+1.5**, wrong −1 + 0.5 = **−0.5**. The
# population σ = √((1.5² + 3·0.5²)/4) = √0.75 = 0.866, so std-normalised: correct 1.5/0.866 =
# **+1.732**, wrong −0.5/0.866 = **−0.577** (dslib adds 10⁻⁶ to σ, invisible at this
# precision). With four wrong samples instead, r − μ = 0 everywhere and both versions give 0:
# with outcome rewards σ = 0 is harmless, unlike section 3.
#
# </details>
#
# **3. Change the code.** The paper's baseline is the mean over *every* terminal of the tree
# (`baseline="tree"`). In a new cell, give the tree of section 1 one more wrong answer below b
# that was *not* recorded: `extra = tree.add_child(b, [7] * 3, finished=True, terminal=True)`
# and `extra.score, extra.outcome = -1.0, "wrong"`. Recompute
# `tree_grpo.group_advantages(trajs, TreeGRPOConfig(baseline="tree"), tree=tree)`. Which
# advantages change, and by how much, against the default `"recorded"`?
#
# <details><summary>Solution</summary>
#
# The recorded trajectories are still the three of section 1, so `"recorded"` keeps μ = −1/3.
# With `"tree"` μ is over the four terminals (+1, −1, −1, −1): μ = −0.5. Every advantage rises
# by 1/6 = 0.167: the correct answer gets 1 + 0.5 = +1.5 (was +1.333), the wrong answers
# −0.5 (was −0.667), node a 0.716 + 0.5 = +1.216 (was +1.050). One baseline shifts the whole
# group: an unrecorded failure makes every recorded token look better.
#
# </details>
