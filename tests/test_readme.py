"""The README's quick start runs as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def test_quick_start_runs(tmp_path, monkeypatch):
    text = README.read_text(encoding="utf-8")
    code = re.search(r"## Quick start\n\n```python\n(.*?)```", text, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(code, "README quick start", "exec"), namespace)
    gm, same = namespace["gm"], namespace["same"]
    assert gm.converged_
    assert sorted(gm.means_[:, 0].round()) == [0.0, 6.0]
    assert (same.means_ == gm.means_).all()
    assert (tmp_path / "model.npz").exists()
    for other in (namespace["from_file"], namespace["from_chunks"]):
        assert sorted(other.means_[:, 0].round()) == [0.0, 6.0]
        assert other.score(namespace["X"]) == pytest.approx(gm.score(namespace["X"]),
                                                            abs=1e-3)


def test_missing_values_examples_run(tmp_path, monkeypatch):
    pytest.importorskip("pyarrow")
    pytest.importorskip("dask.array")
    text = README.read_text(encoding="utf-8")
    section = text.split("## Missing values", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) == 2
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for i, code in enumerate(blocks):
        exec(compile(code, f"README missing values {i}", "exec"), namespace)
    gm, X = namespace["gm"], namespace["X"]
    assert sorted(gm.means_[:, 0].round()) == [0.0, 6.0]
    for other in (namespace["from_file"], namespace["on_dask"]):
        assert other.means_ == pytest.approx(gm.means_, rel=1e-9)
    assert namespace["lazy_filled"].compute() == pytest.approx(gm.impute(X), rel=1e-9)
