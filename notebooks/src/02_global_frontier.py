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
# # 02 · Jumping anywhere: the global frontier
#
# **Goal.** By the end you can compute the frontier priority F(s) of any unexpanded node term by
# term, predict where the search jumps after a wrong and after a correct answer, and say when a
# depth or entropy bonus overrides the quality term.
#
# Classic MCTS starts every iteration at the root and walks down by UCT (notebook 01). After a
# backup, DeepSearch instead looks at **every unexpanded node of the tree at once** and jumps
# to the most promising one. The paper's ablation (Table 3) credits this with fewer iterations
# per tree and a better reward, and its step-by-step table (Table 4) with the largest single
# gain of the method (+0.63 points).
#
# This notebook builds the frontier score on small hand-made trees, shows each of its terms,
# and then compares it with the "Vanilla UCT" restart on real searches of the tiny reasoner.

# %% tags=["parameters"]
seed = 0
level = 4          # countdown difficulty of the real searches
n_problems = 24    # problems searched per configuration (one tree each)

# %%
import inspect
import statistics
import warnings

warnings.filterwarnings("ignore", message="IProgress not found")  # tqdm without ipywidgets

import matplotlib.pyplot as plt
import torch
from transformers.utils import logging as hf_logging

from dslib import backup, frontier, search, tiny, viz
from dslib.config import SearchConfig
from dslib.tasks import countdown
from dslib.tree import Tree

hf_logging.disable_progress_bar()  # quieter checkpoint loading
torch.set_num_threads(1)  # the tiny model gains nothing from more threads; one avoids contention

# %% [markdown]
# ## 1. The frontier and its priority (v4 Eq. 6–7)
#
# The **frontier** is the set of nodes that could be expanded next (v4 Eq. 6):
#
# $$\mathcal{F} = \{\, s \in \mathcal{T} : \xi(s) = 0,\ s \notin \mathcal{S}_{\text{end}},\
# d(s) < d_T \,\}$$
#
# nodes without children (ξ(s) = 0) that are not terminal and not at the depth limit. Each
# candidate gets a priority (v4 Eq. 7) and the search expands s* = argmax F(s):
#
# $$F(s) = \underbrace{\lambda_1 \tanh\!\big(Q_{\text{parent}}(s)\big)}_{\text{quality}}
# + \underbrace{\lambda_2\, H\big(\pi_\theta(s \mid o_s)\big)}_{\text{uncertainty}}
# + \underbrace{\lambda_3\, D\big(d(s)\big)}_{\text{depth}}$$
#
# - **quality**: a fresh node has no value of its own (Q = 0), so it inherits the average value
#   of its parent, squashed by tanh; λ1 = 0.4;
# - **uncertainty**: an entropy bonus, λ2 = 0.4, **off** in the paper's chosen default and in
#   the released code (`SearchConfig.entropy_bonus=False`); the code's H is the mean negative
#   log-prob of the node's own sampled tokens, not the full-distribution entropy;
# - **depth**: D(d) = √(d/d_T) by default, λ3 = 0.01, so at most 0.01: a tie-breaker toward
#   deeper nodes. The paper also tried D = log(d+1) and the linear D = d (called `"constant"`
#   in the released code; `SearchConfig.depth_bonus="sqrt" | "log" | "linear"`).
#
# > **Paper vs code.** The code has one more, code-only term λ4·tanh(Q(s)) (λ4 = 0: off), and no
# > uncertainty term by default ([paper notes](../docs/paper-notes.md#pvc-frontier)).
#
# Ties go to the first node in depth-first order. `dslib.frontier.priority` returns the terms
# separately, so we can plot *why* a node wins:

# %%
print(inspect.getsource(frontier.priority))

# %% [markdown]
# ## 2. After a wrong answer: re-branch near the top
#
# A hand-built tree in the state the search would leave it in: the root was expanded into
# a, b, c; the search dived into a, then into a1, whose expansion produced a wrong terminal
# a1z, which was backed up (Eq. 3 with the code's γ = (k+1)/(L+1)). Fresh non-terminal children
# carry one visit, as in the search.

# %%
NAMES = ["x", "a", "b", "c", "a1", "a2", "a3", "a1x", "a1y", "a1z", "a2x", "a2y", "a2z"]
cfg = SearchConfig.tiny(width=3)   # d_T = 10; width 3 keeps the drawing small


def name_of(ids):
    """Hand-built nodes hold one token, the index of their name (for the drawings)."""
    return NAMES[ids[0]]


def expand(tree, parent, names, logprob=-0.3):
    """Attach children as the search would: fresh non-terminal children get one visit."""
    kids = [tree.add_child(parent, [NAMES.index(n)], [logprob]) for n in names]
    for kid in kids:
        kid.visits = 1
    return kids


def answer(tree, parent, name, outcome):
    leaf = tree.add_child(parent, [NAMES.index(name)], [-0.3], finished=True, terminal=True)
    leaf.score, leaf.outcome = (1.0 if outcome == "correct" else -1.0), outcome
    return leaf


tree = Tree(prompt_ids=[0])
a, b, c = expand(tree, tree.root, ["a", "b", "c"])
a1, a2, a3 = expand(tree, a, ["a1", "a2", "a3"])
expand(tree, a1, ["a1x", "a1y"])
a1z = answer(tree, a1, "a1z", "wrong")
backup.backup(a1z, a1z.score)
a1z.backed_up = True

choice = frontier.select(tree, cfg)
print("frontier:", [name_of(n.token_ids) for n in frontier.candidates(tree, cfg)])
print("s* =", name_of(choice.token_ids))

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(14, 3.8), gridspec_kw={"width_ratios": [1.1, 1]})
viz.draw_tree(tree, ax1, decode=name_of, highlight=a1z, frontier_choice=choice,
              title="after the wrong answer a1z")
viz.plot_frontier_terms(tree, cfg, ax=ax2, decode=name_of)
fig.tight_layout()
plt.show()

# %% [markdown]
# Read the bars from the top. The backup made every node on the failed path negative, and most
# negative near the failure (γ grows with depth): Q(a1) = −0.375 while Q(root) = Q(a) = −0.25.
# So the children of a1 rank last, and among the rest, the depth bonus breaks the tie between
# the children of the root (d = 1) and those of a (d = 2). The search **re-branches near the
# top of the failed path**, instead of retrying the step that just failed.
#
# ## 3. After a correct answer: branch near its end
#
# Now the search expands a2, and one child, a2x, is **correct**. The backup overwrites the
# negative values on the shared part of the path (the sign rule of v4 Eq. 5, notebook 03), so
# the whole path root → a → a2 → a2x becomes positive, most positive near the answer.

# %%
expand(tree, a2, ["a2y", "a2z"])
a2x = answer(tree, a2, "a2x", "correct")
backup.backup(a2x, a2x.score)
a2x.backed_up = True
choice = frontier.select(tree, cfg)
print("s* =", name_of(choice.token_ids))

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(14, 4.2), gridspec_kw={"width_ratios": [1.1, 1]})
viz.draw_tree(tree, ax1, decode=name_of, highlight=[a1z, a2x], frontier_choice=choice,
              title="after the correct answer a2x")
viz.plot_frontier_terms(tree, cfg, ax=ax2, decode=name_of)
fig.tight_layout()
plt.show()

# %% [markdown]
# The best candidates are now the siblings of the correct answer (their parent a2 has the
# highest Q): the search **looks for more solutions next to the one it found**, which gives the
# trainer several related correct trajectories with different final steps.
#
# ## 4. The depth bonus and the entropy bonus
#
# How big can each term get? On the tiny preset (d_T = 10) and in the paper (d_T = 64):

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 3), sharey=True)
for ax, d_T in zip(axes, (10, 64)):
    depths = list(range(d_T + 1))
    for kind in ("sqrt", "log", "linear"):
        ax.plot(depths, [0.01 * frontier.depth_bonus(d, kind, d_T) for d in depths],
                label=f"λ3·D, D = {kind}")
    ax.axhspan(-0.4, 0.4, color="#5e3c99", alpha=0.08, label="range of λ1·tanh(Q)")
    ax.set_title(f"d_T = {d_T}", fontsize=9)
    ax.set_xlabel("depth d")
    ax.set_ylim(-0.45, 0.7)
axes[0].set_ylabel("contribution to F(s)")
axes[0].legend(fontsize=7, loc="upper left")
fig.tight_layout()
plt.show()

# %% [markdown]
# With √(d/d_T) the depth term never exceeds 0.01: it only breaks ties. The linear bonus grows
# without bound (0.64 at the paper's depth 64) and soon outweighs any quality difference: the
# search then behaves like a depth-first dive. That is why the paper measured it as the fastest
# variant (85.7 iterations per tree instead of 189.3) with a lower reward (−0.76 vs −0.65,
# Table 3). The log bonus sits in between and changed little.
#
# The entropy bonus is of a different scale: λ2 = 0.4 times a mean negative log-prob that is
# often around 1, so when switched on it competes with the quality term. Suppose chunk c of our
# tree was sampled with low probability (mean −log p = 2.5 instead of 0.3):

# %%
c.logprobs = [-2.5]
cfg_h = SearchConfig.tiny(width=3, entropy_bonus=True)
print("without the entropy bonus s* =", name_of(frontier.select(tree, cfg).token_ids))
print("with    the entropy bonus s* =", name_of(frontier.select(tree, cfg_h).token_ids))
viz.plot_frontier_terms(tree, cfg_h, top=6, decode=name_of)
plt.show()

# %% [markdown]
# The uncertain chunk c now beats the neighbours of the correct answer. The sign of λ2 decides
# whether the search seeks (λ2 > 0) or avoids (λ2 < 0) uncertain regions; the paper's ablation
# with λ2 = 0.4 raised the trajectories' entropy (1.23 → 1.31) and the variance of the tree
# size (Table 3), and the default leaves it off.
#
# ## 5. The frontier on a real tree
#
# Now the tiny reasoner. A trick to watch one tree grow: the search is deterministic for a
# given seed, so searching the same problem with `n_trajectories=1` and then `2` gives the
# tree right after its first backup, and then after its second.

# %%
reasoner = tiny.build()
tokenizer = reasoner.load_tokenizer()
verifier = reasoner.verifier()
items = reasoner.prompted(level, "rl", n_problems)


def run(problems, **overrides):
    """Search with SearchConfig.tiny(**overrides) and a freshly seeded policy."""
    cfg = SearchConfig.tiny(seed=seed, **overrides)
    return search.run(problems, reasoner.load_policy(seed=seed), verifier, cfg), cfg


(first,), real_cfg = run(items[:1], n_trajectories=1)
(second,), _ = run(items[:1], n_trajectories=2)
nxt = frontier.select(first.tree, real_cfg)
print(countdown.prompt_text(items[0].problem))
print(f"after backup 1: {first.tree.n_nodes} nodes, next expansion at node #{nxt.id} "
      f"(depth {nxt.depth}); after backup 2: {second.tree.n_nodes} nodes")

fig, axes = plt.subplots(1, 2, figsize=(14, 4))
viz.draw_tree(first.tree, axes[0], highlight=first.tree.recorded, frontier_choice=nxt,
              labels=False, legend=False, title="after the first backup (ring: s*)")
viz.draw_tree(second.tree, axes[1], highlight=second.tree.recorded, labels=False,
              legend=False, title="after the second backup")
fig.tight_layout()
plt.show()
viz.plot_frontier_terms(first.tree, real_cfg, top=8)
plt.show()

# %% [markdown]
# ## 6. Global frontier vs Vanilla UCT, and the variants, on the same problems
#
# Every configuration searches the same `n_problems` problems with the same policy seed. We
# count iterations (batched expansions) per tree, the depth of the recorded trajectories, and
# the correct trajectories found.

# %%
variants = {
    "Vanilla UCT (backtrace='uct')": dict(backtrace="uct"),
    "global, D = sqrt (default)": dict(),
    "global, D = log": dict(depth_bonus="log"),
    "global, D = linear": dict(depth_bonus="linear"),
    "global + entropy bonus": dict(entropy_bonus=True),
}
def shape(results):
    """Every tree's nodes as (id, parent, tokens): equal shapes mean identical searches."""
    return [[(n.id, n.parent and n.parent.id, tuple(n.token_ids)) for n in r.tree.nodes()]
            for r in results]


rows, shapes = {}, {}
for name, overrides in variants.items():
    results, _ = run(items, **overrides)
    shapes[name] = shape(results)
    iters = [r.stats.iterations for r in results]
    trajs = [t for r in results for t in r.trajectories]
    rows[name] = {
        "iterations": iters,
        "depth": statistics.mean(len(t.node_spans) for t in trajs),
        "entropy": statistics.mean(t.entropy for t in trajs),
        "correct": sum(t.correct for t in trajs),
        "solved": sum(any(t.correct for t in r.trajectories) for r in results),
        "reward": statistics.mean(t.score for t in trajs),
        "exhausted": sum(r.exhausted for r in results),
    }

default = shapes["global, D = sqrt (default)"]
print(f"{'':29s} {'iter/tree':>10s} {'depth':>6s} {'entropy':>7s} {'reward':>6s} "
      f"{'correct':>7s} {'solved':>6s} {'exhausted':>9s}  identical trees to the default")
for name, r in rows.items():
    it = r["iterations"]
    same = sum(a == b for a, b in zip(shapes[name], default))
    print(f"{name:29s} {statistics.mean(it):5.1f} ± {statistics.stdev(it):3.1f} "
          f"{r['depth']:6.2f} {r['entropy']:7.3f} {r['reward']:+6.2f} {r['correct']:7d} "
          f"{r['solved']:3d}/{len(items)} {r['exhausted']:9d}  {same}/{len(items)}")

# %%
fig, ax = plt.subplots(figsize=(8, 2.8))
for y, r in enumerate(rows.values()):
    it = r["iterations"]
    jitter = [y + 0.25 * ((k * 0.618) % 1 - 0.5) for k in range(len(it))]  # spread the dots
    ax.scatter(it, jitter, s=12, alpha=0.6, color="#5e3c99")
    ax.scatter([statistics.mean(it)], [y], marker="|", s=400, color="black")
ax.set_yticks(range(len(rows)), list(rows))
ax.invert_yaxis()
ax.set_xlabel("iterations per tree (dots: trees, bar: mean)")
fig.tight_layout()
plt.show()

# %% [markdown]
# How to read this, honestly: these are a couple of dozen small trees (depth ≤ 10, width 4,
# 4 trajectories), so the iteration counts differ by a few expansions, and the correct counts
# are small integers: one lucky sample moves them. Re-run with another `seed` before believing
# a difference in the correct column. Some structural effects are robust, though. The Vanilla
# UCT restart spends its expansions on more top-level branches (notebook 01). The log and √
# bonuses are both increasing in depth and both far below the typical quality gap, so they
# break the same ties the same way: the trees are (nearly) identical, the last column shows how
# many. The linear bonus (at most 0.1 at d_T = 10) and the entropy bonus change some choices.
# For scale, the paper's Table 3 reports 209.6 iterations per tree for Vanilla UCT, 189.3 for
# the default, 185.5 for the log bonus and 85.7 for the linear one, with 256-token steps,
# depth 64 and width 8 on 1.2K very hard DeepMath problems.
#
# ## Summary
#
# After a backup, DeepSearch does not restart from the root: it scores every unexpanded,
# non-terminal node with F(s) = λ1·tanh(Q_parent) + λ2·H + λ3·D(d) (v4 Eq. 7) and expands the
# best one. The quality term dominates: after a wrong answer the search re-branches near the
# top of the failed path, after a correct one it branches next to the answer. The depth bonus
# √(d/d_T) only breaks ties; a linear bonus turns the search into a depth-first dive; the
# entropy bonus (off by default, and computed by the code from the sampled tokens only) pulls
# toward uncertain chunks. `backtrace="uct"` restores the Vanilla UCT restart for comparison.
#
# ## Exercises
#
# **1. Predict, then run.** In the tree of section 2 (after the wrong answer a1z), Q(root) =
# Q(a) = −0.25 and Q(a1) = −0.375, d_T = 10. Predict F(b), F(a2) and F(a1x) with the default
# weights, and which one wins. Then run, right after section 2's cell,
# `[(name_of(n.token_ids), round(t.total, 4)) for n, t in frontier.ranked(tree, cfg)]`.
#
# <details><summary>Solution</summary>
#
# F = 0.4·tanh(Q_parent) + 0.01·√(d/10). b (d = 1): 0.4·tanh(−0.25) + 0.01·√0.1 = −0.0980 +
# 0.0032 = **−0.0948**. a2 (d = 2): −0.0980 + 0.01·√0.2 = **−0.0935**. a1x (d = 3):
# 0.4·tanh(−0.375) + 0.01·√0.3 = −0.1433 + 0.0055 = **−0.1379**. a2 wins (a3 ties with it and
# comes later in depth-first order): same quality as b, larger depth bonus.
#
# </details>
#
# **2. Pencil.** With the linear bonus (D = d, λ3 = 0.01, the paper's d_T = 64), a fresh node
# X below a parent with Q = −0.25 competes with a node Y at depth 1 below a parent with Q = +0.5.
# From which depth of X does X win?
#
# <details><summary>Solution</summary>
#
# Y leads on quality by 0.4·(tanh 0.5 − tanh(−0.25)) = 0.4·(0.4621 + 0.2449) = 0.2828. X gains
# 0.01·(d − 1) on depth. X wins once 0.01·(d − 1) > 0.2828, i.e. **d ≥ 30** (F(X) = 0.2020
# against F(Y) = 0.1948 at d = 30; 0.1920 at d = 29). `frontier.depth_bonus(d, "linear", 64)`
# returns d. With the default √(d/64) the bonus never exceeds 0.01 and X never wins.
#
# </details>
#
# **3. Change the code.** Right after section 2's cell (before section 3 changes the tree), add
# a cell that selects with the linear bonus and a larger weight:
# `frontier.select(tree, SearchConfig.tiny(width=3, depth_bonus="linear", lambda3=lam))` for
# `lam` in 0.01, 0.04, 0.05, 0.1. From which λ3 does the search retry the failed step (a child
# of a1) instead of re-branching near the top?
#
# <details><summary>Solution</summary>
#
# The best child of a1 (a1x, d = 3) has F = −0.1433 + 3λ3; the best at d = 2 (a2) has
# −0.0980 + 2λ3. a1x wins when λ3 > 0.4·(tanh 0.375 − tanh 0.25) = **0.0454**: s* is a2 for
# 0.01 and 0.04, a1x for 0.05 and 0.1. A linear bonus that large turns "re-branch near the top"
# into "dive where it just failed".
#
# </details>
