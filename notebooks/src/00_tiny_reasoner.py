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
# # 00 · A tiny reasoner that plateaus
#
# DeepSearch (arXiv 2509.25454) starts from a 1.5B model that already reasons, but whose RL
# training has **plateaued**: on the hardest problems, all 8 samples of a GRPO group are wrong,
# every advantage is zero, and the model learns nothing there. Tree search during training is
# the paper's way out.
#
# To study that on a laptop we need the same situation in miniature. This notebook builds it:
#
# 1. a task with exact answers and adjustable difficulty (**countdown**),
# 2. a ~0.4M-parameter Qwen2 model trained from scratch on the CPU (a few minutes, once),
# 3. a measurement showing it is *imperfect in the right way*: easy problems solved often,
#    hard problems almost never.
#
# Everything here calls `dslib`; the notebook holds no second copy of the algorithm.

# %% tags=["parameters"]
seed = 0
n_problems = 100   # held-out problems per difficulty in the table
n_samples = 8      # samples per problem (temperature 1.0, as in training)

# %%
import warnings

warnings.filterwarnings("ignore", message="IProgress not found")  # text progress bars are fine

import matplotlib.pyplot as plt

from dslib import tiny
from dslib.tasks import countdown
from dslib.tasks.base import TokenVerifier, prompt_all

# %% [markdown]
# ## 1. The task
#
# *Use these numbers once each with + − × ÷ to reach the target.* Problems are generated from
# random expression trees, so every one is solvable. Difficulty is the count of numbers.

# %%
problems = countdown.generate(4, 3, seed=seed)
for p in problems:
    print(countdown.prompt_text(p), "\n---")
    print(countdown.solution_text(p), "\n")

# %% [markdown]
# The reference solution writes one arithmetic step per line and ends with the whole
# expression in `\boxed{...}`. The verifier takes the **last** box, parses it with its own small
# parser (model output is never executed), checks that each number is used exactly once and
# computes the value with exact fractions. Every verdict carries a reason:

# %%
p = problems[0]
answers = {
    "reference": countdown.solution_text(p),
    "no box": "I think it is 24",
    "python code": r"\boxed{__import__('os').system('ls')}",
    "a number twice": rf"\boxed{{{p.numbers[-1]}*{p.numbers[-1]}}}",
    "huge power": r"\boxed{10^10^10}",
}
for name, text in answers.items():
    v = countdown.verify(p, text)
    print(f"{name:15s} correct={v.correct!s:5s} reason={v.reason}")

# %% [markdown]
# ## 2. The model
#
# `tiny.build()` trains a byte-level BPE tokenizer on countdown text (with Qwen's pre-tokenizer,
# so digits are single tokens and `AutoTokenizer` reproduces the ids), builds a 2-layer Qwen2
# from a config, and runs a short supervised warm start on reference solutions of the SFT split.
# The checkpoint is cached by a hash of its config: the first call takes about three minutes,
# later calls are instant. Problems are split by *(numbers, target)* into disjoint SFT / RL /
# test sets, so the numbers below are on problems the model never saw.

# %%
reasoner = tiny.build()
tokenizer = reasoner.load_tokenizer()
info = reasoner.info
print(f"parameters: {info['parameters']:,}   vocabulary: {info['vocab_size']} tokens")
print(f"SFT examples per level: {info['sft_examples']}   final SFT loss: {info['final_loss']:.3f}")

# %%
ids = tokenizer(countdown.solution_text(problems[0]), add_special_tokens=False)["input_ids"]
print(len(ids), "tokens:", tokenizer.convert_ids_to_tokens(ids))

# %% [markdown]
# ## 3. What it writes
#
# The policy samples at temperature 1.0, the training temperature. A few samples for an easy
# and a hard held-out problem (`✓` correct):

# %%
policy = reasoner.load_policy(seed=seed)
verifier = TokenVerifier(tokenizer, countdown.verify)
for level in (3, 5):
    item = prompt_all(tokenizer, reasoner.problems(level, "test", 1), countdown.prompt_text)[0]
    print(countdown.prompt_text(item.problem).replace("\n", "   "))
    for seg in policy.sample([item.prompt_ids], n=4, max_new_tokens=64)[0]:
        verdict = verifier(item, seg.token_ids)
        text = tokenizer.decode(seg.token_ids, skip_special_tokens=True).replace("\n", " | ")
        print(f"  {'✓' if verdict.correct else '✗'} {verdict.reason:14s} {text}")
    print()

# %% [markdown]
# ## 4. The plateau regime, measured
#
# For each difficulty: **pass@1** (mean success rate), **pass@4** (chance that at least one of
# 4 samples is right), and the **share of problems at ≤ 25 % success** — problems where a group
# of 4 samples is mostly or entirely wrong, so group-relative advantages carry little or no
# signal. The table below was measured when the model was built (stored in its
# `build_info.json`); `tiny.difficulty_table(reasoner)` re-measures it.

# %%
rows = info["difficulty_table"]
print(tiny.format_table(rows))

# %%
levels = [r["level"] for r in rows]
fig, ax = plt.subplots(figsize=(7, 3.2))
width = 0.27
for i, (key, label) in enumerate(
    [("pass@1", "pass@1"), ("pass@4", "pass@4"), ("share_le_25pct", "share at ≤ 25% success")]
):
    ax.bar([lv + (i - 1) * width for lv in levels], [r[key] for r in rows], width, label=label)
ax.set_xticks(levels, [f"{lv} numbers" for lv in levels])
ax.set_ylim(0, 1)
ax.set_title("Tiny reasoner on held-out problems (temperature 1.0)")
ax.legend(loc="upper left", fontsize=8)
plt.show()

# %% [markdown]
# The last three columns ask what the model's scratch lines are worth. **steps pass@1** scores
# the same samples with `countdown.verify_steps`, which also demands that every line
# `a op b = c` be a valid step on the numbers still available; **correct with valid lines** is
# the share of box-correct answers that pass it; **valid first line** the share of samples that
# at least start with a valid step. On the hard levels the model nearly always starts well, yet
# most of its correct boxes were not reached by valid lines: the box is partly guessed. Even so,
# a tree whose nodes are lines finds more 5-number answers than flat sampling at equal tokens
# (the exploration benchmark in `reproduce/RESULTS.md`), which is why the tiny preset searches
# line by line. `task.verify="steps"` trains on the strict reward instead.

# %% [markdown]
# ## 5. Learned or memorised?
#
# With numbers 1..6 there are only a few hundred distinct 3-number problems, and the warm start
# sees each problem of its split dozens of times. The same table on the problems the SFT saw
# (`split="sft"`) shows how much of the skill is recall:

# %%
seen = tiny.difficulty_table(
    reasoner, n_problems=n_problems, n_samples=n_samples, split="sft", progress=False
)
for s, h in zip(seen, rows):
    print(f"{s['level']} numbers   pass@1 on SFT problems {s['pass@1']:.2f}   "
          f"on held-out problems {h['pass@1']:.2f}")

# %% [markdown]
# On 3 numbers the model solves problems it was taught more often than new ones. (An earlier
# build that spent 45 % of its warm start on 3-number problems instead of 20 % solved its own
# 0.45 of the time against 0.23 held out: more repetition bought recall, not skill; README,
# "The tiny reasoner".) On 4 and 5 numbers (thousands of problems, each seen a few times) there
# is no such gap beyond the sampling error of a small table. Held-out numbers are the honest
# ones, and every table in this kit reports them.

# %% [markdown]
# ## Summary
#
# The tiny reasoner solves a good share of 3-number problems but almost none of the 5-number
# ones: on most hard problems all samples of a group are wrong. That is the plateau DeepSearch
# targets — flat GRPO sees zero advantage on those groups, while a tree search that keeps
# branching from promising partial solutions can still find a correct path to learn from.
# Notebooks 01–03 build that search step by step.
#
# **Exercise.** Rebuild with a different warm-start budget, e.g.
# `tiny.build(dataclasses.replace(tiny.TinyConfig(), sft_steps=600))`, and watch the table:
# how short can SFT be before even the easy level stops producing correct answers?
