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
# # 01 · Walking down the tree: UCT among siblings
#
# **Goal.** By the end you can compute the UCT score of each child of a node from its q, N and
# its parent's N, explain why fresh siblings always tie in the released code, and say where in
# a DeepSearch iteration UCT is used and where it is not.
#
# DeepSearch grows **one search tree per training problem**. The root is the prompt; every other
# node is one *step*: a fixed-length chunk of sampled tokens in the paper (256 tokens), one line
# of arithmetic in our tiny preset (`step_boundary="\n"`, at most 24 tokens: lines are where the
# countdown reasoning branches, and at equal tokens they find more answers than 8-token chunks,
# `reproduce/bench_exploration.py`). A root-to-leaf path is a complete answer, a
# **trajectory**. One iteration of the search:
#
# 1. **expand** the current node: sample `width` continuations in one batched policy call and
#    attach them all as children; a child that ends with EOS (or reaches the maximum depth
#    d_T) is a **terminal** and gets verified: +1 correct, −1 wrong (v4 Eq. 4);
# 2. if there are new terminals: **back up** one of them, i.e. push its score up the path
#    (v4 Eq. 3–5), and record it as a training trajectory;
# 3. **select** the node to expand next.
#
# This notebook is about the oldest selection rule, **UCT**, used to walk from a node to one of
# its children. Notebook 02 is about the *global frontier* that DeepSearch adds, notebook 03
# about *which* terminal is backed up and how the q-values change.
#
# Everything below calls `dslib`; the notebook never re-implements the algorithm.

# %% tags=["parameters"]
seed = 0
level = 4          # countdown difficulty of the real searches (4 or 5 numbers: the hard levels)
n_problems = 16    # problems searched in the real runs (one tree each)
c = 2.0            # UCT exploration constant (lambda, 2.0 in the paper, App. A.2)

# %%
import inspect
import random
import warnings

warnings.filterwarnings("ignore", message="IProgress not found")  # tqdm without ipywidgets

import matplotlib.pyplot as plt
import torch
from transformers.utils import logging as hf_logging

from dslib import backup, search, tiny, uct, viz
from dslib.config import SearchConfig
from dslib.tasks import countdown
from dslib.tree import Tree

hf_logging.disable_progress_bar()  # quieter checkpoint loading
torch.set_num_threads(1)  # the tiny model gains nothing from more threads; one avoids contention

# %% [markdown]
# ## 1. The UCT score
#
# Among the children s of a node, UCT (v4 Sec. 3.3, inline and unnumbered; v1 Eq. 8) picks the
# one with the largest
#
# $$\mathrm{UCT}(s) = Q(s) + \lambda\,\sqrt{\frac{\ln N_{\text{parent}}(s)}{N(s)}},
# \qquad Q(s) = \frac{q(s)}{N(s)},\quad \lambda = 2.$$
#
# - q(s) is the node's *accumulated* q-value (backups add to it), N(s) its visit count, and
#   Q(s) the average: the **exploitation** term;
# - the square root is the **exploration** bonus: large for children visited rarely compared
#   with their parent.
#
# The released code adds two details that `dslib.uct.score` follows: the bonus is 0 (not +∞)
# when N(s) = 0 or N(parent) = 0, and terminal children score −∞ (they are never walked into).

# %%
print(inspect.getsource(uct.score))

# %% [markdown]
# Let us build a node with three children by hand. The code gives every freshly generated
# non-terminal child **one visit with value 0** (`update(0.0)`, [paper
# notes](../docs/paper-notes.md#backup)); `search.run` does this for us, here we do it by hand.

# %%
NAMES = ["x", "a", "b", "d", "a1", "a2", "b1"]


def name_of(ids):
    """Hand-built nodes hold one token, the index of their name (for the drawings)."""
    return NAMES[ids[0]]


tree = Tree(prompt_ids=[0])
a, b, d = (tree.add_child(tree.root, [i]) for i in (1, 2, 3))
for child in (a, b, d):
    child.visits = 1           # what the search does for every fresh non-terminal child

for name, child in zip("abd", (a, b, d)):
    print(f"{name}: Q={child.q:+.2f}  N={child.visits}  UCT={uct.score(child, c):+.3f}")
print("deterministic pick:", "abd"[tree.root.children.index(uct.select(tree.root, c))])

# %% [markdown]
# ## 2. Why the code's UCT is degenerate at first
#
# All three scores are equal: Q = 0 and the root has no visits yet (the root is only visited by
# backups), so the bonus is 0 too. Even with visits the tie would remain, because fresh
# siblings always have the same Q = 0 and N = 1.
#
# The code picks with a deterministic `argmax`, and on ties `argmax` returns the **first**
# maximum: the search always continues with the **first generated child**. Since siblings are
# independent samples of the same policy, "the first one" is just a random one. This is one of
# the places where the released code and a textbook reading of the paper differ (paper notes:
# [UCT](../docs/paper-notes.md#uct), paper vs code [item 6](../docs/paper-notes.md#pvc-uct)). The
# kit follows the code by default (`SearchConfig.uct_deterministic=True`); the switch
# `uct_deterministic=False` samples a child with probability softmax(UCT) instead:

# %%
rng = random.Random(seed)
draws = [uct.select(tree.root, c, deterministic=False, rng=rng) for _ in range(3000)]
print("softmax picks among identical siblings:",
      {name: sum(x is child for x in draws) for name, child in zip("abd", (a, b, d))})

# %% [markdown]
# ## 3. A backup breaks the tie
#
# Suppose we walked into `a`, expanded it, and one of its children `a1` is a **wrong** answer.
# Its score r = −1 is backed up along the path root → a → a1 (v4 Eq. 3):
#
# $$q(s_i) \leftarrow q(s_i) + \gamma(i, l)\, r,
# \qquad \gamma(i,l) = \max\!\left(\frac{i}{l},\ \gamma_{\min}\right),\ \gamma_{\min}=0.1$$
#
# where i is the node's index on the path and l the terminal's: nodes close to the answer get
# more of the blame (or credit). Every node on the path also gets one more visit.
#
# > **Paper vs code.** The released code uses depth k and leaf depth L with an off-by-one,
# > γ = max((k+1)/(L+1), 0.1), which also updates the root. The kit follows the code
# > (`SearchConfig.gamma="code"`); `gamma="paper"` gives i/l
# > ([paper notes](../docs/paper-notes.md#pvc-gamma)).
# (Which terminal is backed up and the *sign rule* of Eq. 5 are the topic of
# notebook 03; here all signs agree, so Eq. 5 reduces to Eq. 3.)

# %%
print(inspect.getsource(backup.gamma))

# %%
a1 = tree.add_child(a, [4], terminal=True)
a1.score, a1.outcome = -1.0, "wrong"
a2 = tree.add_child(a, [5])
a2.visits = 1
before = tree.to_dict(decode=name_of)
backup.backup(a1, a1.score, gamma_min=0.1, mode="code")
a1.backed_up = True
after = tree.to_dict(decode=name_of)
print("gamma (code) for depths 0, 1, 2 with L=2:",
      [round(backup.gamma(k, 2, 0.1, "code"), 3) for k in range(3)])
print("gamma (paper):                          ",
      [round(backup.gamma(k, 2, 0.1, "paper"), 3) for k in range(3)])

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.6), gridspec_kw={"width_ratios": [1.3, 1]})
viz.draw_tree(tree, ax1, highlight=a1, decode=name_of,
              title="after backing up the wrong answer a1")
viz.plot_q_before_after(before, after, ax=ax2, title="q on the path root → a → a1")
fig.tight_layout()
plt.show()

# %% [markdown]
# Now `a` has Q = −1/3 (q = −2/3 over N = 2), while `b` and `d` still have Q = 0. The root has
# one visit, and ln 1 = 0, so the exploration bonus is still 0 and UCT walks into `b`:

# %%
def uct_table(parent, names):
    for name, child in zip(names, parent.children):
        u = uct.score(child, c) - child.q if not child.terminal else float("nan")
        print(f"{name}: Q={child.q:+.3f}  N={child.visits}  bonus={u:.3f}  "
              f"UCT={uct.score(child, c):+.3f}")
    picked = uct.select(parent, c)
    print("deterministic pick:", names[parent.children.index(picked)])


uct_table(tree.root, "abd")

# %% [markdown]
# After a second backup (say a correct answer found below `b`) the root has N = 2 and the
# bonus switches on: it favours `d`, the child that was never on a backed-up path. With a
# large λ the bonus dominates; with a small one UCT follows Q. The bars show both parts of the
# score for each child:

# %%
b1 = tree.add_child(b, [6], terminal=True)
b1.score, b1.outcome = 1.0, "correct"
backup.backup(b1, b1.score)
b1.backed_up = True
uct_table(tree.root, "abd")

fig, axes = plt.subplots(1, 3, figsize=(11, 2.8), sharey=True)
for ax, lam in zip(axes, (0.5, c, 8.0)):
    qs = [ch.q for ch in tree.root.children]
    bonus = [uct.score(ch, lam) - ch.q for ch in tree.root.children]
    ax.bar(list("abd"), bonus, bottom=qs, color="#b2abd2", label="exploration bonus")
    ax.bar(list("abd"), qs, color="#5e3c99", label="Q(s)", zorder=3)
    ax.scatter(list("abd"), [q + u for q, u in zip(qs, bonus)], marker="_", s=400,
               color="black", zorder=4, label="UCT(s)")
    ax.axhline(0, color="#404040", lw=0.8)
    best = "abd"[tree.root.children.index(uct.select(tree.root, lam))]
    ax.set_title(f"λ = {lam}: picks {best}", fontsize=9)
axes[0].legend(fontsize=7)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 4. Where UCT acts inside DeepSearch
#
# The search uses UCT in two places (`dslib/search.py`; paper notes:
# [UCT](../docs/paper-notes.md#uct), [the global frontier](../docs/paper-notes.md#frontier)):
#
# - **local descent**: after an expansion that produced *no* terminal, walk into one of the new
#   children by UCT and expand it next. As shown above, these children are always tied, so the
#   code continues with the first one: a depth-first dive along one sampled continuation until
#   something terminates.
# - **after a backup** the search must decide where to continue. The released code's default
#   (`backtrace="global"`, notebook 02) jumps to the best node of the whole *frontier*. The
#   ablation `backtrace="uct"` is the "Vanilla UCT" row of the paper's Table 3: it takes one UCT
#   step from the root and, when that child is already expanded, keeps descending by UCT.
#
# ## 5. Real searches with the tiny reasoner
#
# Now the real thing: the tiny countdown reasoner of notebook 00 searches `n_problems` hard
# problems from the RL split, with the tiny preset (a line per step, depth ≤ 10, width 4, stop
# after 4 recorded trajectories). All trees run in lock-step: one batched policy call per
# iteration.

# %%
reasoner = tiny.build()
tokenizer = reasoner.load_tokenizer()
verifier = reasoner.verifier()
items = reasoner.prompted(level, "rl", n_problems)
print(countdown.prompt_text(items[0].problem))


def run(**overrides):
    """Search all problems with SearchConfig.tiny(**overrides) and a freshly seeded policy."""
    cfg = SearchConfig.tiny(seed=seed, uct_c=c, **overrides)
    return search.run(items, reasoner.load_policy(seed=seed), verifier, cfg), cfg


def summary(results):
    agg = search.aggregate_stats(results)
    correct = [sum(t.correct for t in r.trajectories) for r in results]
    return (f"iterations/tree {agg['iterations']:5.1f} | nodes/tree {agg['nodes']:5.1f} | "
            f"deepest {agg['max_depth']:4.1f} | correct trajectories {sum(correct):2d} | "
            f"trees with a correct one {sum(x > 0 for x in correct)}/{len(results)} | "
            f"exhausted {agg['exhausted']:.0%}")


default_results, default_cfg = run()
print("default (global frontier, deterministic UCT):")
print(" ", summary(default_results))

# %% [markdown]
# One of these trees. Squares are terminals (green edge: correct, red: wrong); the thick edge
# marks the four terminals that were backed up and recorded as trajectories; their paths are
# highlighted. Colour is Q = q/N. Notice the long dives through the **leftmost** child: that is
# the first-child rule at work.

# %%
best_tree = max(default_results, key=lambda r: (sum(t.correct for t in r.trajectories),
                                                -r.tree.n_nodes))
viz.draw_tree(best_tree.tree, highlight=best_tree.tree.recorded,
              title=f"one tree: {best_tree.tree.n_nodes} nodes, "
                    f"{best_tree.stats.iterations} iterations")
plt.show()

# %% [markdown]
# We can measure the degeneracy. Every expanded non-root node was reached either by a local
# UCT step (always the first child under the deterministic rule) or by a jump of the frontier
# (any child). So the share of expanded nodes that are a *first* child is well above 1/width
# with the deterministic rule, and drops towards 1/width with softmax sampling:

# %%
def first_child_share(results):
    expanded = [n for r in results for n in r.tree.nodes()
                if n.children and not n.is_root]
    return sum(n.parent.children[0] is n for n in expanded) / len(expanded), len(expanded)


soft_results, _ = run(uct_deterministic=False)
for name, res in (("deterministic argmax", default_results), ("softmax sampling  ", soft_results)):
    share, count = first_child_share(res)
    print(f"{name}: {share:.0%} of {count} expanded nodes are a first child   "
          f"(1/width = {1 / default_cfg.width:.0%})")
print("softmax:", summary(soft_results))

# %% [markdown]
# Both rules give statistically similar searches: siblings are exchangeable samples, so it does
# not matter *which* tied child we dive into. Differences between the two lines above are
# sampling noise (different children mean different random continuations).
#
# Finally, the "Vanilla UCT" ablation: after every backup, restart from the root with UCT.

# %%
uct_results, _ = run(backtrace="uct")
print("backtrace='uct'  :", summary(uct_results))
print("backtrace=global :", summary(default_results))
depth1 = [sum(1 for n in r.tree.root.children if n.children) for r in uct_results]
depth1_g = [sum(1 for n in r.tree.root.children if n.children) for r in default_results]
print(f"expanded children of the root per tree: uct {sum(depth1) / len(depth1):.2f}, "
      f"global {sum(depth1_g) / len(depth1_g):.2f}")

# %%
example = uct_results[0]
viz.draw_tree(example.tree, highlight=example.tree.recorded,
              title="backtrace='uct': every backup restarts one UCT step below the root")
plt.show()

# %% [markdown]
# With `backtrace="uct"` the search keeps returning to the top of the tree: after a failed
# path, UCT below the root prefers a root child with Q = 0 over the one that just failed, so the
# tree spreads over more depth-1 branches. On these tiny problems the counts are small and
# noisy, so compare the two lines only roughly; the paper reports 209.6 iterations per tree for
# Vanilla UCT against 187.7 for the global frontier on 1.2K very hard DeepMath problems
# (Table 3).
#
# ## Summary
#
# UCT scores a child by its average value Q plus an exploration bonus λ·√(ln N_parent / N). In
# DeepSearch it mostly serves the *local* dive: after an expansion without terminals, the
# search walks into a child. Fresh siblings always tie (Q = 0, N = 1), and the code's
# deterministic argmax then takes the first child, which amounts to a random pick among i.i.d.
# samples; `uct_deterministic=False` samples from softmax(UCT) instead. The real choice of
# *where* to search happens after a backup: the "Vanilla UCT" ablation (`backtrace="uct"`)
# restarts from the root, DeepSearch's default jumps to the global frontier (notebook 02).
#
# ## Exercises
#
# **1. Predict, then run.** After the two backups of section 3 (a1 wrong, b1 correct), a third
# one: a wrong answer below d. Predict q(root), N(root), Q(d) and the deterministic pick with
# λ = 2, then run, after section 3's cells:
# `d1 = tree.add_child(d, [7], terminal=True)`, `d1.score, d1.outcome = -1.0, "wrong"`,
# `backup.backup(d1, d1.score)`, `uct_table(tree.root, "abd")`.
#
# <details><summary>Solution</summary>
#
# γ (code, L = 2): 1/3 for the root, 2/3 for d. The root has q = +1/3 > 0 after b1, so the sign
# rule ignores the failure: **q(root) = 1/3, N(root) = 3**. d: q = 0 − 2/3, N = 2, **Q(d) =
# −1/3**. Every child now has N = 2, so the bonus is the same for all: 2·√(ln 3 / 2) = 1.482.
# UCT: a −0.333 + 1.482 = 1.149, b +0.333 + 1.482 = 1.816, d 1.149: **b** is picked, the only
# child with a correct answer below it.
#
# </details>
#
# **2. Pencil.** After the two backups of section 3, Q(a) = −1/3, Q(b) = +1/3, Q(d) = 0, N(a) =
# N(b) = 2, N(d) = 1, N(root) = 2. For which λ does UCT pick d rather than b? Check with
# `uct.select(tree.root, lam)` for λ on both sides of your answer.
#
# <details><summary>Solution</summary>
#
# UCT(b) = 1/3 + λ·√(ln 2 / 2) = 1/3 + 0.5887λ, UCT(d) = λ·√(ln 2) = 0.8326λ. d wins when
# 0.8326λ > 1/3 + 0.5887λ, i.e. **λ > 1.367**. `uct.select` picks b for λ = 1.36 (UCT 1.134
# against 1.132) and d for λ = 1.37 (1.140 against 1.141). a is never picked: it has the same
# bonus as b and a lower Q.
#
# </details>
#
# **3. Change the code.** In the cell of section 3 that backs up a1, use the paper's depth
# weight: `backup.backup(a1, a1.score, gamma_min=0.1, mode="paper")`. Rerun from there. What are
# q and Q of `a` after this backup, and does the first `uct_table` pick change?
#
# <details><summary>Solution</summary>
#
# The paper's γ for a terminal at l = 2 is max(i/l, 0.1): 0.1 for the root, 1/2 for a, 1 for a1
# (printed by the cell). So **q(a) = −0.5, Q(a) = −0.5/2 = −0.25** instead of −2/3 and −1/3,
# and q(root) = −0.1 instead of −1/3. The pick does not change: the root still has N = 1, the
# bonus is 0, and b (Q = 0, first of the tied b and d) beats a.
#
# </details>
