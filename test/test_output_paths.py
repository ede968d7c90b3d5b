"""Outputs of every command: never over an input, checked before the work, written where
they were checked. Real processes on real files."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import cv2
import pytest
from bag_files import write_camera_bag
from helpers import PACK, TESTDATA, VIDEO, cli, cli_with_read_only


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture()
def clip(tmp_path: Path) -> Path:
    """A copy of the test video, and a symlink to it beside it."""
    copy = tmp_path / "clip.mp4"
    shutil.copy(VIDEO, copy)
    (tmp_path / "link.mp4").symlink_to(copy)
    return copy


@pytest.mark.parametrize("out", ["clip.mp4", "link.mp4", "./clip.mp4", "hard.mp4"])
def test_video_never_writes_over_its_input(tmp_path, clip, out) -> None:
    """`video clip.mp4 --out clip.mp4` (or through a symlink or a hard link to it) is
    refused before any frame is read; the input keeps its 55 frames."""
    os.link(clip, tmp_path / "hard.mp4")
    before = _digest(clip)
    proc = cli("video", "clip.mp4", "--out", out, "--max-frames", "4", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "never written over" in proc.stderr and "Traceback" not in proc.stderr
    assert _digest(clip) == before


def test_video_out_into_a_directory(tmp_path, clip) -> None:
    """`--out DIR/` (or an existing directory) writes DIR/<input>_<mode>.mp4, as the README
    says; the input's own directory is refused only when the name would be the input."""
    proc = cli("video", str(clip), "--out", str(tmp_path / "drawn") + "/", "--max-frames",
               "3", "--mode", "sparse")
    assert proc.returncode == 0, proc.stderr
    drawn = tmp_path / "drawn" / "clip_sparse.mp4"
    capture = cv2.VideoCapture(str(drawn))
    assert capture.read()[0]
    capture.release()
    proc = cli("video", str(clip), "--out", str(tmp_path), "--max-frames", "3")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "clip_pose.mp4").is_file()


def test_an_output_inside_an_input_folder_is_refused(tmp_path) -> None:
    """A folder of images is the input: the drawn video may not go into it."""
    folder = tmp_path / "frames"
    folder.mkdir()
    shutil.copy(TESTDATA / "one_face.jpg", folder / "a.jpg")
    proc = cli("video", str(folder), "--out", str(folder / "drawn.mp4"))
    assert proc.returncode == 2 and "inside the input" in proc.stderr
    assert sorted(p.name for p in folder.iterdir()) == ["a.jpg"]


@pytest.fixture(scope="module")
def recording(tmp_path_factory, video_frames) -> Path:
    small = [cv2.resize(f, (320, 180), interpolation=cv2.INTER_AREA) for f in video_frames[:6]]
    return write_camera_bag(tmp_path_factory.mktemp("bags") / "rec", small)


def test_plot_without_an_extension_is_written_as_png_and_checked_so(tmp_path,
                                                                    recording) -> None:
    """`--plot NAME` writes NAME.png; an existing NAME.png is refused before the work (it
    was overwritten, the check having looked at NAME)."""
    precious = tmp_path / "poses.png"
    precious.write_bytes(b"precious")
    proc = cli("bag", recording, "--plot", tmp_path / "poses", "--models", PACK)
    assert proc.returncode == 2 and "poses.png exists" in proc.stderr, proc.stderr
    assert precious.read_bytes() == b"precious"
    proc = cli("bag", recording, "--plot", tmp_path / "fresh", "--models", PACK)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "fresh.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("case", ["under_a_file", "bad_type", "is_dir"])
def test_plot_and_csv_are_checked_before_the_work(tmp_path, recording, case) -> None:
    """A plot or CSV that cannot be written is one line and exit 2 before any frame is
    processed (it was a matplotlib traceback after the whole bag)."""
    (tmp_path / "afile").write_text("")
    target = {"under_a_file": tmp_path / "afile" / "p.png", "bad_type": tmp_path / "p.xyz",
              "is_dir": tmp_path}[case]
    for flag in ("--plot", "--csv"):
        if flag == "--csv" and case == "bad_type":
            continue
        proc = cli("bag", recording, flag, target, "--models", PACK)
        assert proc.returncode == 2, proc.stderr
        assert "Traceback" not in proc.stderr and "frame(s) read" not in proc.stderr
        assert flag in proc.stderr


def test_plot_onto_a_read_only_mount(tmp_path, recording) -> None:
    """A read-only file system (not only a read-only directory) is found before the work."""
    target = tmp_path / "ro"
    target.mkdir()
    proc = cli_with_read_only(target, "bag", recording, "--plot", target / "p.png",
                              "--models", PACK)
    if proc is None:
        pytest.skip("no mount namespaces here")
    assert proc.returncode == 2 and "--plot" in proc.stderr and "Read-only" in proc.stderr, \
        proc.stderr
    assert "Traceback" not in proc.stderr and "frame(s) read" not in proc.stderr


def test_bag_outputs_never_over_or_inside_an_input(tmp_path, recording) -> None:
    for flag, target in (("--csv", recording / "metadata.yaml"), ("--out", recording / "x"),
                         ("--plot", recording / "p.png")):
        before = sorted(p.name for p in recording.iterdir())
        proc = cli("bag", recording, flag, target, "--models", PACK)
        assert proc.returncode == 2, proc.stderr
        assert sorted(p.name for p in recording.iterdir()) == before


def test_evaluate_plot_is_checked_first_and_written_after_the_table(tmp_path) -> None:
    """evaluate --plot: a bad plot path is refused before the evaluation; NAME without an
    extension is NAME.png."""
    data = tmp_path / "AFLW2000"
    data.mkdir()
    for name in ("image00002.jpg", "image00002.mat"):
        shutil.copy(TESTDATA.parent / "benchmarks" / "AFLW2000" / name, data / name)
    proc = cli("evaluate", "aflw2000", data, "--plot", tmp_path / "x.xyz", "--models", PACK)
    assert proc.returncode == 2 and "--plot" in proc.stderr and "NME" not in proc.stdout
    proc = cli("evaluate", "aflw2000", data, "--plot", tmp_path / "errors", "--models", PACK,
               "--protocol", "detector")
    assert proc.returncode == 0, proc.stderr
    assert "NME" in proc.stdout and (tmp_path / "errors.png").is_file()
    proc = cli("evaluate", "aflw2000", data, "--plot", data / "p.png", "--models", PACK)
    assert proc.returncode == 2 and "inside the input" in proc.stderr


def test_record_never_writes_over_its_input(tmp_path, clip) -> None:
    proc = cli("record", clip, clip)
    assert proc.returncode == 2 and "never written over" in proc.stderr
    proc = cli("record", clip, tmp_path / "rec", "--max-frames", "3")
    assert proc.returncode == 0, proc.stderr
    proc = cli("record", clip, tmp_path / "rec")
    assert proc.returncode == 2 and "exists" in proc.stderr


def test_output_folders_are_made_by_one_rule(tmp_path, recording) -> None:
    """A missing output folder is made, before any work, by every command and form: one
    input or many, a file or a folder of outputs."""
    image = TESTDATA / "one_face.jpg"
    made = cli("image", image, "--out", tmp_path / "a" / "b" / "drawn.jpg", "--models", PACK)
    assert made.returncode == 0, made.stderr
    assert (tmp_path / "a" / "b" / "drawn.jpg").is_file()
    bag = cli("bag", recording, "--csv", tmp_path / "c" / "x.csv", "--plot",
              tmp_path / "d" / "x.png", "--models", PACK)
    assert bag.returncode == 0, bag.stderr
    assert (tmp_path / "c" / "x.csv").is_file() and (tmp_path / "d" / "x.png").is_file()
    video = cli("video", TESTDATA / "talking_head.mp4", "--max-frames", "3", "--out",
                tmp_path / "e" / "v.mp4", "--models", PACK)
    assert video.returncode == 0, video.stderr
    assert (tmp_path / "e" / "v.mp4").is_file()


def test_options_that_cannot_work_are_refused_before_the_work(tmp_path) -> None:
    """A distance-protocol face larger than its canvas (it missed every image and reported a
    pose error over "5 images"), an empty Ray address (it ran locally)."""
    aflw = TESTDATA.parent / "benchmarks" / "AFLW2000"
    proc = cli("evaluate", "aflw2000", aflw, "--face-size", "800", "--canvas", "640x480")
    assert proc.returncode == 2 and "do not fit" in proc.stderr, proc.stderr
    assert "NME" not in proc.stdout and "Traceback" not in proc.stderr
    proc = cli("bag", tmp_path, "--ray", "", "--csv", tmp_path / "out")
    assert proc.returncode == 2 and "--ray" in proc.stderr and "Traceback" not in proc.stderr
