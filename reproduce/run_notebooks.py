"""Run notebooks 00-06 with papermill into one folder and write ``report.md``.

    python reproduce/run_notebooks.py --out runs/reproduce               # tiny preset, CPU
    python reproduce/run_notebooks.py --out runs/reproduce --smoke       # a few steps of each
    python reproduce/run_notebooks.py --preset paper-1.5b --only 06 --out runs/paper

Outputs (see reproduce/README.md): the executed notebooks, ``06/`` (the full run's figures,
``summary.md``, run directories), and ``report.md`` (time per notebook, the full run's summary).
Notebooks 00-05 teach with their own small defaults; ``--preset`` and ``--smoke`` are passed to
06 only (05's parameters shrink with ``--smoke`` too).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"

#: parameters that make each teaching notebook fast, for --smoke
SMOKE_PARAMS: dict[str, dict[str, object]] = {
    "04": {"n_problems": 2, "train_steps": 2},
    "05": {"pool_size": 24, "rounds": 2, "steps_per_round": 2, "problems_per_step": 4},
}


def run(out: Path, preset: str, smoke: bool, only: list[str], overrides: list[str]) -> Path:
    import papermill

    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for nb in sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")):
        key = nb.name[:2]
        if only and key not in only:
            continue
        params: dict[str, object] = dict(SMOKE_PARAMS.get(key, {})) if smoke else {}
        if key == "06":
            params = {"preset": preset, "smoke": smoke, "overrides": overrides,
                      "output_dir": str((out / "06").resolve())}
        t0 = time.perf_counter()
        print(f"{nb.name} ...", flush=True)
        # the notebook's prints and progress bars stream here as it runs
        papermill.execute_notebook(str(nb), str(out / nb.name), parameters=params,
                                   cwd=str(NOTEBOOKS), kernel_name="python3",
                                   progress_bar=False, stdout_file=sys.stdout,
                                   stderr_file=sys.stderr)
        rows.append((nb.name, time.perf_counter() - t0))
        print(f"{nb.name}: {rows[-1][1]:.0f} s", flush=True)
    lines = ["# dslib reproduction report", "",
             f"preset `{preset}`{' (smoke)' if smoke else ''}; command: `python "
             f"reproduce/run_notebooks.py {' '.join(sys.argv[1:])}`", "",
             "| notebook | seconds |", "|---|---|"]
    lines += [f"| {name} | {sec:.0f} |" for name, sec in rows]
    summary = out / "06" / "summary.md"
    if summary.exists():
        lines += ["", summary.read_text()]
        lines += ["", "Figures: `06/curves.png`, `06/before_after.png`, `06/eval_vs_tokens.png`, "
                  "`06/rounds.png`."]
    report = out / "report.md"
    report.write_text("\n".join(lines) + "\n")
    return report


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="runs/reproduce", help="output folder")
    ap.add_argument("--preset", default="tiny", help="training preset of notebook 06")
    ap.add_argument("--smoke", action="store_true", help="a few steps of everything")
    ap.add_argument("--only", nargs="*", default=[], metavar="NN",
                    help="notebook numbers to run, e.g. --only 05 06")
    ap.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                    help="config override passed to notebook 06, e.g. optim.lr=1e-4")
    args = ap.parse_args(argv)
    report = run(Path(args.out), args.preset, args.smoke, args.only, args.set)
    print(f"report: {report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
