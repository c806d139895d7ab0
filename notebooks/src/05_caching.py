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
# # 05 · Spending search where it is needed: filtering, a replay buffer, rounds
#
# Notebook 04 trained the tiny reasoner with a tree search on every problem of every step.
# Trees are expensive, and most of their cost goes to problems that teach nothing: ones the
# model already solves, and ones it has solved once and could simply be *reminded* of. The
# paper's efficiency machinery (v4 Sec. 4.1–4.2, [paper notes](../docs/paper-notes.md#efficiency))
# cuts both:
#
# 1. **hard-subset filtering**: before a round, answer every problem K = 4 times and keep only
#    those solved at most 25 % of the time (Eq. 8–9);
# 2. **a replay buffer**: a problem the search solved, but rarely, is stored with its verified
#    solutions (Eq. 10);
# 3. **hybrid rollouts**: a buffered problem skips the search; a few direct samples plus the
#    cached solutions form its group (Eq. 11–12);
# 4. **rounds**: train, re-filter, register, repeat — the hard set shrinks and the buffer grows
#    (the paper's Table 6).
#
# Code: `dslib.filtering`, `dslib.replay`, `dslib.rounds` (the same as `dslib filter` and
# `dslib rounds` on the command line).

# %% tags=["parameters"]
seed = 0
levels = (3, 4)        # countdown difficulties in the training pool
pool_size = 120        # problems filtered before round 1 (the CLI's --pool)
rounds = 3
steps_per_round = 8    # the tiny preset's rounds use 50
problems_per_step = 12

# %%
import tempfile
import warnings
from collections import Counter
from pathlib import Path

warnings.filterwarnings("ignore", message="IProgress not found")  # tqdm without ipywidgets

import matplotlib.pyplot as plt
import numpy as np
import torch
from IPython.display import Markdown, display
from transformers.utils import logging as hf_logging

from dslib import filtering, hygiene, replay, tiny, viz
from dslib.build import countdown_task
from dslib.config import RoundsConfig, update
from dslib.policy.make import make_policy
from dslib.presets import preset
from dslib.rounds import Rounds, table6

hf_logging.disable_progress_bar()
torch.set_num_threads(1)  # the tiny model gains nothing from more threads

reasoner = tiny.build()
cfg = update(preset("tiny"), {
    "task.levels": levels, "eval.levels": levels, "run.seed": seed,
    "run.problems_per_step": problems_per_step, "eval.every": steps_per_round,
    "eval.problems": 60})
model = reasoner.load_model()
task = countdown_task(cfg, reasoner)
policy = make_policy(model, seed=seed)
print(f"training pool: {len(task.train_items)} problems of {levels} numbers")

# %% [markdown]
# ## 1. Hard problems: Pass1@K (v4 Eq. 8–9, [paper notes](../docs/paper-notes.md#filtering))
#
# Each problem gets K = 4 direct samples at temperature 1. Its success *rate* decides:
#
# $$\mathcal{D}_{hard} = \{x : \text{Pass1@K}(x) \le \delta\},\qquad \delta = 0.25 .$$
#
# The released code keeps 0/4 **and** 1/4 ("≤"); the paper writes a strict "<", which keeps
# 0/4 only (`strict=True`). A filter file records the decision together with a fingerprint of
# the weights that made it, so a later run can check what it trains on.

# %%
rng = np.random.default_rng(seed)
pool = [task.train_items[i] for i in rng.choice(len(task.train_items), pool_size, replace=False)]
work = Path(tempfile.mkdtemp(prefix="dslib-05-"))
policy.seed(seed)
header, records = filtering.filter_file(policy, model, pool, task.verifier,
                                        work / "filter.jsonl", k=4)
by_level = {lv: Counter() for lv in levels}
for it, rec in zip(pool, records):
    by_level[len(it.problem.numbers)][rec.successes] += 1

fig, ax = plt.subplots(figsize=(6.5, 3))
width = 0.8 / len(levels)
for j, lv in enumerate(levels):
    counts = [by_level[lv][s] for s in range(5)]
    ax.bar(np.arange(5) + j * width, counts, width, label=f"{lv} numbers")
ax.axvspan(-0.5, 1.5 + width, color="tab:green", alpha=0.08)
ax.text(0.5, ax.get_ylim()[1] * 0.9, "kept (≤ 1/4)", ha="center", color="tab:green")
ax.set_xticks(np.arange(5) + width / 2, [f"{s}/4" for s in range(5)])
ax.set_xlabel("correct of 4 direct samples")
ax.set_ylabel("problems")
ax.legend()
ax.set_title("Pass1@4 of the tiny reasoner on its training pool")
plt.show()
kept = [r for r in records if filtering.keep(r)]
strict = [r for r in records if filtering.keep(r, strict=True)]
print(f"kept {len(kept)} of {len(records)} (code rule <=); {len(strict)} with the paper's <")

# %% [markdown]
# Almost every 4-number problem is kept: the model rarely solves them. Among 3-number problems
# the filter removes the ones already solved half the time or more — training on them would
# mostly produce all-correct groups, which carry no gradient in a group-relative update.

# %% [markdown]
# ## 2. What goes into the buffer (v4 Eq. 10, [paper notes](../docs/paper-notes.md#replay-buffer))
#
# After a round, the code looks at every response logged for a problem during the round (the
# search's trajectories) and registers the problem with **all** its correct responses when
#
# $$0 < \frac{\#\text{correct}}{\#\text{responses}} \le 0.25 .$$
#
# A problem solved in 1 of 4 trajectories is stored; one solved in 2 of 4 is not (the model
# finds it on its own); one never solved has nothing verified to store. The boundary, on
# hand-made outcomes (response ids, correct):

# %%
demo = replay.ReplayBuffer()
outcomes = {
    "never": [([1, 2], False)] * 4,
    "once": [([1, 2], False)] * 3 + [([7, 8, 9], True)],
    "twice": [([1, 2], False)] * 2 + [([7, 8], True), ([7, 9], True)],
}
print("registered:", demo.register_round(outcomes, threshold=0.25, rule="code", round=1))
print("stored solutions of 'once':", demo.solutions("once"))

# %% [markdown]
# ## 3. Rounds ([paper notes](../docs/paper-notes.md#rounds), Table 6)
#
# `Rounds` chains it all: round 1 trains on the filtered pool with an empty buffer; after each
# round the trained model re-filters the round's hard set, and the round's logged rollouts
# register new buffer entries. In the next round a buffered problem skips the search: the
# `cached` rollout strategy (`dslib.rollouts.CachedRollout`) builds its group from cached
# solutions plus direct samples, scored with outcome rewards ([paper
# notes](../docs/paper-notes.md#hybrid-groups)). Every file it writes is an ordinary run directory,
# filter file or buffer file.

# %%
rcfg = RoundsConfig(rounds=rounds, steps_per_round=steps_per_round, pool_size=pool_size)
rows = Rounds(cfg, rcfg, work / "rounds", progress=False).run()
display(Markdown(table6(rows)))

# %% [markdown]
# Reading the table like the paper's Table 6: **cached** counts the problems of the round's
# hard set that are in the buffer, **unsolved** the rest. The hard set shrinks as the model
# learns (the filter drops what it now solves), and the buffer grows with problems the search
# cracked. The last columns are what the cache saved: every cached group is a tree not searched.

# %%
viz.plot_rounds(rows)
plt.show()

# %% [markdown]
# ## 4. Data hygiene (paper Sec. 4.2, [paper notes](../docs/paper-notes.md#hygiene))
#
# The paper removes garbled or endlessly repeating *incorrect* samples before the update; the
# released code does not, and gives no criterion. Ours (`dslib.hygiene.is_degenerate`): a
# block of up to 100 characters repeated ≥ 10 times back to back over ≥ 40 characters, a very
# compressible long text, or > 20 % characters outside ordinary math text. It is off by default
# (the code's behaviour); `--set filters=hygiene` turns it on in any training run.

# %%
for text in ["6 * 4 = 24\n24 - 3 = 21\n\\boxed{6*4-3}",
             "6 * 4 = 24\n" * 12,
             "6 * 4 = \ufffd\ufffd\x07\x03\ufffd\ufffd\ufffd\x01\ufffd"]:
    print(f"{hygiene.is_degenerate(text)!s:>10}  <- {text[:40]!r}")

# %% [markdown]
# ## Summary
#
# Filtering removes problems the model already solves, so every searched tree has something to
# teach; the replay buffer stores rare successes, so a problem solved once is not searched
# again but replayed with a known answer; rounds repeat both as the model improves. On the
# tiny reasoner the effect is small in absolute terms — it solves few hard problems, so the
# buffer stays small — but the mechanics are those of the 1.5B run (`dslib rounds --preset
# tiny --rounds 3` runs the same loop at the preset's size; notebook 06 runs it end to end).
#
# **Exercise.** Change `strict` in the filter (`filtering.keep(r, strict=True)`, or
# `RoundsConfig(strict=True)`): how much smaller is the hard set, and does the buffer still
# fill? Then try `register_rule="paper"`, which registers only problems the *updated* model
# still fails.
