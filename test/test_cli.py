"""The dense-head-pose command as users run it: a real process, real files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers import TESTDATA, VIDEO, cli

FACE_KEYS = {"bbox", "score", "yaw", "pitch", "roll", "translation_m", "rotation_quat_xyzw",
             "landmarks", "params"}


def run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "dense_head_pose", *args],
                          capture_output=True, text=True, timeout=300, check=False)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def test_image_json(tmp_path: Path) -> None:
    out = tmp_path / "pose.jpg"
    proc = run("image", str(TESTDATA / "two_faces.jpg"), "--json", "--out", str(out))
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert record["frame"] == "two_faces.jpg"
    assert (record["width"], record["height"]) == (1536, 689)
    assert len(record["faces"]) == 2
    for face in record["faces"]:
        assert set(face) >= FACE_KEYS
        assert len(face["landmarks"]) == 68 and len(face["landmarks"][0]) == 3
        assert len(face["params"]) == 62 and len(face["bbox"]) == 4
        assert len(face["translation_m"]) == 3 and len(face["rotation_quat_xyzw"]) == 4
    drawn = cv2.imread(str(out))
    original = cv2.imread(str(TESTDATA / "two_faces.jpg"))
    assert drawn.shape == original.shape
    assert cv2.absdiff(drawn, original).mean() > 0.1  # something was drawn


@pytest.mark.parametrize("mode", ["sparse", "dense", "pose", "mesh"])
def test_image_modes_draw(tmp_path: Path, mode: str) -> None:
    out = tmp_path / f"{mode}.png"
    run("image", str(TESTDATA / "one_face.jpg"), "--mode", mode, "--out", str(out))
    assert cv2.imread(str(out)).shape == (551, 413, 3)


def test_video_json_lines_and_output(tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    proc = run("video", str(TESTDATA / "talking_head.mp4"), "--json", "--out", str(out),
               "--mode", "sparse")
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["frame"] for r in records] == list(range(55))
    assert all(len(r["faces"]) == 1 for r in records)
    assert {r["faces"][0]["id"] for r in records} == {1}  # tracked: one person, one id
    assert "frame/s" not in proc.stderr  # no progress bar when stderr is not a terminal
    capture = cv2.VideoCapture(str(out))
    count = 0
    while capture.read()[0]:
        count += 1
    assert count == 55


def test_video_max_frames() -> None:
    proc = run("video", str(TESTDATA / "talking_head.mp4"), "--json", "--max-frames", "3")
    assert len(proc.stdout.splitlines()) == 3


def test_benchmark_json() -> None:
    proc = run("benchmark", str(TESTDATA / "talking_head.mp4"), "--json", "--frames", "10",
               "--warmup", "1", "--render-mode", "sparse")
    summary = json.loads(proc.stdout)
    assert summary["frames"] == 10 and summary["threads"] == 1 and summary["fps"] > 0
    assert summary["dense_path"] in ("avx2+fma", "portable")  # the native product is built
    for stage in ("detect", "preprocess", "infer", "reconstruct_sparse", "reconstruct_dense",
                  "draw"):
        s = summary["stages"][stage]
        assert 0 < s["median_ms"] <= s["p95_ms"]


def test_benchmark_table() -> None:
    proc = run("benchmark", str(TESTDATA / "one_face.jpg"), "--frames", "5", "--warmup", "0",
               "--render-mode", "pose")
    assert "| stage" in proc.stdout and "| detect" in proc.stdout and "| draw" in proc.stdout


def test_missing_and_undecodable_inputs(tmp_path: Path) -> None:
    proc = run("video", str(tmp_path / "nope.mp4"), check=False)
    assert proc.returncode == 2 and "does not exist" in proc.stderr
    fake = tmp_path / "fake.mp4"
    fake.write_bytes(b"this is not a video" * 100)
    proc = run("video", str(fake), check=False)
    assert proc.returncode == 2 and "fake.mp4" in proc.stderr
    assert "Traceback" not in proc.stderr
    broken = tmp_path / "broken.jpg"
    broken.write_bytes((TESTDATA / "one_face.jpg").read_bytes()[:200])
    proc = run("image", str(broken), str(TESTDATA / "one_face.jpg"), "--json", check=False)
    assert proc.returncode == 1 and "broken.jpg" in proc.stderr
    assert len(proc.stdout.splitlines()) == 1  # the good image was still processed


def test_models_check(tmp_path: Path) -> None:
    proc = run("models", "check")
    assert "complete" in proc.stderr
    proc = run("models", "check", "--models", str(tmp_path), check=False)
    assert proc.returncode == 2 and "models build" in proc.stderr


def test_models_fetch_command(tmp_path: Path) -> None:
    from helpers import PACK

    proc = run("models", "fetch", "--from", str(PACK), "--dest", str(tmp_path / "p"))
    assert "model pack ready" in proc.stderr
    from dense_head_pose import model_pack

    wanted = {e.name for e in model_pack.load_manifest() if e.name.endswith(".tflite")}
    assert {p.name for p in (tmp_path / "p").glob("*.tflite")} == wanted


@pytest.mark.parametrize("value", ["7", "1.5", "0", "nan"])
def test_bad_options_exit_cleanly(value) -> None:
    """An option out of range is named by its flag, as the user wrote it (not by the API
    field behind it)."""
    proc = run("image", str(TESTDATA / "one_face.jpg"), "--threshold", value, check=False)
    assert proc.returncode == 2 and "--threshold" in proc.stderr
    assert "score_threshold" not in proc.stderr and "Traceback" not in proc.stderr


def test_video_tracking_options() -> None:
    """--no-smooth --detect-every 1 gives the per-image estimates; the default is steadier."""
    video = str(TESTDATA / "talking_head.mp4")
    per_image = [json.loads(line)["faces"][0] for line in run(
        "video", video, "--json", "--max-frames", "12", "--no-smooth", "--detect-every", "1"
    ).stdout.splitlines()]
    images = [json.loads(run("image", str(TESTDATA / "one_face.jpg"), "--json").stdout)]
    assert images[0]["faces"][0]["id"] is None  # image mode: no identities
    smoothed = [json.loads(line)["faces"][0] for line in run(
        "video", video, "--json", "--max-frames", "12", "--filter", "rotation=0.4,0.02,180"
    ).stdout.splitlines()]
    assert len(per_image) == len(smoothed) == 12

    def steps(faces):
        yaws = [f["yaw"] for f in faces]
        return float(np.abs(np.diff(yaws)).sum())

    assert steps(smoothed) < steps(per_image)
    bad = run("video", video, "--filter", "rotation=fast", check=False)
    assert bad.returncode == 2 and "rotation=fast" in bad.stderr
    bad = run("video", video, "--filter", "wobble=1,2,3", check=False)
    assert bad.returncode == 2 and "unknown quantity" in bad.stderr


def test_stability_command_prints_both_tables() -> None:
    proc = run("stability", str(TESTDATA / "one_face.jpg"), "--still-frames", "20",
               "--moving-frames", "30", "--clips", "still", "roll", "--json")
    report = json.loads(proc.stdout)
    face = report["faces"][0]
    assert face["image"] == "one_face.jpg"
    for mode in ("raw", "tracked"):
        assert face[mode]["still"]["found"] == 1.0
        assert face[mode]["roll"]["rotation_rms_deg"] > 0
        assert "yaw" not in face[mode]  # only the clips asked for
    assert face["tracked"]["still"]["yaw_std"] < face["raw"]["still"]["yaw_std"]


def test_video_progress_on_a_terminal() -> None:
    """With stderr on a terminal (and stdout piped to a file, as `--json > poses.jsonl`) the
    bar shows the frames done, never the container's wrong count (158 for 55 frames)."""
    import os
    import pty

    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "dense_head_pose", "video",
                             str(TESTDATA / "talking_head.mp4"), "--json"],
                            stdout=subprocess.PIPE, stderr=slave, text=True)
    os.close(slave)
    stdout, _ = proc.communicate(timeout=300)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # the terminal closed with the process
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    terminal = b"".join(chunks).decode(errors="replace")
    assert proc.returncode == 0
    assert len(stdout.splitlines()) == 55
    # the last refresh shows "55frame" or, once the count is known at the end, "55/55"; a
    # total of 158 would show as "/158" (a rate of 158 frame/s is no failure)
    squeezed = terminal.replace(" ", "")
    assert ("55frame" in squeezed or "55/55" in squeezed) and "/158" not in squeezed, terminal


def test_a_guessed_focal_length_is_said(tmp_path) -> None:
    """Without --intrinsics the translation is metric only up to a guessed focal length:
    each JSON frame says so, and so does one line on stderr; with them, neither."""
    image = TESTDATA / "one_face.jpg"
    guessed = cli("image", image, image, "--json")
    assert guessed.returncode == 0, guessed.stderr
    frames = [json.loads(line) for line in guessed.stdout.splitlines()]
    assert {f["intrinsics"] for f in frames} == {"guessed: f = image width, centred"}
    assert guessed.stderr.count("no --intrinsics") == 1
    given = cli("video", VIDEO, "--max-frames", "2", "--json", "--intrinsics", "900", "900",
                "640", "360")
    assert given.returncode == 0, given.stderr
    assert {json.loads(line)["intrinsics"] for line in given.stdout.splitlines()} == {"given"}
    assert "no --intrinsics" not in given.stderr
