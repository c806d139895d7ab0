"""reproduce/run_studies.py --quick: every study's code path once, so the scripts cannot rot."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_quick_studies_write_every_section(tiny_reasoner, tmp_path, capsys):
    sys.path.insert(0, str(ROOT / "reproduce"))
    import run_studies

    assert run_studies.main(["--quick", "--seeds", "0", "--out", str(tmp_path)]) == 0
    text = (tmp_path / "RESULTS.md").read_text()
    assert "Quick mode" in text
    for title in ("Plateau study", "Search strategy", "Algorithm evolution",
                  "Which wrong path", "Caching over rounds", "Throughput"):
        assert f"## {title}" in text, title
    assert "python reproduce/run_studies.py --only plateau --seeds 0 --quick" in text
    assert (tmp_path / "plateau.png").stat().st_size > 0
    assert "vanilla DeepSearch" in text and "least confident" in text
    # the default rows of Tables 4 and 5 are the plateau's DeepSearch run, trained once
    runs = tmp_path / "runs"
    assert (runs / "plateau" / "deepsearch-s0" / "config.json").exists()
    assert not (runs / "evolution" / "_frontier_selection_default-s0").exists()
    assert not (runs / "negatives" / "most_confident-s0").exists()
    assert (runs / "negatives" / "random-s0" / "config.json").exists()
    assert "same config as plateau/deepsearch-s0, reused" in capsys.readouterr().out


def test_rows_trains_a_share_of_a_study(tiny_reasoner, tmp_path):
    sys.path.insert(0, str(ROOT / "reproduce"))
    import run_studies

    try:
        assert run_studies.main(["--quick", "--only", "negatives", "--rows", "1",
                                 "--seeds", "0", "--out", str(tmp_path)]) == 0
    finally:
        run_studies.RUNS["rows"] = []
    text = (tmp_path / "sections" / "04_negatives.md").read_text()
    assert "| random |" in text and "least confident" not in text
    assert not (tmp_path / "runs" / "negatives" / "least_confident-s0").exists()
    try:
        with pytest.raises(SystemExit, match="has rows 0..2"):
            run_studies.main(["--quick", "--only", "negatives", "--rows", "3",
                              "--out", str(tmp_path)])
    finally:
        run_studies.RUNS["rows"] = []


def test_setups_pin_what_results_md_was_measured_on():
    """`--setup first` (the default) is the tiny preset and build until 2026-11-24, so the
    commands in RESULTS.md still reproduce it; `--setup preset` follows today's preset."""
    import dataclasses

    from dslib import tiny
    from dslib.config import update
    from dslib.presets import preset

    sys.path.insert(0, str(ROOT / "reproduce"))
    import run_studies

    try:
        run_studies.RUNS["setup"] = "first"
        first = run_studies.base_config(False)
        assert (first.task.levels, first.run.steps, first.eval.every) == ((3, 4, 5), 150, 75)
        assert first.task.tiny_build == run_studies.FIRST_BUILD
        built = tiny.override(tiny.default_config(), list(first.task.tiny_build))
        assert built == dataclasses.replace(tiny.default_config(), sft_mix=(0.45, 0.35, 0.2))
        assert update(first, {"task.levels": (4, 5), "run.steps": 300, "eval.every": 150,
                              "task.tiny_build": ()}) == preset("tiny")
        assert run_studies.base_config(True).task.tiny_build == ()  # quick: the cached default
        run_studies.RUNS["setup"] = "preset"
        assert run_studies.base_config(False) == preset("tiny")
    finally:
        run_studies.RUNS["setup"] = "first"
