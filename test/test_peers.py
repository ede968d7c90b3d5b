"""The peer comparison runs where the peers are installed (``pip install .[peers]``)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MISSING = [m for m in ("mediapipe", "dlib", "face_recognition_models")
           if importlib.util.find_spec(m) is None]


@pytest.mark.skipif(bool(MISSING), reason=f"peers not installed ({', '.join(MISSING)}): "
                    "pip install .[peers] to run scripts/benchmark_peers.py and this test")
def test_peer_benchmark_measures_every_system() -> None:
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "benchmark_peers.py"),
                           "--repeat", "1", "--json"], capture_output=True, text=True,
                          timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert len(report) >= 6
    for name, entry in report.items():
        assert entry["median_ms"] > 0 and entry["missed"] == 0, name
        assert 0 < entry["jitter_pct"] < 10, name


def test_similarity_residual_ignores_head_motion() -> None:
    import numpy as np

    from dense_head_pose.evaluation.jitter import similarity_residual

    rng = np.random.default_rng(0)
    a = rng.normal(size=(68, 2)) * 50
    angle = 0.3
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    b = 1.2 * a @ rot.T + [10.0, -4.0]  # moved, turned and scaled: no jitter
    assert similarity_residual(a, b) < 1e-9
    assert similarity_residual(a, b + rng.normal(size=b.shape)) > 0.5
