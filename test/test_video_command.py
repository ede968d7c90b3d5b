"""The video command and its streams as they meet the world: stopped by SIGTERM or SIGHUP,
a full disk (a file size limit: writes fail with EFBIG as they would with ENOSPC), stdout
full or closed, stderr closed, one-frame videos, folders of junk or of mixed sizes, long
videos that must be streamed; and the model pack fetched onto a full disk.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers import PACK, TESTDATA

from dense_head_pose.cli.common import json_safe as _json_safe
from dense_head_pose.video.writer import VideoWriter, find_ffmpeg

VIDEO = str(TESTDATA / "talking_head.mp4")
FFMPEG_OFF = {"DENSE_HEAD_POSE_FFMPEG": ""}  # forces OpenCV's writer


def cli(*args: str, env: dict | None = None, **kwargs) -> subprocess.CompletedProcess:
    kwargs.setdefault("stdout", subprocess.PIPE)
    kwargs.setdefault("stderr", subprocess.PIPE)
    return subprocess.run([sys.executable, "-m", "dense_head_pose", *args], text=True,
                          timeout=600, check=False, env={**os.environ, **(env or {})},
                          **kwargs)


def readable_frames(path: Path) -> int:
    capture = cv2.VideoCapture(str(path))
    count = 0
    while capture.read()[0]:
        count += 1
    capture.release()
    return count


def fourcc(path: Path) -> str:
    capture = cv2.VideoCapture(str(path))
    code = int(capture.get(cv2.CAP_PROP_FOURCC))
    capture.release()
    return code.to_bytes(4, "little").decode(errors="replace")


@pytest.fixture(scope="module")
def long_video(tmp_path_factory, video_frames) -> Path:
    """330 frames of 1280x720 (the test video forwards, backwards, ...)."""
    path = tmp_path_factory.mktemp("long") / "long.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, (1280, 720))
    n = len(video_frames)
    for i in range(330):
        k = i % n if (i // n) % 2 == 0 else n - 1 - i % n
        writer.write(video_frames[k])
    writer.release()
    return path


@pytest.fixture(scope="module")
def one_frame_video(tmp_path_factory, video_frames) -> Path:
    path = tmp_path_factory.mktemp("one") / "one.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, (1280, 720))
    writer.write(video_frames[0])
    writer.release()
    return path


def _signals_as(disposition) -> Callable[[], None]:
    def apply() -> None:  # in the child, whatever the test runner inherited (nohup ignores
        for signum in (signal.SIGTERM, signal.SIGHUP):  # SIGHUP)
            signal.signal(signum, disposition)
    return apply


def _stop_midway(args: list[str], signum: int, env: dict, after_lines: int = 20,
                 disposition=signal.SIG_DFL) -> tuple[int, list[str], str]:
    process = subprocess.Popen([sys.executable, "-m", "dense_head_pose", *args],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               env={**os.environ, **env}, preexec_fn=_signals_as(disposition))
    assert process.stdout is not None
    # the first lines straight from the pipe: a buffered readline() reads ahead, and
    # communicate() reads the descriptor, not that buffer, so the read-ahead would be lost
    # (a line whose head was lost once failed this test as "Extra data")
    head = b""
    while head.count(b"\n") < after_lines:
        chunk = os.read(process.stdout.fileno(), 1 << 16)
        if not chunk:
            break
        head += chunk
    process.send_signal(signum)
    out, err = process.communicate(timeout=120)
    return process.returncode, (head + out).decode().splitlines(), err.decode()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
@pytest.mark.parametrize("writer", ["ffmpeg", "opencv"])
def test_video_out_stopped_by_a_signal_is_playable(long_video, tmp_path, signum, writer):
    if writer == "ffmpeg" and find_ffmpeg() is None:
        pytest.skip("no ffmpeg (pip install imageio-ffmpeg)")
    out = tmp_path / "drawn.mp4"
    status, lines, err = _stop_midway(
        ["video", str(long_video), "--mode", "mesh", "--out", str(out), "--json"], signum,
        FFMPEG_OFF if writer == "opencv" else {})
    assert status == 128 + signum, err
    assert f"stopped by {signal.Signals(signum).name}" in err and "Traceback" not in err
    frames = [json.loads(line) for line in lines if line.strip()]
    assert 20 <= len(frames) < 330  # stopped midway
    # every frame drawn before the signal is in a file that plays
    assert readable_frames(out) >= len(frames) - 1
    assert fourcc(out).lower() in ({"h264", "avc1"} if writer == "ffmpeg" else {"fmp4", "mp4v"})


def test_a_signal_ignored_by_the_parent_stays_ignored(long_video, tmp_path) -> None:
    """Under ``nohup`` (SIGHUP ignored) a closed terminal does not stop the run."""
    out = tmp_path / "drawn.mp4"
    status, lines, err = _stop_midway(
        ["video", str(long_video), "--mode", "pose", "--out", str(out), "--json"],
        signal.SIGHUP, FFMPEG_OFF, disposition=signal.SIG_IGN)
    assert status == 0, err
    assert len([line for line in lines if line.strip()]) == 330
    assert readable_frames(out) == 330


def _file_size_limit(limit: int):
    def apply() -> None:  # in the child: writes past `limit` bytes fail (EFBIG)
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


@pytest.mark.parametrize("writer", ["ffmpeg", "opencv"])
def test_video_out_onto_a_full_disk_fails_clearly(long_video, tmp_path, writer) -> None:
    if writer == "ffmpeg" and find_ffmpeg() is None:
        pytest.skip("no ffmpeg (pip install imageio-ffmpeg)")
    out = tmp_path / "drawn.mp4"
    result = cli("video", str(long_video), "--out", str(out),
                 env=FFMPEG_OFF if writer == "opencv" else {},
                 preexec_fn=_file_size_limit(2 << 20))
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and "wrote" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("ERROR")]
    assert len(errors) == 1 and str(out) in errors[0], result.stderr


def test_models_fetch_onto_a_full_disk_fails_clearly(tmp_path) -> None:
    dest = tmp_path / "pack"
    result = cli("models", "fetch", "--from", str(PACK), "--dest", str(dest),
                 preexec_fn=_file_size_limit(1 << 20))
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and "cannot write" in result.stderr
    # nothing half-written that looks complete: only files that fit, each whole
    assert not list(dest.glob(".*.partial"))
    for path in dest.glob("*.tflite"):
        assert path.stat().st_size < 1 << 20


def test_json_into_a_full_or_closed_stdout(tmp_path) -> None:
    with open("/dev/full", "w") as full:
        result = cli("video", VIDEO, "--json", "--max-frames", "5", stdout=full)
    assert result.returncode == 2
    assert "No space left on device" in result.stderr and "Traceback" not in result.stderr
    closed = subprocess.run(
        f"{sys.executable} -m dense_head_pose video {VIDEO} --json >&-", shell=True,
        capture_output=False, stderr=subprocess.PIPE, text=True, check=False, timeout=120)
    assert closed.returncode == 2
    assert "standard output is closed" in closed.stderr and "Traceback" not in closed.stderr


def test_stderr_closed_still_loads_the_models() -> None:
    result = subprocess.run(
        f"{sys.executable} -m dense_head_pose image {TESTDATA / 'one_face.jpg'} --json 2>&-",
        shell=True, capture_output=True, text=True, check=False, timeout=120)
    assert result.returncode == 0
    assert len(json.loads(result.stdout)["faces"]) == 1


def test_a_one_frame_video(one_frame_video) -> None:
    result = cli("video", str(one_frame_video), "--json")
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 1
    assert len(json.loads(result.stdout)["faces"]) == 1
    bench = cli("benchmark", str(one_frame_video), "--json")
    assert bench.returncode == 0, bench.stderr
    assert json.loads(bench.stdout)["frames"] == 1
    # --frames beyond its length starts the video again
    bench = cli("benchmark", str(one_frame_video), "--frames", "3", "--json")
    assert json.loads(bench.stdout)["frames"] == 3


def test_folders_of_junk_are_errors(tmp_path) -> None:
    junk = tmp_path / "junk"
    junk.mkdir()
    for i in range(4):
        (junk / f"{i}.jpg").write_bytes(os.urandom(2000))
    for args in (["video", str(junk)], ["video", str(junk), "--json"],
                 ["benchmark", str(junk)],
                 ["stability", str(TESTDATA / "one_face.jpg"), "--video", str(junk), "--json"]):
        result = cli(*args)
        assert result.returncode == 2, (args, result.stderr)
        assert "none of its 4 image file(s) decodes" in result.stderr
        assert "Traceback" not in result.stderr and result.stdout == ""


def test_json_never_holds_nan() -> None:
    report = {"a": float("nan"), "b": [np.float64(1.5), np.int64(3), float("inf")],
              "c": {"d": np.float32(2.0)}}
    text = json.dumps(_json_safe(report), allow_nan=False)
    assert json.loads(text) == {"a": None, "b": [1.5, 3, None], "c": {"d": 2.0}}


def test_frames_of_other_sizes_are_letterboxed_not_dropped(tmp_path, one_face) -> None:
    folder = tmp_path / "mixed"
    folder.mkdir()
    sizes = [(413, 551), (640, 480), (300, 600), (1000, 400), (413, 551)]
    for i, (w, h) in enumerate(sizes):
        cv2.imwrite(str(folder / f"{i}.png"), cv2.resize(one_face, (w, h)))
    out = tmp_path / "mixed.mp4"
    result = cli("video", str(folder), "--out", str(out), "--json")
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 5
    assert "letterboxed" in result.stderr
    assert readable_frames(out) == 5


def test_writer_letterbox_keeps_the_aspect(tmp_path) -> None:
    with VideoWriter(tmp_path / "v.mp4", 10.0, ffmpeg="") as writer:
        writer.write(np.full((100, 200, 3), 50, np.uint8))
        writer.write(np.full((100, 100, 3), 200, np.uint8))  # square into 200x100
    capture = cv2.VideoCapture(str(tmp_path / "v.mp4"))
    capture.read()
    ok, second = capture.read()
    assert ok and second.shape == (100, 200, 3)
    assert second[:, :40].mean() < 20 and second[:, 60:140].mean() > 150  # bars, picture


def _peak_rss_mb(result_args: list[str]) -> float:
    code = ("import resource, sys, runpy; sys.argv = ['dense-head-pose', *sys.argv[1:]]\n"
            "from dense_head_pose.cli import main\n"
            "status = main()\n"
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n"
            "sys.exit(status)")
    result = subprocess.run([sys.executable, "-c", code, *result_args], capture_output=True,
                            text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stderr
    return int(result.stderr.strip().splitlines()[-1]) / 1024


def test_benchmark_and_stability_stream_the_video(long_video) -> None:
    """Peak memory does not grow with the video's length (it did by 2.7 MB a frame)."""
    short = _peak_rss_mb(["benchmark", VIDEO, "--frames", "5"])
    long = _peak_rss_mb(["benchmark", str(long_video), "--frames", "5"])
    assert long < short + 60, (short, long)
    stills = [str(TESTDATA / "one_face.jpg"), "--still-frames", "10", "--moving-frames", "20"]
    short = _peak_rss_mb(["stability", *stills, "--video", VIDEO, "--json"])
    long = _peak_rss_mb(["stability", *stills, "--video", str(long_video), "--json"])
    assert long < short + 60, (short, long)


def test_intrinsics_in_exponent_form_are_numbers() -> None:
    result = cli("image", str(TESTDATA / "one_face.jpg"), "--intrinsics", "1000", "1000",
                 "640", "-1e30")
    assert result.returncode == 2
    assert "cannot be a camera" in result.stderr  # the value was read, then refused
    assert "expected 4 argument" not in result.stderr
