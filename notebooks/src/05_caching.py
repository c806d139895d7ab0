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
# Trees are expensive, and much of their cost goes to problems that teach nothing: ones the
# model already solves, and ones it has solved once and could simply be *reminded* of. The
# paper's efficiency machinery (v4 Sec. 4.1–4.2, [paper notes](../docs/paper-notes.md#efficiency))
# cuts both:
#
# 1. **hard-subset filtering**: before a round, answer every problem K = 4 times and keep only
#    those solved at most 25 % of the time (Eq. 8–9);
# 2. **a replay buffer**: a problem the search solved, but rarely, is stored with its verified
#    solutions (Eq. 10);
# 3. **hybrid groups**: a buffered problem skips the search; its cached solutions plus a few
#    direct samples form its group (Eq. 11–12);
# 4. **rounds**: train, re-filter, register, repeat (the paper's Table 6).
#
# **Goal.** By the end you can say which problems the filter keeps and how noisy that decision
# is, compute by hand the advantages of a group that mixes a cached solution with direct
# samples, and explain why that group teaches where a flat group of the same problem teaches
# nothing.
#
# Code: `dslib.filtering`, `dslib.replay`, `dslib.rollouts.hybrid_group`, `dslib.rounds` (the
# same as `dslib filter` and `dslib rounds` on the command line).

# %% tags=["parameters"]
seed = 0
levels = (3, 4)        # countdown difficulties in the training pool
pool_size = 120        # problems filtered before round 1 (the CLI's --pool)
rounds = 3
steps_per_round = 8    # the tiny preset's rounds use 50
problems_per_step = 12

# %%
import inspect
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

from dslib import filtering, hygiene, replay, rollouts, tiny, viz
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
print(inspect.getsource(filtering.keep))

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
kept = [it for it, r in zip(pool, records) if filtering.keep(r)]
strict = [r for r in records if filtering.keep(r, strict=True)]
print(f"kept {len(kept)} of {len(records)} (code rule <=); {len(strict)} with the paper's <")

# %% [markdown]
# Almost every 4-number problem is kept: the model rarely solves them. Among 3-number problems
# the filter removes the ones solved twice or more in four tries. Training on those would mostly
# produce all-correct groups, which carry no gradient in a group-relative update.
#
# Four samples are a noisy measurement, though. Filter the kept problems **again, with the
# same untrained model** and other random draws: every problem that now scores 2/4 or more
# leaves the hard set although nothing was learned. That share is what re-filtering removes by
# chance alone; keep it in mind when reading the rounds of section 4.

# %%
policy.seed(seed + 1000)
_, again = filtering.filter_file(policy, model, kept, task.verifier, work / "again.jsonl", k=4)
noise_drop = sum(not filtering.keep(r) for r in again) / len(again)
print(f"re-filtered with the same weights: {sum(filtering.keep(r) for r in again)} of "
      f"{len(kept)} kept, so {noise_drop:.0%} leave the hard set by chance")

# %% [markdown]
# ## 2. One group, two ways (v4 Eq. 11–12, [paper notes](../docs/paper-notes.md#hybrid-groups))
#
# Take a kept problem the model never solved in its four filter samples. A flat GRPO group of
# it, n direct samples, is almost surely **all wrong**: every reward is −1, the group mean is −1,
# and every advantage A = r − mean is **0**. The update learns nothing from it: the plateau of
# notebook 00, in one group.
#
# Now suppose the search once found a correct answer to it, and the replay buffer kept it. In a
# later round the problem skips the search; its group is the **cached solution plus n − 1
# direct samples**. With one correct member among n, the mean is −1 + 2/n and
#
# $$A_{\text{cached}} = 1 - \bar r = 2\,\frac{n-1}{n}, \qquad
#   A_{\text{direct, wrong}} = -1 - \bar r = -\frac{2}{n}.$$
#
# The correct solution is pushed up and the model's own wrong answers are pushed down: the
# group has a gradient again. `dslib.rollouts.hybrid_group` builds it; every member, the cached
# one too, is verified again before it is scored:

# %%
print(inspect.getsource(rollouts.hybrid_group))

# %% [markdown]
# To have a real cached solution, run the tree search of the tiny preset (notebooks 01–03) on
# the problems the filter saw 0/4 of, and take the first problem whose tree found a correct
# trajectory while four fresh direct samples are all wrong.

# %%
tree = rollouts.make_strategy(cfg.rollout, cfg.optim.grpo)
flat = rollouts.make_strategy(update(cfg, {"rollout.strategy": "flat"}).rollout,
                              cfg.optim.grpo)
never = [it for it, r in zip(pool, records) if r.successes == 0]
chosen = None
for start in range(0, len(never), 16):
    batch = never[start:start + 16]
    trees = tree(batch, policy, task.verifier, seed=seed + start)
    flats = flat(batch, policy, task.verifier, seed=seed + start)
    for item, tg, fg in zip(batch, trees, flats):
        found = [s for s in tg.samples if s.correct]
        if found and not any(s.correct for s in fg.samples):
            chosen = (item, found[0], fg)
            break
    if chosen:
        break
if chosen is None:
    raise RuntimeError("the search solved none of the 0/4 problems: raise pool_size")
item, solution, flat_group = chosen
tok = reasoner.load_tokenizer()
print(tok.decode(item.prompt_ids, skip_special_tokens=True).strip().replace("\n", "   "))
print("found by the search:", tok.decode(solution.response_ids, skip_special_tokens=True)
      .replace("\n", " | "))
print(f"searched {start + len(batch)} of the {len(never)} problems never solved in the filter")

# %%
fresh = policy.sample([item.prompt_ids], n=flat.group_size, max_new_tokens=flat.max_new_tokens,
                      temperature=flat.temperature)[0]
mixed = rollouts.hybrid_group(item, [solution.response_ids], fresh, task.verifier,
                              cfg.optim.grpo, n=flat.group_size, eos_token_id=tok.eos_token_id)
fig, axes = plt.subplots(1, 2, figsize=(9, 2.8), sharey=True)
for ax, (name, samples) in zip(axes, [("flat group: direct samples only", flat_group.samples),
                                      ("hybrid group: 1 cached + 3 direct", mixed)]):
    adv = [s.advantages[0] for s in samples]
    colors = ["tab:green" if s.cached else ("tab:blue" if s.correct else "tab:red")
              for s in samples]
    ax.bar(range(len(samples)), adv, color=colors)
    ax.axhline(0, color="k", lw=0.8)
    ax.set(title=name, xlabel="member", xticks=range(len(samples)), ylim=(-1.0, 2.0))
    for i, s in enumerate(samples):
        ax.text(i, adv[i], f"r={s.score:+.0f}", ha="center",
                va="bottom" if adv[i] >= 0 else "top", fontsize=8)
axes[0].set_ylabel("advantage (every token)")
plt.suptitle("the same problem: green = cached solution, red = wrong direct sample")
plt.tight_layout()
plt.show()
for name, samples in [("flat", flat_group.samples), ("hybrid", mixed)]:
    print(f"{name:6s} rewards {[round(s.score, 2) for s in samples]}  "
          f"advantages {[round(s.advantages[0], 2) for s in samples]}")

# %% [markdown]
# The numbers are the formula's with n = 4: +1.5 for the cached solution, −0.5 for each wrong
# direct sample, and 0 everywhere in the flat group. Look at the lines above the found box,
# too: the tiny preset checks only the box (`task.verify="box"`), and the tiny reasoner's
# scratch lines often do not lead to its answer (notebook 00, "correct with valid lines"), so a
# cached "solution" can be a right box under wrong lines; `task.verify="steps"` stores only
# solutions whose every line is a valid step. (A direct sample that ran out of tokens
# scores the incomplete score instead of −1; its advantage moves accordingly.) The tree search
# gets a signal from this problem in a different way, through the q-values of its nodes
# (notebook 04); the cache gets it for the price of three direct samples instead of a tree.

# %% [markdown]
# ## 3. What goes into the buffer (v4 Eq. 10, [paper notes](../docs/paper-notes.md#replay-buffer))
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
# ## 4. Rounds ([paper notes](../docs/paper-notes.md#rounds), Table 6)
#
# `Rounds` chains it all: round 1 trains on the filtered pool with an empty buffer; after each
# round the trained model re-filters the round's hard set, and the round's logged rollouts
# register new buffer entries. In the next round a buffered problem skips the search: the
# `cached` rollout strategy (`dslib.rollouts.CachedRollout`) builds its group with
# `hybrid_group`, as in section 2. Every file it writes is an ordinary run directory, filter
# file or buffer file.

# %%
rcfg = RoundsConfig(rounds=rounds, steps_per_round=steps_per_round, pool_size=pool_size)
rows = Rounds(cfg, rcfg, work / "rounds", progress=False).run()
display(Markdown(table6(rows)))
shrink = 1 - rows[1]["hard"] / rows[0]["hard"]
print(f"hard set round 1 -> 2: {rows[0]['hard']} -> {rows[1]['hard']} ({shrink:.0%} fewer); "
      f"the same weights re-filtered in section 1 dropped {noise_drop:.0%}")

# %% [markdown]
# Reading the table like the paper's Table 6: **cached** counts the problems of the round's hard
# set that are in the buffer, **unsolved** the rest; the last columns are what the cache saved,
# every cached group a tree not searched. Two cautions before reading more into it:
#
# - The hard set can only shrink: each round re-filters the previous round's hard set, and
#   nothing is added back. A shrink is not by itself evidence of learning. Compare it with the
#   share section 1 saw leave by chance when the *untrained* model filtered the same kind of
#   problems twice, and with the held-out columns, which tell whether the model improved.
# - Eight steps per round are a demonstration, not a training run: the held-out accuracies
#   move by about their own noise (60 problems × 4 samples: a standard error of 0.02–0.03).
#   Notebook 06 runs the preset's 3 × 50 steps with seeds; `reproduce/RESULTS.md`, section
#   "Caching over rounds", has the 3-seed table.
#
# What the table does show is the buffer at work: problems that the search solved once come
# back as cached groups, and each of them costs a few direct samples instead of a tree.

# %%
viz.plot_rounds(rows)
plt.show()

# %% [markdown]
# ## 5. Data hygiene (paper Sec. 4.2, [paper notes](../docs/paper-notes.md#hygiene))
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
# - The filter keeps problems solved at most once in four direct samples; four samples are a
#   noisy measurement, so a re-filter drops some problems by chance alone.
# - A flat group of an unsolved problem is all wrong and has zero advantages: no gradient.
# - One cached correct solution turns the same problem's group into a mixed one: +2(n−1)/n for
#   the solution, −2/n for each wrong direct sample, a gradient for the price of n − 1 samples.
# - The buffer stores problems the search solved rarely (0 < rate ≤ 0.25) with all their
#   verified solutions; rounds repeat filter, train, register.
# - The hard set shrinks by construction; whether the model learned is read from held-out
#   accuracy, with its noise, not from the size of the hard set.
#
# ## Exercises
#
# **1. Predict, then run.** If the buffer held three correct solutions of the chosen problem, what
# would the hybrid group's rewards and advantages be (n = 4)? Predict, then run
# `rollouts.hybrid_group(item, [solution.response_ids] * 3, fresh, task.verifier,
# cfg.optim.grpo, n=4, eos_token_id=tok.eos_token_id)`.
#
# <details><summary>Solution</summary>
#
# k = min(3, 4) = 3 cached members and the **last** n − k = 1 direct sample. If that sample is
# wrong the rewards are +1, +1, +1, −1, the mean is +0.5, and the advantages are **+0.5 for
# each cached solution and −1.5 for the direct sample**. More cached solutions give each of them
# less push and the model's own wrong answer more: the group mean moves towards the cached
# score. (With `n=4` fixed, the cached solutions never fill the whole group unless there are
# four of them; then all members are correct and the advantages are 0 again.)
#
# </details>
#
# **2. Pencil.** A problem the model solves with probability p per sample is kept by the filter
# when at most 1 of 4 samples is correct. What is the chance it is kept for p = 0.1, 0.3 and
# 0.5? Check with `numpy`: `(rng.random((100_000, 4)) < p).sum(1) <= 1` averaged.
#
# <details><summary>Solution</summary>
#
# P(kept) = (1 − p)⁴ + 4p(1 − p)³: **0.948** for p = 0.1, **0.652** for p = 0.3 and **0.312**
# for p = 0.5 (the simulation agrees to about ±0.003). So a problem the model solves a third of
# the time is kept two times in three, and each re-filter is a coin toss for it: that is how
# the hard set can shrink while the model does not change. On this pool, mostly problems far
# below p = 0.3, section 1 saw only a few per cent leave that way.
#
# </details>
#
# **3. Change the code.** Use the paper's strict filter in the rounds:
# `RoundsConfig(rounds=rounds, steps_per_round=steps_per_round, pool_size=pool_size,
# strict=True)`, in a new folder (`work / "strict"`), and rerun section 4. How much smaller is
# the hard set, and does the buffer still fill?
#
# <details><summary>Solution</summary>
#
# The strict rule keeps only problems with 0/4. On the default build, round 1's hard set has
# 98 problems against 114 with the code's rule (`Rounds` draws and filters its own pool of
# 120; section 1's sample gave 96 against 114). It also shrinks faster, because every
# re-filter now drops a problem solved even once in four: 98 → 82 → 73 against
# 114 → 110 → 106. The buffer still fills: 4 and 13 problems cached in rounds 2 and 3 against
# 8 and 12 with the code's rule (one seed, 8 steps per round: a direction, not a
# measurement).
#
# </details>
