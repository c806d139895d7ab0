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
# # 06 · The full run: filtering → rounds of DeepSearch → evaluation → report
#
# Notebooks 00–05 built every piece. This one runs them together the way the paper trains
# (paper notes: [rounds](../docs/paper-notes.md#rounds),
# [hyperparameters](../docs/paper-notes.md#hyperparameters)): filter the training pool to the
# problems the model still fails, train in rounds with the tree search and the replay buffer,
# re-filter and register after each round, evaluate, and compare with the flat GRPO/DAPO baseline
# trained on the same hard subset for the same number of steps.
#
# It is written for papermill. The defaults run the **tiny** preset on a laptop CPU in a few
# minutes (this is `make demo`). With `preset="paper-1.5b"` the same notebook is the 1.5B
# reproduction on GPUs. `smoke=True` runs a few steps of the same code path (the tests do).
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
seed = 0

# %%
import json
import time
import warnings
from pathlib import Path

warnings.filterwarnings("ignore", message="IProgress not found")  # tqdm without ipywidgets

import matplotlib.pyplot as plt
import torch
from IPython.display import Markdown, display
from transformers.utils import logging as hf_logging

from dslib import presets, viz
from dslib import rounds as rounds_mod
from dslib import trainer as trainer_mod
from dslib.config import update
from dslib.report import summary_table

hf_logging.disable_progress_bar()
torch.set_num_threads(max(1, min(2, torch.get_num_threads())))

if preset not in presets.PRESETS:
    raise SystemExit(
        f"preset {preset!r} is not available in this build (have {sorted(presets.PRESETS)}); "
        "the 1.5B preset 'paper-1.5b' comes with dslib's 1.5B support"
    )
cfg = presets.configure(preset, [*overrides, f"run.seed={seed}"])
rcfg = update(presets.rounds_preset(preset), {
    k: v for k, v in {"rounds": rounds, "steps_per_round": steps_per_round}.items()
    if v is not None})
if smoke:
    cfg, rcfg = presets.smoke(cfg, rcfg)
out = Path(output_dir)
out.mkdir(parents=True, exist_ok=True)
print(f"preset {preset}: {rcfg.rounds} rounds x {rcfg.steps_per_round} steps, "
      f"{cfg.run.problems_per_step} problems per step, pool {rcfg.pool_size or 'all'}, "
      f"levels {cfg.task.levels}; writing to {out}")

# %% [markdown]
# ## 1. Rounds of DeepSearch
#
# `Rounds.run()` filters the pool (Pass1@4, keep ≤ 25 %), then per round: trains
# `steps_per_round` steps with the search and the replay buffer, re-filters the round's hard set
# with the trained model, and registers the round's rare successes in the buffer. Re-running
# this cell with the same `output_dir` resumes: finished rounds are kept, a stopped round
# continues from its last checkpoint.

# %%
t0 = time.perf_counter()
runner = rounds_mod.Rounds(cfg, rcfg, out / "deepsearch")
rows = runner.run()
ds_history = runner.history()
ds_seconds = time.perf_counter() - t0
display(Markdown(rounds_mod.table6(rows)))

# %% [markdown]
# ## 2. The baseline: flat GRPO/DAPO on the same hard subset
#
# Same preset, same first filter file (`task.train_subset`), the same number of steps; each
# problem gets `rollout.samples_per_problem` flat samples and the outcome reward on every token —
# Tree-GRPO with sequence-level rewards is exactly DAPO's loss (notebook 04). No search, no
# buffer.

# %%
histories = {"deepsearch": ds_history}
if baseline:
    t0 = time.perf_counter()
    bcfg = update(cfg, {
        "rollout.strategy": "flat", "run.steps": rcfg.rounds * rcfg.steps_per_round,
        "task.train_subset": str(runner.filter_path(1)),
        "eval.every": cfg.eval.every and rcfg.steps_per_round})
    base_dir = out / "grpo"
    if (base_dir / "checkpoint" / "state.json").exists():
        base_trainer = trainer_mod.Trainer.resume(base_dir)
    else:
        base_trainer = trainer_mod.Trainer(bcfg, base_dir)
    histories["grpo"] = base_trainer.train()
    grpo_seconds = time.perf_counter() - t0

# %% [markdown]
# ## 3. Training curves
#
# Reward (the mean score of the trajectories trained on), the share of groups whose members
# all had the same outcome (no signal for a flat group-relative update), and held-out pass@1
# per difficulty at every evaluation. DeepSearch's steps run through all rounds.

# %%
fig = viz.plot_training(ds_history, title="deepsearch",
                        others={k: v for k, v in histories.items() if k != "deepsearch"})
fig.savefig(out / "curves.png", dpi=100, bbox_inches="tight")
plt.show()

# %% [markdown]
# ## 4. Held-out accuracy per difficulty, before and after

# %%
fig = viz.plot_before_after(histories)
fig.savefig(out / "before_after.png", dpi=100, bbox_inches="tight")
plt.show()
table = summary_table(histories)
display(Markdown(table))

# %% [markdown]
# ## 5. What the cache saved
#
# The paper's Table 6 for this run, as a picture: per round, the hard set split into problems
# served from the replay buffer and problems still searched, and the sampled tokens with the
# estimated tokens the skipped searches would have cost.

# %%
fig = viz.plot_rounds(rows)
fig.savefig(out / "rounds.png", dpi=100, bbox_inches="tight")
plt.show()

# %% [markdown]
# ## 6. Summary
#
# Written from the numbers above, and saved as `summary.md` next to the figures.

# %%
def change(history, name):
    before_after = viz.before_after(history).get(name)
    return before_after if before_after else (float("nan"), float("nan"))


ds_tokens = sum(r["savings"]["sampled_tokens"] for r in rows)
lines = [f"# Full run: preset `{preset}`{' (smoke)' if smoke else ''}", ""]
lines.append(
    f"DeepSearch: {rcfg.rounds} rounds x {rcfg.steps_per_round} steps, {ds_tokens:,} sampled "
    f"tokens, {ds_seconds:.0f} s. The hard set went from {rows[0]['hard']} to "
    f"{rows[-1]['hard']} problems; the buffer held {rows[-1]['buffer_problems']} problems in "
    f"the last round, which served {rows[-1]['cached_ratio']:.1%} of its hard set and saved "
    f"an estimated {sum(r['savings']['saved_tokens'] for r in rows):,.0f} tokens over the run."
)
for name in viz.before_after(ds_history):
    a, b = change(ds_history, name)
    line = f"- {name}: DeepSearch {a:.3f} -> {b:.3f} ({b - a:+.3f})"
    if "grpo" in histories:
        ga, gb = change(histories["grpo"], name)
        line += f"; flat GRPO {ga:.3f} -> {gb:.3f} ({gb - ga:+.3f})"
    lines.append(line)
if "grpo" in histories:
    g_train = [r for r in histories["grpo"] if r.get("kind") == "train"]
    lines.append(
        f"\nFlat GRPO: {len(g_train)} steps, {g_train[-1]['cumulative_sampled_tokens']:,} "
        f"sampled tokens, {grpo_seconds:.0f} s this call; groups with one outcome only (no "
        f"signal): {sum(r['zero_signal_share'] for r in g_train) / len(g_train):.0%} on average."
    )
lines.append(
    "\nHeld-out pass@1 is the mean success of the preset's `eval.samples` samples on "
    f"`eval.problems` = {cfg.eval.problems} test problems per difficulty: one standard error "
    f"is about {(0.03 * 0.97 / (cfg.eval.problems * cfg.eval.samples)) ** 0.5:.3f} at a "
    "pass@1 of 0.03, so differences of a point or two on the hard sets are noise."
)
summary = "\n".join(lines)
(out / "summary.md").write_text(summary + "\n\n" + table + "\n\n"
                                + rounds_mod.table6(rows) + "\n")
(out / "histories.json").write_text(json.dumps(histories))
display(Markdown(summary))

# %% [markdown]
# **Exercise.** Run the notebook again with `overrides=["optim.grpo.baseline=tree"]` (the paper's
# mean over all terminals of the tree instead of the code's mean over recorded trajectories),
# or with `rounds=1, steps_per_round=150` (no replay buffer ever used) and compare the hard-set
# accuracy and the tokens sampled.
