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
# **Goal.** By the end you can predict the countdown verifier's verdict on any answer from its
# rule, compute pass@4 of a problem from its count of correct samples by hand, explain why the
# table's pass@4 is lower than 1 − (1 − pass@1)⁴ when problems differ in difficulty, and read
# the table as the plateau that DeepSearch targets.
#
# DeepSearch (arXiv 2509.25454) starts from a 1.5B model that already reasons, but whose RL
# training has **plateaued**: on the hardest problems, all 8 samples of a GRPO group are wrong,
# every advantage is zero, and the model learns nothing there. Tree search during training is
# the paper's way out.
#
# To study that on a laptop we need the same situation in miniature. This notebook builds it:
#
# 1. a task with exact answers and adjustable difficulty (**countdown**),
# 2. a ~0.4M-parameter Qwen2 model trained from scratch on the CPU (about a minute, once),
# 3. a measurement showing it is *imperfect in the right way*: easy problems solved often,
#    hard problems almost never.
#
# Everything here calls `dslib`; the notebook holds no second copy of the algorithm.

# %% tags=["parameters"]
seed = 0
n_problems = 100   # held-out problems per difficulty in the table
n_samples = 8      # samples per problem (temperature 1.0, as in training)

# %%
import inspect
import math
import warnings

warnings.filterwarnings("ignore", message="IProgress not found")  # text progress bars are fine

import matplotlib.pyplot as plt

from dslib import tiny
from dslib.evaluate import evaluate, pass_at_k
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
# expression in `\boxed{...}`. Only that box is graded. The verifier's rule, in order:
#
# 1. take the **last** box (an answer may revise itself; the last word counts);
# 2. parse it with a small grammar of integers, `+ − × ÷` and parentheses (model output is
#    never executed) and compute its value with exact fractions, so `6/4*16` is 24, not
#    rounded;
# 3. the integers in the box must be the problem's numbers, each exactly once;
# 4. the value must equal the target.
#
# Each failed check has its own reason. Here is the rule as `dslib` implements it:

# %%
print(inspect.getsource(countdown.verify))

# %% [markdown]
# Some answers to the first problem above, with their verdicts:

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
# The checkpoint is cached by a hash of its config: the first call takes about a minute on 2
# cores, later calls are instant. Problems are split by *(numbers, target)* into disjoint SFT /
# RL / test sets, so the numbers below are on problems the model never saw.

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
# 4 samples is right; section 5 computes it by hand), and the **share of problems at ≤ 25 %
# success** (at most 2 of 8 samples right) — problems where a group of samples is mostly or
# entirely wrong, so group-relative advantages carry little or no signal; **never solved** is
# the share with 0 of 8. The table below was measured when the model was built (stored in its
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
# ## 5. pass@4 by hand
#
# **Intuition.** pass@k asks: *if I drew k samples for this problem, would at least one be
# right?* For a problem the model solves with probability p, each sample is wrong with
# probability 1 − p, all k are wrong with probability (1 − p)^k, so
#
# $$\text{pass@}k(p) = 1 - (1 - p)^k .$$
#
# We never know p; we have c correct out of n = 8 samples. The estimator of [Chen et al.
# (2021)](../docs/references.md#pass-at-k) looks at every way of picking k of the n samples
# and counts the share of picks that contain at least one correct sample. A pick with none
# draws all k from the n − c wrong ones, so
#
# $$\widehat{\text{pass@}k} = 1 - \frac{\binom{n-c}{k}}{\binom{n}{k}} ,$$
#
# whose expected value is exactly 1 − (1 − p)^k (it is *unbiased*). `dslib.evaluate` computes it
# per problem:

# %%
print(inspect.getsource(pass_at_k))

# %% [markdown]
# **Worked example.** A problem with c = 2 correct of n = 8. There are C(8,4) = 70 ways to
# pick 4 samples; C(6,4) = 15 of them take only wrong ones. So pass@4 = 1 − 15/70 = 55/70 =
# 0.786. (Plugging p̂ = 2/8 into 1 − (1 − p)⁴ instead gives 1 − 0.75⁴ = 0.684: that shortcut
# is biased low, because (1 − p)⁴ is convex in p.) Check:

# %%
print(f"pass_at_k(8, 2, 4) = {pass_at_k(8, 2, 4):.3f}   1 - 15/70 = {1 - 15 / 70:.3f}   "
      f"plug-in 1 - (1 - 2/8)^4 = {1 - (1 - 2 / 8) ** 4:.3f}")

# %% [markdown]
# The table's **pass@4 is the mean of this estimator over the problems** of a level, and
# pass@1 is the mean of c/8 (`EvalResult.pass_at`). To see the per-problem counts c we sample
# again exactly as `tiny.difficulty_table` does (its policy seed 1234, the levels in order, at
# temperature 1.0): with the default parameters these are the table's own samples, so the
# means match it.

# %%
temperature = 1.0  # the training temperature (exercise 3 changes it)
eval_policy = reasoner.load_policy(seed=1234)  # the seed tiny.difficulty_table samples with
counts = {}
for row in rows:
    level = row["level"]
    res = evaluate(eval_policy, reasoner.prompted(level, "test", n_problems),
                   reasoner.verifier(), n_samples=n_samples, ks=(1, 4),
                   temperature=temperature, progress=False)
    counts[level] = res.correct
    by_hand = sum(pass_at_k(n_samples, c, 4) for c in res.correct) / len(res.correct)
    print(f"{level} numbers   pass@1 {res.pass_at[1]:.4f} (table {row['pass@1']:.4f})   "
          f"pass@4 mean of estimator {by_hand:.4f} (table {row['pass@4']:.4f})   "
          f"never solved {res.share_at_most(0.0):.2f}")

# %% [markdown]
# **Why the table's pass@4 is below 1 − (1 − pass@1)⁴.** If every problem of a level had the
# same rate p = pass@1, pass@4 would be 1 − (1 − pass@1)⁴. But the rates differ: the mean of a
# concave function (1 − (1 − p)⁴ bends down) is below the function of the mean. By hand, two
# problems with p = 0.5 and p = 0: pass@1 = 0.25, and
#
# - mean of pass@4: (1 − 0.5⁴ + 0) / 2 = 0.9375 / 2 = **0.469**,
# - pass@4 of the mean: 1 − 0.75⁴ = **0.684**.
#
# The problem at 0 contributes nothing however many samples are drawn, while extra samples on
# the easy one are partly wasted (it is solved anyway). The real levels:

# %%
for row in rows:
    alike = 1 - (1 - row["pass@1"]) ** 4
    print(f"{row['level']} numbers   pass@1 {row['pass@1']:.3f}   "
          f"1-(1-pass@1)^4 {alike:.3f}   measured pass@4 {row['pass@4']:.3f}")

# %% [markdown]
# The figure shows where the gap comes from: the share of problems with c = 0, 1, …, 8 correct
# samples, against the binomial distribution that 8 samples would follow if every problem of
# the level had the same rate pass@1 (black dots).

# %%
fig, axes = plt.subplots(1, len(rows), figsize=(10, 3), sharey=True)
ks = range(n_samples + 1)
for ax, row in zip(axes, rows):
    level = row["level"]
    cs = counts[level]
    p_mean = sum(cs) / (n_samples * len(cs))  # pass@1 of these samples
    ax.bar(ks, [cs.count(k) / len(cs) for k in ks], color="tab:blue", label="measured")
    binomial = [math.comb(n_samples, k) * p_mean**k * (1 - p_mean) ** (n_samples - k) for k in ks]
    ax.plot(ks, binomial, "ko", markersize=4, label=f"same rate {p_mean:.3f} for all")
    ax.set_title(f"{level} numbers")
    ax.set_xlabel(f"correct of {n_samples} samples")
    ax.legend(fontsize=7)
axes[0].set_ylabel("share of problems")
fig.suptitle("Problems differ: more of them at 0 and at high counts than one shared rate gives",
             fontsize=10)
fig.tight_layout()
plt.show()

# %% [markdown]
# On 3 numbers the difference is large: 29 % of the problems are never solved where one
# shared rate predicts 11 %, and more problems than predicted are solved 4 to 7 times of 8.
# The model's skill is concentrated on some problems and absent on others. On 4 and 5 numbers
# nearly every problem is close to 0, so the shapes are close to the shared-rate ones and the
# pass@4 gap is small, but 63 % and 80 % of the problems are never solved. Those are the
# problems where a GRPO group of 8 is all wrong and teaches nothing — the plateau. A search
# that spends more samples *inside* such a problem, branching from partial solutions, is what
# the next notebooks build.

# %% [markdown]
# ## 6. Learned or memorised?
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
# On 3 numbers the model solves problems it was taught more often than new ones: part of the
# easy level's skill is recall. On 4 and 5 numbers (thousands of problems, each seen a few
# times) there is no such gap beyond the sampling error of a small table. Held-out numbers are
# the honest ones, and every table in this kit reports them.
#
# > **Paper vs code.** The paper's starting model is a 1.5B reasoner on competition math; here
# > a 0.4M-parameter model on countdown plays its part. The paper's training verifier compares
# > the last box with the reference answer as normalised strings
# > ([paper notes](../docs/paper-notes.md#terminal-score)); countdown's verifier computes the
# > box's value exactly and checks the numbers, so any correct expression counts. The paper
# > selects hard problems by **Pass1@K**, a success *rate* c/K, not the pass@k above: the
# > released code keeps problems at ≤ 25 % (0/4 and 1/4), the paper's text at < 25 %
# > ([paper notes](../docs/paper-notes.md#filtering)); the table's "share at ≤ 25 % success"
# > column is the code's rule on 8 samples. The paper reports avg@32 at temperature 0.6 and
# > top-p 0.95 ([paper notes](../docs/paper-notes.md#evaluation)); the table's pass@1 is avg@8
# > at temperature 1.0, the training temperature.

# %% [markdown]
# ## Summary
#
# The countdown verifier grades only the last box: it parses it without executing anything,
# computes the value exactly and checks that the problem's numbers are used once each. The
# tiny reasoner solves a good share of 3-number problems but almost none of the 5-number ones.
# pass@k of a problem is 1 − C(n−c, k)/C(n, k), an unbiased estimate of 1 − (1 − p)^k, and a
# level's pass@4 is its mean over problems — below 1 − (1 − pass@1)⁴, because success
# concentrates on some problems while many sit at 0. Those all-wrong groups are the plateau
# DeepSearch targets: flat GRPO sees zero advantage there, while a tree search that keeps
# branching from promising partial solutions can still find a correct path to learn from.
# Notebooks 01–03 build that search step by step.
#
# ## Exercises
#
# **1. Predict, then run.** A hand-made problem: numbers 2 3 4 6, target 9. For each answer,
# predict `correct` and `reason` (`ok`, `no_answer`, `bad_expression`, `wrong_numbers`,
# `wrong_value`), then run
# `q = countdown.Problem("q", (2, 3, 4, 6), 9, (), "4*3-6/2")` and
# `countdown.verify(q, text)` for each text:
# (a) `\boxed{6/4*3*2}`, (b) `\boxed{6/4*3}`, (c) `\boxed{4*3-6/2} or rather \boxed{4*3-6+2}`,
# (d) `\boxed{4*3-6/2=9}`, (e) `\boxed{4 \times 3 - 6 \div 2}`. (In Python, write each text as a
# raw string, `r"..."`.)
#
# <details><summary>Solution</summary>
#
# (a) **correct, `ok`**: 6/4 = 3/2 is not an integer, but the value is computed with exact
# fractions, 3/2·3·2 = 9, and 2, 3, 4, 6 are each used once. (b) **`wrong_numbers`**: the 2 is
# missing (the value 9/2 is never compared). (c) **`wrong_value`**: the first box is right,
# but only the last box counts, and 4·3 − 6 + 2 = 8. (d) **`bad_expression`**: `=` is not part
# of the grammar, so the box is not an expression. (e) **correct, `ok`**: `\times` and `\div`
# are aliases of `*` and `/`.
#
# </details>
#
# **2. Pencil.** This build's table gives pass@1 = 0.0675 on 4 numbers (the numbers differ
# slightly between builds and kinds of CPU; use those of your table). If every 4-number problem
# had the same rate p = pass@1, what share of problems would have all 8 samples wrong? Compare
# with the table's "never solved" column and the figure of section 5. Then do the same for 3
# numbers.
#
# <details><summary>Solution</summary>
#
# All 8 wrong: (1 − p)⁸ = 0.9325⁸ = **0.572**, i.e. 57 of 100 problems; this build measured
# **0.63** never solved. On 3 numbers: 0.76125⁸ = **0.113** against **0.29** measured. The
# measured share is higher because the rates differ between problems: (1 − p)⁸ is convex in p,
# so its mean over problems is above its value at the mean rate — problems at p ≈ 0 raise the
# all-wrong share more than easy problems lower it. On 4 numbers the gap (6 points) is about
# one standard error of a share over 100 problems (√(0.57·0.43/100) ≈ 0.05), so on its own it
# is weak evidence; the other tail agrees (the figure: 4 problems with 3 or more correct, where
# the shared rate expects about 1). On 3 numbers the gap is unmistakable.
#
# </details>
#
# **3. Change the code.** In section 5's sampling cell, set `temperature = 0.1` (nearly
# greedy) and rerun that cell. Predict first: do pass@1 and pass@4 on 4 numbers both rise, both
# fall, or move in opposite directions? Then try `temperature = 0.5`.
#
# <details><summary>Solution</summary>
#
# Measured on this build (the cell as it stands, 100 problems × 8 samples per level, policy
# seed 1234), 4 numbers:
#
# | temperature | 3 numbers: pass@1 | pass@4 | never | 4 numbers: pass@1 | pass@4 | never |
# |---|---|---|---|---|---|---|
# | 1.0 | 0.239 | 0.554 | 0.29 | 0.068 | 0.226 | 0.63 |
# | 0.5 | 0.326 | 0.589 | 0.29 | 0.092 | 0.285 | 0.56 |
# | 0.1 | 0.369 | 0.456 | 0.52 | 0.130 | 0.214 | 0.73 |
#
# At 0.1, pass@1 nearly doubles on 4 numbers while pass@4 does not rise: it slips from 0.226
# to 0.214, a change within the noise (with policy seeds 0 and 1 instead of 1234 it went
# 0.210 → 0.217 and 0.279 → 0.175), and the share of problems never solved grows from 0.63 to
# 0.73. On 3 numbers the opposite movement is clear: pass@1 0.239 → 0.369, pass@4 0.554 →
# 0.456, never solved 0.29 → 0.52. Nearly greedy sampling repeats the model's favourite
# answer: right more often where that answer is right, but the 8 samples stop exploring, so
# more problems get no correct sample at all. At 0.5 both rise on every level (4 numbers:
# 0.092 and 0.285): cutting the unlikely tokens removes more bad samples than it costs in
# diversity. For RL the number that matters is the never-solved share — a group with no
# correct sample has no signal — which is one reason training and search sample at
# temperature 1.0 ([paper notes](../docs/paper-notes.md#hyperparameters)). The exact numbers
# differ between builds and CPUs; each run of the cell takes a few seconds.
#
# </details>
