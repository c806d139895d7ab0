"""Regenerate the executed notebooks from their py:percent sources in ``notebooks/src``.

``python notebooks/build.py [PREFIX ...]``: for each ``src/NN_name.py`` (or only those whose
name starts with a given prefix), convert with jupytext and execute with papermill in this
folder, so ``NN_name.ipynb`` holds the code of the source and fresh outputs.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import jupytext
import nbformat
import papermill

HERE = Path(__file__).resolve().parent


def build(prefixes: list[str]) -> None:
    for src in sorted((HERE / "src").glob("*.py")):
        if prefixes and not any(src.stem.startswith(p) for p in prefixes):
            continue
        out = HERE / f"{src.stem}.ipynb"
        nb = jupytext.read(src)
        nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python",
                                     "name": "python3"}
        nb.metadata.pop("jupytext", None)
        jupytext.write(nb, out)
        t0 = time.perf_counter()
        papermill.execute_notebook(
            str(out), str(out), cwd=str(HERE), kernel_name="python3", progress_bar=False
        )
        _strip_machine_details(out)
        print(f"{out.name}: executed in {time.perf_counter() - t0:.0f} s")


def _strip_machine_details(path: Path) -> None:
    """Drop papermill's absolute paths and per-cell timings (noise in diffs, machine details)."""
    nb = nbformat.read(path, as_version=4)
    nb.metadata.get("papermill", {}).pop("input_path", None)
    nb.metadata["papermill"].pop("output_path", None)
    for key in ("start_time", "end_time", "duration"):
        nb.metadata["papermill"].pop(key, None)
    for cell in nb.cells:
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
        if cell.cell_type == "code":
            cell.outputs = collapse_streams(cell.outputs)
    nbformat.write(nb, path)


def collapse_streams(outputs: list) -> list:
    """Merge consecutive stream outputs and keep only the final state of each ``\r``-redrawn
    line, so a progress bar is stored as its last frame instead of one chunk per update."""
    out: list = []
    for o in outputs:
        if (o.get("output_type") == "stream" and out and out[-1].get("output_type") == "stream"
                and out[-1]["name"] == o["name"]):
            out[-1]["text"] += o["text"]
        else:
            out.append(o)
    for o in out:
        if o.get("output_type") == "stream":
            lines = [line.split("\r")[-1] for line in o["text"].split("\n")]
            o["text"] = "\n".join(line for line in lines if line.strip()) + "\n"
    return out


if __name__ == "__main__":
    build(sys.argv[1:])
