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


def _peak_rss_mb(*args: str) -> int:
    # VmHWM, the peak of this process's own memory: getrusage's ru_maxrss keeps the peak
    # across exec, so a child of a large test runner would report the runner's size
    code = ("import sys\n"
            "from dense_head_pose.cli import main\n"
            "status = main(sys.argv[1:])\n"
            "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM:')][0]\n"
            "print(int(hwm.split()[1]) // 1024)\n"
            "sys.exit(status)\n")
    proc = subprocess.run([sys.executable, "-c", code, "stability", *args, "--json"],
                          capture_output=True, text=True, timeout=1800, check=False)
    assert proc.returncode == 0, proc.stderr
    return int(proc.stdout.strip().splitlines()[-1])


def test_clips_of_large_frames_are_streamed() -> None:
    """A face 1000 px wide in one_face.jpg makes 2000x2700 frames (16 MB each). Clips of 30
    and of 110 frames take about the same memory: frames are made one at a time (held,
    the 80 frames more would take 1.3 GB more)."""
    image = str(TESTDATA / "one_face.jpg")
    short = _peak_rss_mb(image, "--face-sizes", "1000", "--still-frames", "10",
                         "--moving-frames", "20", "--clips", "still", "roll")
    long = _peak_rss_mb(image, "--face-sizes", "1000", "--still-frames", "50",
                        "--moving-frames", "60", "--clips", "still", "roll")
    assert long < short + 400, (short, long)
