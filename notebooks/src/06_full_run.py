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
# # 06 · The full run: does the search pay for itself?
#
# Notebooks 00–05 built every piece. This one runs them together the way the paper trains
# (paper notes: [rounds](../docs/paper-notes.md#rounds),
# [hyperparameters](../docs/paper-notes.md#hyperparameters)): filter the training pool to the
# problems the model still fails, train in rounds with the tree search and the replay buffer,
# re-filter and register after each round, evaluate; and, on the same hard subset for the same
# number of steps, the flat GRPO/DAPO baseline. Both are trained with several seeds, because on
# a model this small one seed's difference is mostly noise.
#
# **Goal.** By the end you can run the whole pipeline, read its curves, and say which method
# won on each held-out difficulty, by how much, with what uncertainty and at what cost in
# sampled tokens, and why the training reward of a run with a replay buffer is not comparable
# with a run without one.
#
# It is written for papermill. The defaults run the **tiny** preset with three seeds on a laptop
# CPU (this is `make demo`: 10 minutes on 2 cores, the tiny build included). With
# `preset="paper-1.5b"` the same notebook is the 1.5B reproduction on GPUs (one seed unless
# `seeds` says otherwise). `smoke=True` runs a few steps of the same code path (the tests do).
#
# ```bash
# papermill notebooks/06_full_run.ipynb out.ipynb -p preset tiny -p output_dir runs/full-run
# ```

# %% tags=["parameters"]
preset = "tiny"          # a training preset of dslib.presets.PRESETS
overrides = []           # config overrides, as `dslib train --set` takes them (optim.lr, ...)
output_dir = "../runs/full-run"
smoke = False            # a few steps of everything (tests)
rounds = None            # None: the preset value (tiny: 3)
steps_per_round = None   # None: the preset value (tiny: 50)
baseline = True          # also train the flat GRPO/DAPO baseline for comparison
seeds = None             # None: [0, 1, 2] for the tiny preset, [0] for the others

# %%
import inspect
import json
import statistics
import warnings
from pathlib import Path

warnings.filterwarnings("ignore", message="IProgress not found")  # tqdm without ipywidgets

import matplotlib.pyplot as plt
import torch
from IPython.display import Markdown, display
from transformers.utils import logging as hf_logging

from dslib import presets, report, viz
from dslib import rounds as rounds_mod
from dslib import trainer as trainer_mod
from dslib.config import update

hf_logging.disable_progress_bar()
torch.set_num_threads(max(1, min(2, torch.get_num_threads())))

if preset not in presets.PRESETS:
    raise SystemExit(
        f"preset {preset!r} is not available in this build (have {sorted(presets.PRESETS)}); "
        "the 1.5B preset 'paper-1.5b' comes with dslib's 1.5B support"
    )
if seeds is None:
    seeds = [0, 1, 2] if preset == "tiny" else [0]
cfg = presets.configure(preset, overrides)
rcfg = update(presets.rounds_preset(preset), {
    k: v for k, v in {"rounds": rounds, "steps_per_round": steps_per_round}.items()
    if v is not None})
if smoke:
    cfg, rcfg = presets.smoke(cfg, rcfg)
out = Path(output_dir)
out.mkdir(parents=True, exist_ok=True)
print(f"preset {preset}: {rcfg.rounds} rounds x {rcfg.steps_per_round} steps, "
      f"{cfg.run.problems_per_step} problems per step, pool {rcfg.pool_size or 'all'}, "
      f"levels {cfg.task.levels}, seeds {list(seeds)}; writing to {out}")

# %% [markdown]
# ## 1. Rounds of DeepSearch, then the baseline, seed by seed
#
# `Rounds.run()` filters the pool (Pass1@4, keep ≤ 25 %), then per round trains
# `steps_per_round` steps with the search and the replay buffer, re-filters the round's hard
# set with the trained model, and registers the round's rare successes in the buffer
# (notebook 05).
#
# The baseline uses the same preset, the same first filter file (`task.train_subset`) and the
# same number of steps; each problem gets `rollout.samples_per_problem` flat samples and the
# outcome reward on every token: Tree-GRPO with sequence-level rewards is exactly DAPO's loss
# (notebook 04). No search, no buffer.
#
# A seed fixes the base model's sampling, the problems drawn and the evaluation samples, so the
# two methods of one seed start from the same weights and the same hard set: their difference
# is *paired*. Each seed writes `seed-S/deepsearch` and `seed-S/grpo`; re-running this cell
# with the same `output_dir` resumes (finished runs are kept, a stopped one continues from its
# last checkpoint).

# %%
runs = {}  # seed -> {"rows": Table 6 rows, "deepsearch": history, "grpo": history}
for seed in seeds:
    scfg = update(cfg, {"run.seed": seed})
    runner = rounds_mod.Rounds(scfg, rcfg, out / f"seed-{seed}" / "deepsearch")
    run = {"rows": runner.run(), "deepsearch": runner.history()}
    if baseline:
        bcfg = update(scfg, {
            "rollout.strategy": "flat", "run.steps": rcfg.rounds * rcfg.steps_per_round,
            "task.train_subset": str(runner.filter_path(1)),
            "eval.every": scfg.eval.every and rcfg.steps_per_round})
        base_dir = out / f"seed-{seed}" / "grpo"
        if (base_dir / "checkpoint" / "state.json").exists():
            base_trainer = trainer_mod.Trainer.resume(base_dir)
        else:
            base_trainer = trainer_mod.Trainer(bcfg, base_dir)
        run["grpo"] = base_trainer.train()
    runs[seed] = run
first = runs[seeds[0]]
display(Markdown(f"Table 6 of seed {seeds[0]}:\n\n" + rounds_mod.table6(first["rows"])))

# %% [markdown]
# ## 2. Training curves, and a reward that is not what it seems
#
# The left panel is the mean score of the trajectories trained on. For DeepSearch two lines:
# the solid one counts only what the policy **sampled**; the dotted one also counts the cached
# solutions of the replay buffer. From round 2 on, a buffered problem's group holds verified
# correct answers (notebook 05), so the dotted reward rises as the buffer fills whether or not
# the policy got any better. Only the solid lines compare between the two methods. The middle
# panel is the share of groups with one outcome only (no signal for a flat group-relative
# update), the right one held-out pass@1 at each evaluation.

# %%
fig = viz.plot_training(first["deepsearch"], title=f"deepsearch (seed {seeds[0]})",
                        others={"grpo": first["grpo"]} if baseline else None)
fig.savefig(out / "curves.png", dpi=100, bbox_inches="tight")
plt.show()

# %% [markdown]
# ## 3. Who won, by how much
#
# The first figure: held-out pass@1 per difficulty before training and after the same number
# of *steps*, the mean over seeds with one standard error. The second puts the same
# evaluations against what each run had **sampled** so far: a method ahead at equal compute is
# the higher curve at the same x, and a curve that ends further right paid more tokens.

# %%
methods = {"deepsearch": [r["deepsearch"] for r in runs.values()]}
if baseline:
    methods["grpo"] = [r["grpo"] for r in runs.values()]
fig = viz.plot_before_after(methods)
fig.savefig(out / "before_after.png", dpi=100, bbox_inches="tight")
plt.show()
fig = viz.plot_eval_vs_tokens(methods)
fig.savefig(out / "eval_vs_tokens.png", dpi=100, bbox_inches="tight")
plt.show()

# %% [markdown]
# The tables pair the seeds: for each seed, DeepSearch's change in pass@1 minus flat GRPO's,
# then the mean of those differences with its standard error and a 95 % interval (Student's
# t with one degree of freedom fewer than seeds: with 3 seeds the interval is ±4.3 standard
# errors wide). A method is called ahead only when that interval leaves out 0
# (`dslib.report.verdict`). With $d_s$ the difference of seed $s$ and $n$ seeds:
#
# $$\bar d = \frac{1}{n}\sum_s d_s, \qquad
#   \mathrm{s.e.} = \frac{1}{\sqrt n}\sqrt{\frac{\sum_s (d_s - \bar d)^2}{n-1}}, \qquad
#   \bar d \pm t_{0.975,\,n-1}\,\mathrm{s.e.}$$
#
# The first table compares at **equal steps** (both runs to the end); the second at **equal
# tokens**: DeepSearch at its last evaluation made before it had sampled more than flat GRPO's
# whole run (`report.paired(..., equal_tokens=True)`).

# %%
print(inspect.getsource(report.Paired.diff.fget))
print(inspect.getsource(report.Paired.interval.fget))

# %%
if baseline:
    paired = report.paired(methods["deepsearch"], methods["grpo"])
    table = report.paired_table(paired, "DeepSearch", "flat GRPO")
    verdict = report.verdict(paired, "DeepSearch", "flat GRPO")
    at_tokens = report.paired(methods["deepsearch"], methods["grpo"], equal_tokens=True)
    table_tokens = report.paired_table(at_tokens, "DeepSearch", "flat GRPO")
    verdict_tokens = report.verdict(at_tokens, "DeepSearch", "flat GRPO")
    display(Markdown("**At equal steps**\n\n" + table + "\n\n**Verdict.** " + verdict))
    display(Markdown("**At equal tokens**\n\n" + table_tokens + "\n\n**Verdict.** "
                     + verdict_tokens))
else:
    table = report.seed_table({"deepsearch": methods["deepsearch"]})
    verdict = "no baseline was trained"
    display(Markdown(table))

# %% [markdown]
# How to read it. Each seed's held-out pass@1 is itself measured on `eval.problems` problems
# with `eval.samples` samples each, so even a perfect replication wobbles by about a point; the
# seed-to-seed spread of the difference holds that wobble and the training's own luck. The
# token ratio is the other half of the answer: at equal steps DeepSearch spends its tokens on
# trees over the hardest problems, flat GRPO on `rollout.samples_per_problem` independent
# samples per problem (4 on the tiny preset), and the last column says how many times more the
# trees cost. The second figure above compares the two at the same token count.
#
# Why the tree does not pay for itself here is measured in `reproduce/RESULTS.md`: how often
# the tiny reasoner's trees find a correct path, how many flat groups carry no signal, what a
# tree costs ("Plateau study"); and where line-node trees *do* find more 5-number solutions
# than flat sampling at equal tokens, before any training ("Exploration at equal tokens").
# Finding more solutions during search has not yet turned into a better policy on this model.

# %% [markdown]
# **What the stored run found.** These are the outputs stored with this notebook: the default
# tiny build, seeds 0, 1 and 2. A re-run on another CPU gives other digits (notebook 00), so
# check them against your own tables above.
#
# - At equal steps, on the levels both methods train on (4 and 5 numbers), **neither is
#   ahead**: DeepSearch − flat GRPO = −0.008 ± 0.019 and −0.012 ± 0.008, intervals that hold 0.
#   On 3 numbers, a level neither trains on, DeepSearch keeps its accuracy (−0.003) where flat
#   GRPO loses 0.025, and that interval, [+0.010, +0.033], leaves out 0. Read it with care:
#   three sets were tested, so one interval missing 0 by chance is not unlikely, and a standard
#   error from three seeds is itself rough.
# - DeepSearch paid **2.4× the sampled tokens** for this. At equal tokens (DeepSearch after its
#   first round, 0.98× flat GRPO's tokens) flat GRPO is ahead on every level by 0.010–0.016,
#   within the noise again.
# - So on the tiny reasoner, training-time search has not paid for itself: level with flat
#   sampling at equal steps on the trained levels, and behind it, within the noise, at equal
#   tokens.
# - The fair rival of a tree spends what the tree spends. `python
#   reproduce/adaptive_beside_demo.py ../runs/full-run` trains, beside each seed, flat GRPO that
#   samples a problem until its group holds a correct and a wrong answer, up to the tree's
#   tokens per problem. On this run it was not behind DeepSearch either: DeepSearch − adaptive
#   = −0.017 ± 0.014 and −0.005 ± 0.006 on 4 and 5 numbers, intervals that hold 0.

# %% [markdown]
# ## 4. What the cache saved
#
# The paper's Table 6 for the first seed, as a picture: per round, the hard set split into
# problems served from the replay buffer and problems still searched, and the sampled tokens
# with the estimated tokens the skipped searches would have cost. The hard set can only shrink:
# each round re-filters the previous round's hard set.

# %%
fig = viz.plot_rounds(first["rows"])
fig.savefig(out / "rounds.png", dpi=100, bbox_inches="tight")
plt.show()

# %% [markdown]
# ## 5. Summary of the run
#
# Written from the numbers above, and saved as `summary.md` next to the figures.

# %%
tokens, seconds = report.sampled_tokens, report.train_seconds  # what a run spent
mean = statistics.mean
n = len(seeds)
lines = [f"# Full run: preset `{preset}`{' (smoke)' if smoke else ''}, seeds {list(seeds)}", ""]
lines.append(
    f"DeepSearch: {rcfg.rounds} rounds x {rcfg.steps_per_round} steps, "
    f"{mean(tokens(r['deepsearch']) for r in runs.values()):,.0f} sampled tokens and "
    f"{mean(seconds(r['deepsearch']) for r in runs.values()):.0f} s of training steps "
    f"per seed (mean of {n}). Seed "
    f"{seeds[0]}: the hard set went from {first['rows'][0]['hard']} to "
    f"{first['rows'][-1]['hard']} problems; in the last round the buffer held "
    f"{first['rows'][-1]['buffer_problems']} problems and served "
    f"{first['rows'][-1]['cached_ratio']:.1%} of the hard set.")
if baseline:
    g_train = [r for run in runs.values() for r in run["grpo"] if r.get("kind") == "train"]
    lines.append(
        f"\nFlat GRPO: {rcfg.rounds * rcfg.steps_per_round} steps, "
        f"{mean(tokens(r['grpo']) for r in runs.values()):,.0f} sampled tokens and "
        f"{mean(seconds(r['grpo']) for r in runs.values()):.0f} s of training steps per "
        f"seed; groups with one outcome "
        f"only (no signal): {mean(r['zero_signal_share'] for r in g_train):.0%} on average.")
lines += ["", "At equal steps:", "", table, "", f"**Verdict.** {verdict}", ""]
if baseline:
    lines += ["At equal tokens:", "", table_tokens, "", f"**Verdict.** {verdict_tokens}", ""]
lines.append(
    "Held-out pass@1 is the mean success of `eval.samples` samples on "
    f"`eval.problems` = {cfg.eval.problems} test problems per difficulty: within one run its "
    f"standard error is about {(0.05 * 0.95 / (cfg.eval.problems * cfg.eval.samples)) ** 0.5:.3f}"
    " at a pass@1 of 0.05.")
summary = "\n".join(lines)
(out / "summary.md").write_text(summary + "\n\n" + rounds_mod.table6(first["rows"]) + "\n")
(out / "histories.json").write_text(json.dumps(
    {str(s): {k: r[k] for k in ("deepsearch", "grpo") if k in r} for s, r in runs.items()}))
display(Markdown(summary))

# %% [markdown]
# ## Summary
#
# - The full pipeline is the 1.5B recipe in miniature: filter to the hard subset, train in
#   rounds with the tree search and the replay buffer, re-filter and register between rounds.
# - A comparison needs seeds and pairing: the same seed gives both methods the same start, so
#   the difference of their changes is the number to judge, with its interval.
# - A replay buffer puts verified answers into the training groups, so the training reward of a
#   run with one is inflated; compare sampled rewards, and held-out accuracy above all.
# - Steps are not compute: the verdict at equal steps and the curves at equal sampled tokens
#   answer different questions, and a kit about training-time search has to show both.
#
# ## Exercises
#
# **1. Predict, then run.** Before looking at the middle panel of section 2: what share of flat
# GRPO's groups do you expect to carry no signal, given notebook 00's table (most 4- and
# 5-number problems are never solved in 8 samples)? Then compute it:
# `mean(r["zero_signal_share"] for r in g_train)`, and the same for DeepSearch's groups.
#
# <details><summary>Solution</summary>
#
# Most: the hard subset keeps problems solved at most once in 4 direct samples, and notebook 00
# found about 60–80 % of 4- and 5-number problems never solved in 8 samples, so most 8-sample groups
# are all wrong. The summary above prints the measured share for flat GRPO. For DeepSearch's
# tree groups the same metric is also high, but a tree's node q-values still give non-zero
# advantages inside an all-wrong tree (notebook 04), and cached groups from round 2 on are
# mixed by construction (notebook 05).
#
# </details>
#
# **2. Pencil.** In the table of section 3, take the token ratio r of DeepSearch to flat GRPO.
# Suppose flat GRPO's gain grew in proportion to its sampled tokens (optimistic for it: gains
# usually slow down). What gain would flat GRPO reach with DeepSearch's budget, and would
# DeepSearch then be ahead on any difficulty?
#
# <details><summary>Solution</summary>
#
# Multiply flat GRPO's mean change by r (about 2.4 on the tiny preset): where flat GRPO's
# change is positive the extrapolated gain is r times larger, so a DeepSearch that is level
# at equal steps is behind at equal tokens. Where flat GRPO's change is near zero or negative,
# the extrapolation says nothing. The second figure of section 3 is the honest version of
# this arithmetic: it plots what each run reached at each token count, without assuming a
# straight line.
#
# </details>
#
# **3. Change the code.** The interval of `report.paired` uses the paired differences. Compute
# the unpaired version instead: the standard error of (mean change of A − mean change of B)
# from the two methods' changes taken separately, `(sA²/n + sB²/n) ** 0.5` with
# `statistics.stdev(row.changes_a)` and `statistics.stdev(row.changes_b)` for each `row` of
# `paired`. Is it larger or smaller than the paired standard error, and why?
#
# <details><summary>Solution</summary>
#
# ```python
# import statistics
# for row in paired:
#     sa, sb = statistics.stdev(row.changes_a), statistics.stdev(row.changes_b)
#     print(row.name, row.diff[1], (sa**2 / n + sb**2 / n) ** 0.5)
# ```
#
# The unpaired error is usually the larger one. A seed whose evaluation happens to favour its
# base model (an easier draw of held-out samples, a luckier first filter) moves both methods'
# changes the same way; pairing subtracts that shared part. When the two methods' changes are
# uncorrelated across seeds the two errors are about equal, and with 3 seeds either estimate is
# itself rough.
#
# </details>
