"""A build from the sdist: what `pip install dense_head_pose-*.tar.gz` needs is in it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_sdist_builds_and_installs_both_native_libraries(tmp_path: Path) -> None:
    src = tmp_path / "src"
    shutil.copytree(REPO, src, ignore=shutil.ignore_patterns(
        ".git", ".colcon", "build", "*.egg-info", "*.so", "__pycache__", "*.tflite", "*.npz",
        "out"))
    sdist = subprocess.run([sys.executable, "setup.py", "-q", "sdist", "-d", str(tmp_path)],
                           cwd=src, capture_output=True, text=True, check=False)
    assert sdist.returncode == 0, sdist.stderr[-2000:]
    archive = next(tmp_path.glob("dense_head_pose-*.tar.gz"))
    target = tmp_path / "site"
    install = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                              "--no-build-isolation", "--target", str(target), str(archive)],
                             capture_output=True, text=True, check=False)
    assert install.returncode == 0, install.stderr[-2000:]
    package = target / "dense_head_pose"
    assert (package / "manifest.json").is_file()
    # dense-head-pose bag writes FaceArray with these (no ROS install needed)
    assert sorted(p.name for p in (package / "msg_definitions").iterdir()) == \
        ["Face.msg", "FaceArray.msg"]
    check = subprocess.run(
        [sys.executable, "-c", "from dense_head_pose.pipeline import dense_product, render\n"
         "print(dense_product.__file__)\n"
         "dense_product.load_library(); render.load_library(); print('loaded')"],
        capture_output=True, text=True, check=False, cwd=tmp_path,
        env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"})
    assert check.returncode == 0, check.stderr[-2000:]
    assert check.stdout.split() == [str(package / "pipeline" / "dense_product.py"), "loaded"]
