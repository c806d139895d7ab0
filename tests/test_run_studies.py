"""reproduce/run_studies.py --quick: every study's code path once, so the scripts cannot rot."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_quick_studies_write_every_section(tiny_reasoner, tmp_path):
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
