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
# # 03 · Learning from mistakes: which answer is backed up, and the sign rule
#
# **Goal.** By the end you can say which terminal of an expansion DeepSearch backs up, compute by
# hand the q-values the constrained sign rule leaves on its path, and check on real trees that
# no node of a correct trajectory ends below 0.
#
# Each expansion can produce several terminal nodes at once (complete answers), most of them
# wrong on a hard problem. DeepSearch backs up **one** of them per expansion and records it as a
# training trajectory. Which one, and how its ±1 changes the q-values of the nodes above it,
# decides what the model later learns. Two rules do the work:
#
# - **supervision** (v4 Eq. 1–2): a correct answer if there is one, otherwise the *most
#   confident* wrong answer;
# - **the constrained backup** (v4 Eq. 5): a sign rule that keeps every node that ever led to a
#   correct answer at q ≥ 0, however many failures pass through it later.
#
# As before, hand-built trees first, then real searches of the tiny reasoner.

# %% tags=["parameters"]
seed = 0
level = 4          # countdown difficulty of the real searches
n_problems = 24    # problems searched per configuration (one tree each)

# %%
import inspect
import random
import statistics
import warnings

warnings.filterwarnings("ignore", message="IProgress not found")  # tqdm without ipywidgets

import matplotlib.pyplot as plt
import torch
from transformers.utils import logging as hf_logging

from dslib import backup, search, supervision, tiny, viz
from dslib.config import SearchConfig
from dslib.tasks import countdown
from dslib.tree import Tree

hf_logging.disable_progress_bar()  # quieter checkpoint loading
torch.set_num_threads(1)  # the tiny model gains nothing from more threads; one avoids contention

# %% [markdown]
# ## 1. Terminal scores and the confident negative (v4 Eq. 1, 2, 4)
#
# A terminal s_end gets q(s_end) = +1 if the verifier accepts its answer and −1 otherwise, and
# also −1 if it hit the depth limit without an answer (v4 Eq. 4; `SearchConfig.incomplete_score`).
# The new terminals of one expansion are split into correct and incorrect ones (Eq. 1). If
# some are correct, those are used. If none is, the paper backs up the wrong answer the model
# was **most sure of** (Eq. 2):
#
# $$s^*_{\text{neg}} = \arg\min_{s \in \mathcal{S}_{\text{incorrect}}} \bar H\big(t(s)\big),
# \qquad \bar H(t) = \frac{1}{|t|}\sum_i H\big(\pi_\theta(\cdot \mid o_i)\big)$$
#
# the lowest average entropy along its root-to-leaf trajectory t(s). The intuition: a confident
# mistake is the most useful one to push down. Keep that sentence in mind: notebook 04
# (section 4) shows that, in a tree without a correct answer, the released Tree-GRPO advantage
# never pushes it down (A = 0 on its tokens, A > 0 on its prefix).
#
# > **Paper vs code.** What the released code does, and the kit by default (paper notes:
# > [which terminal](../docs/paper-notes.md#which-terminal),
# > [entropy](../docs/paper-notes.md#entropy);
# > paper vs code items [2](../docs/paper-notes.md#pvc-backup-count) and
# > [3](../docs/paper-notes.md#pvc-entropy)):
# >
# > | | paper | code (kit default) |
# > |---|---|---|
# > | entropy H̄ | mean Shannon entropy per step | mean −log p of the *sampled* tokens |
# > | correct answers | all of them are used | only **one**, the lowest-entropy one |
# > | which negative | most confident | most confident |
#
# The switches: `entropy="sampled_nll"` / `"shannon"`, `backup_terminals="one"` /
# `"all_correct"`, and `negative_choice="most_confident"` / `"random"` / `"least_confident"`
# (the ablation of the paper's Table 5). The rule, as dslib has it:

# %%
print(inspect.getsource(supervision.choose_terminal))

# %% [markdown]
# A hand-built expansion: node p (two steps below the root) produced three wrong answers,
# sampled with different confidence, and one unfinished chunk.

# %%
NAMES = ["x", "s1", "p", "w1", "w2", "w3", "u", "ok"]


def name_of(ids):
    """Hand-built nodes hold tokens whose first one is the index of their name."""
    return NAMES[ids[0]]


def chunk(name, nll, n_tokens=4):
    """A chunk of n_tokens tokens, each sampled with probability exp(-nll)."""
    return [NAMES.index(name)] * n_tokens, [-nll] * n_tokens


tree = Tree(prompt_ids=[0])
s1 = tree.add_child(tree.root, *chunk("s1", 0.5))
p = tree.add_child(s1, *chunk("p", 0.5))
s1.visits = p.visits = 1
wrong = []
for name, nll in (("w1", 0.9), ("w2", 0.2), ("w3", 1.6)):
    leaf = tree.add_child(p, *chunk(name, nll), finished=True, terminal=True)
    leaf.score, leaf.outcome = -1.0, "wrong"
    wrong.append(leaf)
u = tree.add_child(p, *chunk("u", 0.7))
u.visits = 1

for leaf in wrong:
    print(f"{name_of(leaf.token_ids)}: trajectory entropy H̄ = "
          f"{supervision.trajectory_entropy(leaf):.3f}")
kind, kept = supervision.partition(wrong)
print("kept class:", kind)
rng = random.Random(seed)
for choice in supervision.NEGATIVE_CHOICES:
    picked = supervision.choose_terminal(wrong, negative_choice=choice, rng=rng)
    print(f"negative_choice={choice!r:18s} -> {name_of(picked.token_ids)}")

# %% [markdown]
# H̄ is a token-level mean over the *whole* response (s1, p and the answer), so the shared
# prefix dilutes the differences between siblings, but the order is the order of the answers'
# own confidence: w2 is the confident mistake.
#
# Now suppose the same expansion had also produced a correct answer `ok`. The correct class
# wins, whatever the entropies; with the paper's `all_correct`, every correct answer would be
# backed up (here there is only one):

# %%
ok = tree.add_child(p, *chunk("ok", 1.2), finished=True, terminal=True)
ok.score, ok.outcome = 1.0, "correct"
candidates = [*wrong, ok]
print("class:", supervision.partition(candidates)[0],
      "| picked:", name_of(supervision.choose_terminal(candidates).token_ids),
      "| all_correct backs up:",
      [name_of(n.token_ids) for n in supervision.to_back_up(candidates, "all_correct")])

fig, ax = plt.subplots(figsize=(7, 3.4))
viz.draw_tree(tree, ax, decode=name_of, negative=wrong[1], highlight=ok,
              title="one expansion of p: the pick is ok; without it, the dashed w2")
plt.show()

# %% [markdown]
# ## 2. The sign rule (v4 Eq. 5)
#
# The basic backup (v4 Eq. 3) adds γ(i, l)·q(s_end) to every node on the path. The paper
# replaces it by a **constrained** update:
#
# $$q^{(m)}(s_i) = \begin{cases}
# q^{(m-1)}(s_i) + \gamma(i,l)\, r & \text{if } q^{(m-1)}(s_i)\, r \ge 0 \\
# \gamma(i,l)\, r & \text{else if } r > 0 \\
# q^{(m-1)}(s_i) & \text{else if } q^{(m-1)}(s_i) > 0
# \end{cases}
# \qquad r = q^{(m)}(s_{\text{end}})$$
#
# Same signs accumulate. A **negative node on a new correct path is overwritten** with a
# positive value. A **positive node ignores a negative signal**. Consequence (App. B.2): a node
# that was ever on a correct trajectory keeps q ≥ 0, and only nodes never seen on a correct
# trajectory can turn negative. Compare the "vanilla" update of the paper's Table 4,
# q + γ·r if the signs agree and max(q + γ·r, 0) otherwise (`backup_rule="vanilla"`), which
# lets failures erode a good node down to 0.
#
# `dslib.backup.update_value` is the rule for one node:

# %%
print(inspect.getsource(backup.update_value))

# %%
for q_old, r in ((0.5, 1.0), (0.5, -1.0), (-0.5, 1.0), (-0.5, -1.0), (0.0, -1.0)):
    new_c = backup.update_value(q_old, 0.5, r)
    new_v = backup.update_value_vanilla(q_old, 0.5, r)
    print(f"q = {q_old:+.1f}, γ = 0.5, r = {r:+.0f}:  constrained -> {new_c:+.2f}   "
          f"vanilla -> {new_v:+.2f}")

# %% [markdown]
# On a path: the search first finds a correct answer c below root → a → b, then a wrong answer
# w next to it. With the constrained rule the shared nodes a and b keep their credit; with the
# vanilla rule the failure takes part of it back.

# %%
PATH_NAMES = ["x", "a", "b", "c", "w"]


def path_name(ids):
    return PATH_NAMES[ids[0]]


def correct_then_wrong(rule, order=("c", "w")):
    """root -> a -> b -> {c: correct, w: wrong}; back up the two answers in `order`."""
    t = Tree(prompt_ids=[0])
    a = t.add_child(t.root, [1])
    b = t.add_child(a, [2])
    a.visits = b.visits = 1
    leaves = {}
    for i, (name, score) in enumerate((("c", 1.0), ("w", -1.0)), start=3):
        leaf = t.add_child(b, [i], finished=True, terminal=True)
        leaf.score, leaf.outcome = score, "correct" if score > 0 else "wrong"
        leaves[name] = leaf
    first, second = (leaves[n] for n in order)
    backup.backup(first, first.score, rule=rule)
    snap = t.to_dict(decode=path_name)
    backup.backup(second, second.score, rule=rule)
    return snap, t.to_dict(decode=path_name), second


fig, axes = plt.subplots(1, 3, figsize=(13, 3.4))
for ax, rule, order in zip(axes, ("constrained", "vanilla", "constrained"),
                           (("c", "w"), ("c", "w"), ("w", "c"))):
    before, after, second = correct_then_wrong(rule, order)
    viz.plot_q_before_after(before, after, ax=ax, path=second.id,
                            labels=(f"after {order[0]}", f"after {order[1]}"),
                            title=f"{rule}: {order[0]} then {order[1]}")
fig.tight_layout()
plt.show()

# %% [markdown]
# - left: the wrong answer w gets −1, but a and b, already on a correct path, keep their values
#   (case 3 of Eq. 5); the root is updated too in the code, and is positive as well, so it
#   also keeps its value;
# - middle: the vanilla rule subtracts γ·1 and clips at 0. Both answers sit at the same depth,
#   so the failure takes back exactly what the success gave: a, b and the root drop to 0;
# - right: the other order. The failure first makes a and b negative; the correct answer then
#   **overwrites** them with γ·1 (case 2): the same q as if the failure had never happened
#   (only the visit count N, and so Q = q/N, remembers it).
#
# ## 3. Real searches: checking the invariant
#
# Now the tiny reasoner on `n_problems` hard problems. For every tree we collect the nodes that
# lie on a recorded correct trajectory and check App. B.2's two claims over the final tree.

# %%
reasoner = tiny.build()
tokenizer = reasoner.load_tokenizer()
verifier = reasoner.verifier()
items = reasoner.prompted(level, "rl", n_problems)


def run(**overrides):
    """Search all problems with SearchConfig.tiny(**overrides) and a freshly seeded policy."""
    cfg = SearchConfig.tiny(seed=seed, **overrides)
    return search.run(items, reasoner.load_policy(seed=seed), verifier, cfg)


def check_sign_invariant(results):
    """(nodes on correct paths, of those with q < 0, negative nodes elsewhere, nodes in all)."""
    on_correct = negative_there = negative_elsewhere = total = 0
    for r in results:
        good = {id(n) for t in r.trajectories if t.correct for n in t.leaf.path()}
        for node in r.tree.nodes():
            total += 1
            if id(node) in good:
                on_correct += 1
                negative_there += node.value < 0
            else:
                negative_elsewhere += node.value < 0
    return on_correct, negative_there, negative_elsewhere, total


results = {"constrained": run(), "vanilla": run(backup_rule="vanilla")}
for rule, res in results.items():
    on_correct, bad, neg_else, total = check_sign_invariant(res)
    solved = sum(any(t.correct for t in r.trajectories) for r in res)
    print(f"{rule:11s}: {total} nodes, {on_correct} on a correct trajectory "
          f"({solved}/{len(res)} trees solved); of those, q < 0: {bad} "
          f"-> invariant {'holds' if bad == 0 else 'VIOLATED'}; "
          f"negative nodes elsewhere: {neg_else}")

# %% [markdown]
# Under the constrained rule the invariant holds by construction: a correct backup always
# leaves a node at γ·1 ≥ 0.1 > 0, and from then on failures are ignored. The vanilla rule has
# no such guarantee, and the table of section 2 shows how it breaks: a correct answer lifts a
# negative node only to max(q + γ, 0), possibly exactly 0 (row 3), and the next failure then
# pushes it below 0 (row 5). Whether that happens in a given run depends on the order of
# successes and failures, so check the counts above rather than trusting a single run.
#
# The values these nodes end with become the per-token rewards of training ([paper
# notes](../docs/paper-notes.md#token-rewards)):

# %%
fig, ax = plt.subplots(figsize=(7, 3))
per_rule = {
    rule: [n.value for r in res for t in r.trajectories if t.correct for n in t.nodes[:-1]]
    for rule, res in results.items()
}
everything = [v for values in per_rule.values() for v in values] or [0.0]
span = (min(everything + [0.0]) - 0.05, max(everything + [1.0]) + 0.05)
for rule, values in per_rule.items():
    if values:
        ax.hist(values, bins=16, range=span, alpha=0.6, label=f"{rule} ({len(values)} nodes)")
ax.axvline(0, color="#404040", lw=0.8)
ax.set_xlabel("final q of the intermediate nodes on correct trajectories")
ax.set_ylabel("count")
ax.legend(fontsize=8)
fig.tight_layout()
plt.show()

# %% [markdown]
# A tree where a correct answer was found, with its correct path highlighted. Its nodes stay on
# the purple (positive) side, while the failed branches around it turn orange:

# %%
solved = [r for r in results["constrained"] if any(t.correct for t in r.trajectories)]
if solved:
    example = solved[0]
    correct_leaves = [t.leaf for t in example.trajectories if t.correct]
    viz.draw_tree(example.tree, highlight=correct_leaves,
                  title=f"{countdown.prompt_text(example.problem.problem)}".replace("\n", "   "))
    plt.show()
else:
    print("no tree found a correct answer with these parameters: try another seed or level 3")

# %% [markdown]
# ## 4. Which negative? The switches on the same problems
#
# The paper's Table 5 trains with three choices of the backed-up wrong answer: most confident
# (62.95 average), random (62.09) and least confident (61.90). Training is the later notebooks'
# business; here we look at what each choice puts into the recorded trajectories.

# %%
variants = {
    "most_confident (default)": dict(),
    "random": dict(negative_choice="random"),
    "least_confident": dict(negative_choice="least_confident"),
    "all_correct (paper)": dict(backup_terminals="all_correct"),
}
rows = {"most_confident (default)": results["constrained"]}
for name, overrides in variants.items():
    if name not in rows:
        rows[name] = run(**overrides)


def shape(results):
    """Every tree's nodes as (id, parent, tokens): equal shapes mean identical searches."""
    return [[(n.id, n.parent and n.parent.id, tuple(n.token_ids)) for n in r.tree.nodes()]
            for r in results]


default_shape = shape(rows["most_confident (default)"])
print(f"{'':26s} {'iter/tree':>9s} {'H̄ wrong':>8s} {'correct':>8s} {'solved':>7s}  "
      f"same trees as the default")
for name, res in rows.items():
    wrong_h = [t.entropy for r in res for t in r.trajectories if not t.correct]
    print(f"{name:26s} {statistics.mean(r.stats.iterations for r in res):9.1f} "
          f"{statistics.mean(wrong_h):8.3f} "
          f"{sum(t.correct for r in res for t in r.trajectories):8d} "
          f"{sum(any(t.correct for t in r.trajectories) for r in res):4d}/{len(res)}  "
          f"{shape(res) == default_shape}")

fig, ax = plt.subplots(figsize=(7, 3))
choices = ("most_confident (default)", "random", "least_confident")
wrong_h = {name: [t.entropy for r in rows[name] for t in r.trajectories if not t.correct]
           for name in choices}
top = max(max(v, default=0.0) for v in wrong_h.values()) + 0.05
for name in choices:
    ax.hist(wrong_h[name], bins=12, range=(0, top), histtype="step", lw=2, label=name)
ax.set_xlabel("trajectory entropy H̄ of the recorded wrong answers")
ax.set_ylabel("count")
ax.legend(fontsize=8)
fig.tight_layout()
plt.show()

# %% [markdown]
# The recorded negatives shift as designed: the default keeps the lowest-entropy wrong answers,
# `least_confident` the highest, `random` sits in between.
#
# Surprise: with the default global backtrace, the three searches grow **the same trees**
# (last column). The candidates of one expansion are
# siblings, so whichever wrong sibling is backed up, its ancestors receive exactly the same
# update (same depth, same γ, same −1), the frontier makes the same next choice, and the
# policy sees the same prefixes. The switch changes *which trajectory is recorded*, i.e. the
# training sample, not the search; that is why the paper's Table 5 is a training-time
# ablation. `all_correct` changes the tree only when one expansion yields two or more correct
# answers at once (each is then backed up and recorded, so such a tree stops sooner); on hard
# problems that is rare.
#
# ## Summary
#
# Per expansion, DeepSearch backs up one terminal: a correct one when available (the code takes
# the lowest-entropy one; the paper's `all_correct` takes all), otherwise the wrong answer with
# the lowest trajectory entropy, i.e. the confident mistake (v4 Eq. 1–2; the code measures H̄
# as the mean −log p of the sampled tokens). Its score travels up the path with the depth
# weight γ (Eq. 3) under the sign rule (Eq. 5): agreeing signs add up, a correct answer
# overwrites negative values on its path, and a failure never lowers a node that already led
# to a correct answer. The real searches confirm the invariant: no node on a correct trajectory
# ends below 0.
#
# ## Exercises
#
# **1. Predict, then run.** Back up the confident mistake of section 1 yourself:
# `backup.backup(wrong[1], -1.0)`. Before running, predict the value of the root, s1, p and w2
# afterwards (the code's γ; all four start at 0). Then print
# `[n.value for n in wrong[1].path()]`.
#
# <details><summary>Solution</summary>
#
# w2 is at depth l = 3; the code's weight is γ(k) = max((k + 1)/(l + 1), 0.1): 1/4, 2/4, 3/4, 1
# for the root, s1, p, w2. All values are 0, so the signs "agree" (q·r = 0) and each node gets
# q + γ·(−1): **root −0.25, s1 −0.5, p −0.75, w2 −1.0**. The deeper a node, the more of the
# blame it takes.
#
# </details>
#
# **2. Pencil.** A path root → a → b, with two wrong answers and then one correct answer, all
# three children of b (depth 3), backed up in that order. With the code's γ, compute q(a) and
# q(b) after each backup under the constrained rule and under the vanilla rule. Check with
# `backup.backup(leaf, score, rule=...)` on a small tree like `correct_then_wrong`'s.
#
# <details><summary>Solution</summary>
#
# γ(a) = 2/4 = 0.5, γ(b) = 3/4 = 0.75. First failure: a = −0.5, b = −0.75 (both rules: q = 0).
# Second failure, signs agree: a = −1.0, b = −1.5 (both rules). The correct answer:
#
# - constrained, case 2 (negative node, r > 0): overwrite with γ·1, **a = 0.5, b = 0.75**;
# - vanilla: max(q + γ, 0) = max(−1.0 + 0.5, 0) = **0** for a and max(−1.5 + 0.75, 0) = **0**
#   for b.
#
# The constrained rule forgets the two failures in q (only N remembers them); the vanilla rule
# leaves the nodes that led to the only correct answer at 0.
#
# </details>
#
# **3. Change the code.** In `correct_then_wrong` (section 2), pass the paper's depth weight
# to both backups: `backup.backup(first, first.score, rule=rule, mode="paper")` (and the same for
# `second`). Which values of the left panel (constrained, c then w) change, and to what?
#
# <details><summary>Solution</summary>
#
# The paper's weight is γ(i) = max(i/l, 0.1) with l = 3: root max(0, 0.1) = 0.1, a 1/3, b 2/3,
# and 1 for the leaf; the code's is (k + 1)/(l + 1): 0.25, 0.5, 0.75, 1. After c the path holds
# **root 0.1, a 0.333, b 0.667** (instead of 0.25, 0.5, 0.75), and w's −1 changes none of
# them (they are positive: case 3), so the "after w" bars are the same as "after c". The two
# answers keep +1 and −1. The paper's weight gives the first steps less credit.
#
# </details>
