"""``dense-head-pose stability``: its synthetic clips are made frame by frame, never held,
and sizes beyond what an image may be are refused before any work."""

from __future__ import annotations

import subprocess
import sys

from helpers import TESTDATA, cli


def test_an_absurd_face_size_is_refused_at_once() -> None:
    """A face 4000 px wide would make a 30000-pixel-wide frame: refused with one line (it
    reached 12.7 GB and was still growing)."""
    proc = cli("stability", TESTDATA / "one_face.jpg", "--face-sizes", "4000",
               "--still-frames", "10", "--moving-frames", "20", timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "--face-sizes" in proc.stderr and "Mpixel" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_clips_of_large_frames_are_streamed() -> None:
    """A face 1000 px wide in one_face.jpg makes 2000x2700 frames (16 MB each): the clips'
    60 frames held would take about 1 GB; made one at a time, the process stays far below."""
    code = ("import resource, sys\n"
            "from dense_head_pose.cli import main\n"
            "status = main(sys.argv[1:])\n"
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)\n"
            "sys.exit(status)\n")
    proc = subprocess.run([sys.executable, "-c", code, "stability",
                           str(TESTDATA / "one_face.jpg"), "--face-sizes", "1000",
                           "--still-frames", "30", "--moving-frames", "30", "--json"],
                          capture_output=True, text=True, timeout=900, check=False)
    assert proc.returncode == 0, proc.stderr
    peak_mb = int(proc.stdout.strip().splitlines()[-1])
    assert peak_mb < 600, peak_mb
