"""A dataset of recordings on a real two-node Ray cluster on loopback (``-m cluster``).

The cluster is two ``ray start`` processes (a head and a worker node, one CPU each), each
in its own session and stopped by signalling exactly those sessions' processes
(:class:`~dhp_test_support.cluster.LoopbackCluster`). The dataset: bags made
from the test video by ``dense-head-pose record`` (MCAP and sqlite3, raw and JPEG, two of
them named alike in different folders, one long enough to be cut into chunks, one cut to
its magic bytes) and videos. Checked against the local ``--jobs 1`` run: the same per-frame
poses (the chunked one within the tolerance measured in docs/cluster.md), the corrupt one
reported, a worker killed with SIGKILL mid-run changing nothing, and ``--resume`` after a
killed driver doing only the rest.
"""

from __future__ import annotations

import csv
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import VIDEO, cli

from dhp_test_support.cluster import LoopbackCluster, free_port

pytestmark = [pytest.mark.cluster, pytest.mark.slow]
ray = pytest.importorskip("ray")
#: chunks of 4 s with the default warm-up (5 s): the filters' measured noise, averaged over
#: about 2 s, has settled by a chunk's first frame (docs/cluster.md has both figures)
CHUNKING = ("--chunk-seconds", "4", "--warmup-seconds", "5")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A two-node cluster on loopback, one CPU each."""
    with LoopbackCluster(2, tmp_path_factory.mktemp("ray")) as running:
        yield running


def _record(video: Path, out: Path, *args: str) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    result = cli("record", video, out, *args)
    assert result.returncode == 0, result.stderr


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """8 bags (one long, one corrupt) in a tree, and their list."""
    root = tmp_path_factory.mktemp("dataset")
    _record(VIDEO, root / "lab1" / "run1")
    _record(VIDEO, root / "lab2" / "run1", "--jpeg")  # the same name in another folder
    _record(VIDEO, root / "lab2" / "run2", "--storage", "sqlite3")
    _record(VIDEO, root / "lab3" / "a", "--jpeg", "--storage", "sqlite3")
    _record(VIDEO, root / "lab3" / "b", "--max-frames", "30")
    _record(VIDEO, root / "lab3" / "c", "--camera", "/front")
    _record(VIDEO, root / "long" / "session", "--repeat", "6", "--jpeg")
    bad = root / "broken" / "cut.mcap"
    bad.parent.mkdir()
    bad.write_bytes((root / "lab1" / "run1" / "run1.mcap").read_bytes()[:8])
    listing = root / "dataset.txt"
    listing.write_text("# the lab sessions\nlab1\nlab2\nlab3\n\nlong/session\nbroken/cut.mcap\n")
    return root, listing


def _rows(path: Path) -> list[dict]:
    with open(path, newline="") as file:
        return list(csv.DictReader(file))


@pytest.fixture(scope="module")
def local(dataset, tmp_path_factory):
    """The local, one-process run's CSVs (the reference)."""
    root, listing = dataset
    out = tmp_path_factory.mktemp("local")
    result = cli("bag", f"@{listing}", "--jobs", "1", "--csv", out / "csv", cwd=root)
    assert result.returncode == 2, result.stderr  # the corrupt one
    return out / "csv"


def _names(directory: Path) -> set[str]:
    return {p.name for p in directory.iterdir() if not p.name.startswith(".")}


def _same_poses(mine: list[dict], reference: list[dict], angle_tol: float = 0.0) -> None:
    """The same frames and faces; poses equal (or within ``angle_tol`` degrees, the
    chunked recording); ids equal up to renaming, one to one."""
    assert [r["stamp"] for r in mine] == [r["stamp"] for r in reference]
    ids = {(a["camera"], a["id"]): (b["camera"], b["id"]) for a, b in zip(mine, reference)}
    assert len(set(ids.values())) == len(ids)
    angles = np.array([[float(a[k]) - float(b[k]) for k in ("yaw_deg", "pitch_deg", "roll_deg")]
                       for a, b in zip(mine, reference)])
    moved = np.array([[float(a[k]) - float(b[k]) for k in ("x_m", "y_m", "z_m")]
                      for a, b in zip(mine, reference)])
    if angle_tol == 0.0:
        assert not angles.any() and not moved.any()
    else:
        assert np.median(np.abs(angles)) < angle_tol / 10
        assert np.abs(angles).max() < angle_tol
        assert np.abs(moved).max() < 0.01


def _run(cluster, dataset, out: Path, *extra: str) -> subprocess.CompletedProcess:
    root, listing = dataset
    return cli("bag", f"@{listing}", "--ray", cluster.address, "--csv", out / "csv", "--summary",
               out / "faces.parquet", *CHUNKING, *extra, cwd=root)


def _check_against_local(out: Path, local: Path) -> None:
    # (the local run leaves the corrupt bag a CSV of its header; the dataset writes only
    # whole outputs of recordings that were processed)
    assert _names(out / "csv") == _names(local) - {"cut.csv"} == {
        "lab1-run1.csv", "lab2-run1.csv", "run2.csv", "a.csv", "b.csv", "c.csv",
        "session.csv"}
    for name in _names(out / "csv"):
        tol = 2.0 if name == "session.csv" else 0.0
        _same_poses(_rows(out / "csv" / name), _rows(local / name), tol)
    assert not [p for p in (out / "csv").iterdir() if p.name.startswith(".")]


def test_a_dataset_on_two_nodes_equals_the_local_run(cluster, dataset, local, tmp_path) -> None:
    import pyarrow.parquet as pq

    result = _run(cluster, dataset, tmp_path)
    assert result.returncode == 2, result.stderr  # one failed: said by the exit status
    assert "cut.mcap: not processed" in result.stderr
    _check_against_local(tmp_path, local)
    faces = pq.read_table(tmp_path / "faces.parquet").to_pylist()
    statuses = {r["recording"]: r for r in
                pq.read_table(tmp_path / "faces.recordings.parquet").to_pylist()}
    assert statuses["cut"]["status"] == "failed" and statuses["cut"]["error"]
    assert statuses["session"]["chunks"] == 3 and statuses["session"]["face_ids"] == 1
    assert {r["status"] for n, r in statuses.items() if n != "cut"} == {"done"}
    assert len(faces) == sum(len(_rows(local / n)) for n in _names(tmp_path / "csv"))
    session = [f for f in faces if f["recording"] == "session"]
    assert {f["chunk"] for f in session} == {0, 1, 2}
    assert len({f["id"] for f in session}) == 1  # one person, one id across borders
    assert sum(r["media_s"] for r in statuses.values()) > 20


def _watch(process: subprocess.Popen, lines: list[str]) -> threading.Thread:
    def read() -> None:
        for line in process.stderr:
            lines.append(line)
    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return thread


def _wait_for(lines: list[str], text: str, count: int, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 600
    while sum(text in line for line in lines) < count:
        assert process.poll() is None, "".join(lines)
        assert time.monotonic() < deadline, "".join(lines)
        time.sleep(0.05)


def _running_workers(cluster) -> list[int]:
    """Processes of our cluster's nodes (their sessions: the workers get process groups of
    their own) running a task of a RecordingWorker."""
    sessions = cluster.sessions()
    listing = subprocess.run(["ps", "-eo", "pid=,sid=,args="], capture_output=True,
                             text=True).stdout
    return [int(pid) for pid, sid, *args in (line.split(None, 2) for line in
                                             listing.splitlines())
            if int(sid) in sessions and args and "RecordingWorker.run" in args[0]]


def _popen(cluster, dataset, out: Path, *extra: str) -> subprocess.Popen:
    root, listing = dataset
    return subprocess.Popen(
        [sys.executable, "-m", "dense_head_pose", "bag", f"@{listing}", "--ray", cluster.address,
         "--csv", str(out / "csv"), "--summary", str(out / "faces.parquet"), *CHUNKING,
         *extra], cwd=root, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)


def test_a_worker_killed_mid_run_changes_nothing(cluster, dataset, local, tmp_path) -> None:
    import pyarrow.parquet as pq

    driver = _popen(cluster, dataset, tmp_path)
    lines: list[str] = []
    reader = _watch(driver, lines)
    _wait_for(lines, ": done:", 1, driver)
    deadline = time.monotonic() + 600
    while not (workers := _running_workers(cluster)):
        assert driver.poll() is None, "the run ended before a worker could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.02)
    os.kill(workers[0], signal.SIGKILL)
    assert driver.wait(timeout=900) == 2, "".join(lines)
    reader.join(timeout=60)
    assert "its worker died; doing it again" in "".join(lines)
    _check_against_local(tmp_path, local)
    statuses = pq.read_table(tmp_path / "faces.recordings.parquet").to_pylist()
    assert max(r["attempts"] for r in statuses) >= 2


def test_resume_after_a_killed_driver_does_only_the_rest(cluster, dataset, local,
                                                         tmp_path) -> None:
    driver = _popen(cluster, dataset, tmp_path, "--resume")
    lines: list[str] = []
    _watch(driver, lines)
    _wait_for(lines, ": done:", 2, driver)
    driver.kill()
    driver.wait(timeout=60)
    again = _run(cluster, dataset, tmp_path, "--resume")
    assert again.returncode == 2, again.stderr
    skipped = again.stderr.count("skipped (done before, --resume)")
    done = again.stderr.count(": done:")
    assert skipped >= 2 and skipped + done == 7, again.stderr
    _check_against_local(tmp_path, local)
    # and once more: everything is there, nothing is redone but the corrupt one
    third = _run(cluster, dataset, tmp_path, "--resume")
    assert third.stderr.count("skipped (done before, --resume)") == 7
    assert ": done:" not in third.stderr


def test_videos_on_the_cluster_equal_the_video_command(cluster, tmp_path) -> None:
    import json

    folder = tmp_path / "videos"
    for name in ("x", "y"):
        (folder / name).mkdir(parents=True)
        shutil.copy(VIDEO, folder / name / "clip.mp4")
    (folder / "y" / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x01" * 500)
    result = cli("video", folder, "--ray", cluster.address, "--out", tmp_path / "drawn",
                 "--summary", tmp_path / "faces.csv")
    assert result.returncode == 2 and "broken.mp4: not processed" in result.stderr
    assert _names(tmp_path / "drawn") == {"x-clip_pose.mp4", "y-clip_pose.mp4"}
    rows = _rows(tmp_path / "faces.csv")
    alone = cli("video", VIDEO, "--json")
    frames = [json.loads(line) for line in alone.stdout.splitlines()]
    for recording in ("x-clip", "y-clip"):
        mine = [r for r in rows if r["recording"] == recording]
        assert len(mine) == sum(len(f["faces"]) for f in frames)
        for row, frame in zip(mine, frames):
            assert abs(float(row["yaw_deg"]) - frame["faces"][0]["yaw"]) < 1e-3


def test_bad_cluster_inputs_are_one_line(cluster, dataset, tmp_path) -> None:
    root = dataset[0]
    closed = f"127.0.0.1:{free_port()}"
    start = time.monotonic()
    nobody = cli("bag", root / "lab1", "--ray", closed, "--csv", tmp_path / "a")
    assert nobody.returncode == 2 and time.monotonic() - start < 60
    assert [line for line in nobody.stderr.splitlines() if line.startswith("ERROR")] == [
        line for line in nobody.stderr.splitlines() if line.strip()]
    assert "no Ray cluster answers" in nobody.stderr
    unseen = cli("bag", root / "lab1", "--ray", cluster.address, "--models", tmp_path / "nowhere",
                 "--csv", tmp_path / "b")
    assert unseen.returncode == 2 and "cannot load the model pack" in unseen.stderr
    assert not (tmp_path / "b").exists() or not any((tmp_path / "b").iterdir())
    inside = cli("bag", root / "lab1", "--ray", cluster.address, "--csv", root / "lab1" / "out")
    assert inside.returncode == 2 and "--csv" in inside.stderr


def _http2_pretender(port: int, stop: threading.Event) -> None:
    """A server that answers the HTTP/2 preface with its settings, then says nothing: it
    passes the protocol check, and Ray's handshake never completes."""
    import socket

    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", port))
        server.listen(16)
        server.settimeout(0.2)
        held = []
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            conn.sendall(b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")  # an empty SETTINGS frame
            held.append(conn)


def test_an_address_that_is_not_ray_is_one_line_in_bounded_time(dataset, tmp_path) -> None:
    """Something else listening at the address: a server that never answers, an HTTP
    server, a pretender that answers gRPC's first frame and then nothing. One line, exit 2,
    within --ray-timeout; a stop signal honoured while joining."""
    import socket

    root = dataset[0]
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(4)
    web = subprocess.Popen([sys.executable, "-m", "http.server", str(port := free_port()),
                            "--bind", "127.0.0.1"], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    stop = threading.Event()
    pretender = free_port()
    threading.Thread(target=_http2_pretender, args=(pretender, stop), daemon=True).start()
    try:
        time.sleep(1)  # the HTTP server listening
        for address, why in ((f"127.0.0.1:{silent.getsockname()[1]}", "does not answer"),
                             (f"127.0.0.1:{port}", "not a Ray cluster"),
                             (f"127.0.0.1:{pretender}", "no Ray cluster joined")):
            start = time.monotonic()
            proc = cli("bag", root / "lab1", "--ray", address, "--ray-timeout", "15", "--csv",
                       tmp_path / "out")
            assert proc.returncode == 2, proc.stderr
            assert why in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
            assert time.monotonic() - start < 120
        joining = subprocess.Popen(
            [sys.executable, "-m", "dense_head_pose", "bag", str(root / "lab1"), "--ray",
             f"127.0.0.1:{pretender}", "--ray-timeout", "600", "--csv", str(tmp_path / "o2")],
            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
        time.sleep(15)  # past the protocol check, inside Ray's join
        joining.send_signal(signal.SIGTERM)
        assert joining.wait(timeout=60) == 143, joining.stderr.read()
    finally:
        stop.set()
        web.kill()
        silent.close()


def test_a_node_that_dies_takes_only_its_cpu(dataset, tmp_path_factory, tmp_path) -> None:
    """A worker node killed mid-run: its task is redone on the node that remains, no task
    waits for the dead node's CPU, and a --resume of the finished dataset is quick."""
    root, listing = dataset
    with LoopbackCluster(2, tmp_path_factory.mktemp("ray2")) as cluster:
        driver = subprocess.Popen(
            [sys.executable, "-m", "dense_head_pose", "bag", f"@{listing}", "--ray",
             cluster.address, "--csv", str(tmp_path / "csv"), "--summary",
             str(tmp_path / "t.csv")], cwd=root, stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL, text=True)
        lines: list[str] = []
        _watch(driver, lines)
        _wait_for(lines, ": done:", 1, driver)
        cluster.kill_node(1)
        assert driver.wait(timeout=600) == 2, "".join(lines)  # the corrupt bag
        table = _rows(tmp_path / "t.recordings.csv")
        assert {r["recording"]: r["status"] for r in table if r["recording"] != "cut"} == {
            n: "done" for n in ("lab1-run1", "lab2-run1", "run2", "a", "b", "c", "session")}
        start = time.monotonic()
        again = cli("bag", f"@{listing}", "--ray", cluster.address, "--csv", tmp_path / "csv",
                    "--summary", tmp_path / "t.csv", "--resume", cwd=root)
        assert again.returncode == 2, again.stderr
        assert again.stderr.count("skipped (done before, --resume)") == 7
        assert time.monotonic() - start < 180


def test_a_dead_head_and_a_stop_signal_end_the_run_in_our_words(dataset, tmp_path_factory,
                                                               tmp_path) -> None:
    """The head killed mid-run: exit 2 with a line of ours and the table of what is done
    and what is not. SIGTERM to the driver: exit 143 and the interrupted line (Ray's own
    handler exited 15)."""
    root, listing = dataset
    with LoopbackCluster(2, tmp_path_factory.mktemp("ray3")) as cluster:
        stopped = subprocess.Popen(
            [sys.executable, "-m", "dense_head_pose", "bag", f"@{listing}", "--ray",
             cluster.address, "--csv", str(tmp_path / "s")], cwd=root,
            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
        lines: list[str] = []
        _watch(stopped, lines)
        _wait_for(lines, "worker(s), the model pack loaded", 1, stopped)
        stopped.send_signal(signal.SIGTERM)
        assert stopped.wait(timeout=180) == 143, "".join(lines)
        time.sleep(1)
        assert "interrupted" in "".join(lines), "".join(lines)
        driver = subprocess.Popen(  # one worker: the run outlasts the head's loss
            [sys.executable, "-m", "dense_head_pose", "bag", f"@{listing}", "--ray",
             cluster.address, "--workers", "1", "--csv", str(tmp_path / "csv"),
             "--summary", str(tmp_path / "t.csv")], cwd=root, stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL, text=True)
        lines = []
        _watch(driver, lines)
        _wait_for(lines, ": done:", 1, driver)
        cluster.kill_node(0)
        start = time.monotonic()
        assert driver.wait(timeout=300) == 2, "".join(lines)
        assert time.monotonic() - start < 55  # before Ray's own end at 60 s
    time.sleep(1)
    err = "".join(lines)
    assert "head" in err and "is gone" in err and "Traceback" not in err, err
    statuses = {r["recording"]: r["status"] for r in _rows(tmp_path / "t.recordings.csv")}
    assert "done" in statuses.values() and "not run" in statuses.values(), statuses
