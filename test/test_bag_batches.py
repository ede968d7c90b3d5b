"""``dense-head-pose bag`` over many recordings and onto real disks: a bad bag among good
ones, stop signals with ``--jobs``, a disk that fills up, cameras of the same name, inputs
that are not bags at all. Real rosbag2 files, real processes."""

from __future__ import annotations

import csv
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from bag_files import PERIOD_NS, T0_NS, read_bag, write_camera_bag
from helpers import PACK, cli

from dense_head_pose.dataset.planning import unique_names
from dense_head_pose.interfaces.face_ids import FaceIds
from dense_head_pose.lifetime import stop_signals_held
from dense_head_pose.recordings.bag_frames import (
    MAX_PENDING_BYTES,
    MAX_PENDING_FRAMES,
    BagCamera,
    camera_prefixes,
)
from dense_head_pose.recordings.rows import CSV_COLUMNS, csv_stamp
from dense_head_pose.recordings.summary import BagOptions
from dhp_test_support.processes import default_signals


@pytest.fixture(scope="module")
def bags(tmp_path_factory, tiny) -> dict[str, Path]:
    """A good recording, one cut to its 8-byte magic with metadata.yaml kept, a yuv422
    recording, an sqlite3 recording cut near its end with metadata.yaml kept, a FIFO named
    like a bag, /dev/zero."""
    root = tmp_path_factory.mktemp("bags")
    good = write_camera_bag(root / "good", tiny[:12])
    magic = write_camera_bag(root / "magic", tiny[:4])
    storage = magic / "magic.mcap"
    storage.write_bytes(storage.read_bytes()[:8])
    yuv = root / "yuv"
    _yuv422_bag(yuv, 6)
    cut = write_camera_bag(root / "cut", tiny[:20], storage="sqlite3")
    db = cut / "cut.db3"
    with db.open("r+b") as f:
        f.truncate(int(db.stat().st_size * 0.93))
    fifo = root / "x.mcap"
    os.mkfifo(fifo)
    return {"good": good, "magic": magic, "yuv": yuv, "cut": cut, "fifo": fifo,
            "zero": Path("/dev/zero")}


def _yuv422_bag(path: Path, n: int) -> None:
    """A recording whose images are yuv422 (UYVY), an encoding the node takes."""
    from rosbags.rosbag2 import Writer

    from dense_head_pose.recordings.bag_types import typestore

    store, _ = typestore()
    types = store.types
    writer = Writer(path, version=9)
    writer.open()
    conn = writer.add_connection("/camera/image_raw", "sensor_msgs/msg/Image", typestore=store)
    rng = np.random.default_rng(0)
    for i in range(n):
        stamp = T0_NS + i * PERIOD_NS
        header = types["std_msgs/msg/Header"](
            stamp=types["builtin_interfaces/msg/Time"](sec=stamp // 10**9,
                                                       nanosec=stamp % 10**9),
            frame_id="camera_optical")
        msg = types["sensor_msgs/msg/Image"](
            header=header, height=48, width=64, encoding="yuv422", is_bigendian=0, step=128,
            data=rng.integers(0, 255, 48 * 128, dtype=np.uint8))
        writer.write(conn, stamp, store.serialize_cdr(msg, "sensor_msgs/msg/Image"))
    writer.close()


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_one_bad_bag_does_not_stop_or_taint_a_batch(tmp_path, bags, jobs) -> None:
    """Good bags among bad ones: every good one is processed and summarised, each bad one
    is named with its reason, the exit status says some failed; no traceback."""
    order = ["good", "magic", "yuv", "fifo", "zero", "cut"]
    proc = cli("bag", *[bags[k] for k in order], "--csv", tmp_path / "csv", "--jobs", jobs,
               "--json", "--models", PACK)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    import json

    records = {Path(r["path"]).name: r for r in map(json.loads, proc.stdout.splitlines())}
    assert set(records) == {"good", "magic", "yuv", "x.mcap", "zero", "cut"}
    assert records["good"]["frames_processed"] == 12 and not records["good"]["failed"]
    assert records["yuv"]["frames_read"] == 6 and not records["yuv"]["failed"]
    assert records["cut"]["frames_processed"] >= 10 and records["cut"]["problems"]
    for bad in ("magic", "x.mcap", "zero"):
        assert records[bad]["failed"], records[bad]
    assert "FIFO" in records["x.mcap"]["error"] and "device" in records["zero"]["error"]
    rows = list(csv.DictReader((tmp_path / "csv" / "good.csv").open()))
    assert len(rows) == 12
    assert "3 failed" in proc.stderr


def _long_jpeg_bag(path: Path, frames: list[np.ndarray], n: int) -> Path:
    """``n`` frames of JPEG: enough work that a signal sent once the first rows are written
    lands long before the end, however fast or busy the machine."""
    return write_camera_bag(path, [frames[i % len(frames)] for i in range(n)], jpeg=True)


def _wait_for_rows(tables: list[Path], rows: int, proc: subprocess.Popen,
                   deadline: float = 300) -> None:
    end = time.monotonic() + deadline
    while not all(t.exists() and t.read_text().count("\n") > rows for t in tables):
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < end, "no rows written"
        time.sleep(0.05)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_run_leaves_a_valid_shorter_bag(tmp_path, tiny, sig) -> None:
    """Ctrl-C or SIGTERM in the middle: exit 130/143, and the output bag and CSV hold every
    frame processed so far, readable, the bag with its metadata. The recording is long
    enough that the signal lands by construction, on an idle or a busy machine."""
    recording = _long_jpeg_bag(tmp_path / "rec", tiny, 4000)
    out, table = tmp_path / "out", tmp_path / "poses.csv"
    proc = subprocess.Popen(
        [sys.executable, "-m", "dense_head_pose", "bag", str(recording), "--out", str(out),
         "--csv", str(table), "--models", str(PACK)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        preexec_fn=default_signals)
    _wait_for_rows([table], 20, proc)
    proc.send_signal(sig)
    assert proc.wait(timeout=120) == 128 + sig
    err = proc.stderr.read()
    assert "interrupted" in err and "Traceback" not in err, err
    poses = read_bag(out).get("/head_pose", [])
    rows = list(csv.DictReader(table.open()))
    assert 20 <= len(poses) < 4000
    assert len(rows) == len(poses)  # whole rows only, one per frame with a face
    assert (out / "metadata.yaml").exists()


def test_a_stop_signal_waits_for_the_frame_being_written() -> None:
    """A frame's outputs go out in several writes (bag messages, then its CSV rows): a
    signal between two of them is acted on once the frame is whole, never in between."""
    written = []

    def stop(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    # Python's own Ctrl-C handler, whatever this process inherited (a background job's
    # SIGINT is ignored, and Python then installs none)
    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        # raise_signal: delivered to this thread now (os.kill may reach another thread of
        # the process, and this one hears of it only later)
        with pytest.raises(KeyboardInterrupt), stop_signals_held():
            written.append("bag")
            signal.raise_signal(signal.SIGTERM)
            time.sleep(0.05)  # Python runs handlers between bytecodes: it would be here
            written.append("csv")
        assert written == ["bag", "csv"]
        assert signal.getsignal(signal.SIGTERM) is stop  # the handler is back
        # Ctrl-C's default handler too
        with pytest.raises(KeyboardInterrupt), stop_signals_held():
            signal.raise_signal(signal.SIGINT)
            time.sleep(0.05)
            written.append("rows")
        assert written[-1] == "rows"
    finally:
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, previous_int)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_stop_signal_to_the_main_process_stops_every_job(tmp_path, tiny, sig) -> None:
    """`kill PID` (SIGTERM) or SIGINT to the main process only, as `docker stop` or
    systemd's mixed kill mode send it: the workers stop too, each closing its outputs as a
    single process does, and the bags not started are not started."""
    recordings = [_long_jpeg_bag(tmp_path / f"rec{i}", tiny, 4000) for i in range(3)]
    out, tables = tmp_path / "out", tmp_path / "csv"
    proc = subprocess.Popen(
        [sys.executable, "-m", "dense_head_pose", "bag", *map(str, recordings), "--out",
         str(out), "--csv", str(tables), "--jobs", "2", "--models", str(PACK)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, preexec_fn=default_signals,
        start_new_session=True)  # a signal to the group would reach the workers directly
    _wait_for_rows([tables / "rec0.csv", tables / "rec1.csv"], 20, proc)
    started = time.monotonic()
    os.kill(proc.pid, sig)
    assert proc.wait(timeout=120) == 128 + sig
    assert time.monotonic() - started < 60
    err = proc.stderr.read()
    assert "Traceback" not in err, err
    for name in ("rec0", "rec1"):
        assert (out / name / "metadata.yaml").exists()
        poses = read_bag(out / name).get("/head_pose", [])
        assert 20 <= len(poses) < 4000
    assert not (out / "rec2").exists()
    end = time.monotonic() + 30  # no worker left behind (the last ones exit as we return)
    while _group_alive(proc.pid):
        assert time.monotonic() < end, subprocess.run(
            ["ps", "-o", "pid,args", "-g", str(proc.pid)], capture_output=True,
            text=True).stdout
        time.sleep(0.1)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_disk_that_fills_up_stops_the_run_with_whole_outputs(tmp_path, tiny) -> None:
    """Outputs onto a real small file system (a tmpfs in a mount namespace): exit 2 with
    one line, the bag closed and readable (metadata.yaml, index) up to its last message,
    the CSV of whole rows, one per frame with a face. It was two ENOSPC tracebacks, a bag
    without metadata or footer and a row cut in the middle."""
    if shutil.which("unshare") is None:
        pytest.skip("no unshare")
    recording = _long_jpeg_bag(tmp_path / "rec", tiny, 1500)
    mnt, kept = tmp_path / "mnt", tmp_path / "kept"
    mnt.mkdir()
    kept.mkdir()
    script = (
        f'mount -t tmpfs -o size=12m tmpfs "{mnt}" || exit 99; '
        f'head -c 7340032 /dev/zero > "{mnt}/filler"; '
        f'"$0" -m dense_head_pose bag "{recording}" --out "{mnt}/out" --csv "{mnt}/poses.csv" '
        f'--models "{PACK}"; echo $? > "{kept}/status"; cp -a "{mnt}/out" "{mnt}/poses.csv" '
        f'"{kept}/"')
    proc = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "sh", "-c",
                           script, sys.executable], capture_output=True, text=True,
                          timeout=600, check=False)
    if proc.returncode == 99:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()[:200]}")
    assert (kept / "status").read_text().strip() == "2", proc.stderr
    assert "disk" in proc.stderr and "full" in proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    messages = read_bag(kept / "out")  # rosbags opens it: metadata and summary are there
    poses = messages.get("/head_pose", [])
    rows = list(csv.reader((kept / "poses.csv").open()))
    assert 50 < len(poses) < 1500
    assert all(len(row) == len(CSV_COLUMNS) for row in rows)
    assert len(rows) - 1 == len(poses)


def test_cameras_of_the_same_name_get_different_face_ids(tmp_path, tiny) -> None:
    """/x/front/image_raw and /y/front/image_raw: ids, CSV rows, TF frames and the merged
    tracked list keep the two cameras' faces apart."""
    recording = write_camera_bag(tmp_path / "rec", tiny[:10], cameras=("/x/front", "/y/front"))
    out, table = tmp_path / "out", tmp_path / "poses.csv"
    proc = cli("bag", recording, "--out", out, "--csv", table, "--deterministic-ids",
               "--models", PACK)
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.DictReader(table.open()))
    ids = {row["camera"]: {r["id"] for r in rows if r["camera"] == row["camera"]}
           for row in rows}
    assert set(ids) == {"/x/front/image_raw", "/y/front/image_raw"}
    assert not ids["/x/front/image_raw"] & ids["/y/front/image_raw"], ids
    messages = read_bag(out)
    frames = {t.child_frame_id for _, m in messages["/tf"] for t in m.transforms}
    assert {f for f in frames if f.startswith("face_")} == {
        f"face_{i}" for names in ids.values() for i in names}
    tracked = messages.get("/humans/faces/tracked")
    if tracked:  # hri_msgs' definitions installed
        assert max(len(m.ids) for _, m in tracked) == 2


def test_camera_prefixes_are_unique() -> None:
    assert camera_prefixes(["/x/front", "/y/front"]) == ["x_front_", "y_front_"]
    assert camera_prefixes(["/front", "/back"]) == ["front_", "back_"]
    assert len(set(camera_prefixes(["/a_b/c", "/a/b_c", "/a/b/c"]))) == 3
    assert camera_prefixes(["/1cam", "/2cam"], "robot_") == ["robot_1cam_", "robot_2cam_"]
    for prefix in camera_prefixes(["/" + "x" * 80, "/" + "x" * 81, "/9", ""]):
        assert FaceIds(prefix=prefix)(1).startswith(prefix) and len(prefix) <= 32


def test_frames_waiting_for_camera_info_are_bounded() -> None:
    """Frames held for the first CameraInfo: at most MAX_PENDING_FRAMES and
    MAX_PENDING_BYTES, whatever the rate (450 frames of 1080p in 0.5 s took 2.9 GB)."""

    class Msg:
        def __init__(self, size: int) -> None:
            self.data = b"\0" * size

    camera = BagCamera("/c/image_raw", "", FaceIds(), "", msgtype="sensor_msgs/msg/Image",
                       info_topic="/c/camera_info")
    held = 0
    while camera.hold(held * 1_000_000, Msg(1000)):  # 1000 Hz
        held += 1
    assert held + 1 == MAX_PENDING_FRAMES
    camera.release()
    big = MAX_PENDING_BYTES // 4 + 1
    held = 0
    while camera.hold(held, Msg(big)):
        held += 1
    assert held + 1 == 4


def test_stamps_before_the_epoch_are_written_exactly(tmp_path, tiny) -> None:
    assert csv_stamp(-4_500_000_000) == "-4.500000000"
    assert csv_stamp(1_500_000_001) == "1.500000001" and csv_stamp(0) == "0.000000000"
    stamps = [-5_000_000_000 + 500_000_000 + i * PERIOD_NS for i in range(3)]
    recording = write_camera_bag(tmp_path / "rec", tiny[:3], stamps=stamps)
    table = tmp_path / "poses.csv"
    assert cli("bag", recording, "--csv", table, "--models", PACK).returncode == 0
    assert [r["stamp"] for r in csv.DictReader(table.open())] == [
        "-4.500000000", "-4.460000000", "-4.420000000"]


def test_output_names_of_many_inputs_never_collide(tmp_path, tiny) -> None:
    """Two inputs named run1 in different folders both survive; `.` is named after the
    directory it is; a ROS 1 `x.bag` gives `x`."""
    a = write_camera_bag(tmp_path / "a" / "run1", tiny[:3])
    b = write_camera_bag(tmp_path / "b" / "run1", tiny[:3])
    assert unique_names([str(a), str(b)]) == ["a-run1", "b-run1"]
    assert unique_names([str(a), str(a)]) == ["run1", "run1-2"]
    assert unique_names(["/data/x.bag", "/data/y.mcap"]) == ["x", "y"]
    proc = cli("bag", ".", b, "--csv", tmp_path / "csv", "--models", PACK, cwd=a)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in (tmp_path / "csv").iterdir()  # and the hidden records
                  if not p.name.startswith(".")) == ["a-run1.csv",
                                                                    "b-run1.csv"]


def test_face_id_prefix_is_validated_as_the_node_does(tmp_path) -> None:
    proc = cli("bag", tmp_path, "--face-id-prefix", "/../ bad\n")
    assert proc.returncode == 2 and "--face-id-prefix" in proc.stderr
    assert "Traceback" not in proc.stderr
    with pytest.raises(ValueError, match="face-id-prefix"):
        BagOptions(face_id_prefix="9front")
