"""Recordings run many at a time (``bag`` and ``video`` over datasets), attacked as the
hardening campaign attacked them: ``--resume`` with new outputs or a damaged record, names
that collide, a table that is one of the outputs, loose storage files, symlink loops, an
endless list, stop signals in the middle, a driver killed outright, a full disk under the
table. Real bags, real processes."""

from __future__ import annotations

import csv
import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from bag_files import read_bag, write_camera_bag
from helpers import PACK, cli

from dense_head_pose.dataset.inputs import expand_inputs
from dense_head_pose.dataset.planning import unique_names
from dense_head_pose.recordings.rows import CSV_COLUMNS
from dhp_test_support.processes import default_signals, group_members


def _rows(path: Path) -> list[dict]:
    with open(path, newline="") as file:
        return list(csv.DictReader(file))


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, tiny) -> Path:
    """Two short recordings of different lengths, r1 (12 frames) and r2 (7)."""
    root = tmp_path_factory.mktemp("runs")
    write_camera_bag(root / "r1", tiny[:12])
    write_camera_bag(root / "r2", tiny[12:19])
    return root


def test_resume_makes_the_outputs_asked_now(dataset, tmp_path) -> None:
    """`--resume` with another --csv folder, or a --plot added: what was asked and not made
    is made; what was made and is asked again is skipped."""
    table = ("--summary", tmp_path / "t.csv")  # the records live beside the table
    first = cli("bag", dataset, "--csv", tmp_path / "A", *table, "--models", PACK)
    assert first.returncode == 0, first.stderr
    again = cli("bag", dataset, "--csv", tmp_path / "B", *table, "--resume", "--models", PACK)
    assert again.returncode == 0, again.stderr
    assert "skipped (done before, --resume)" not in again.stderr
    assert [len(_rows(tmp_path / "B" / f"{n}.csv")) for n in ("r1", "r2")] == [12, 7]
    assert len(_rows(tmp_path / "t.csv")) == 19
    plotted = cli("bag", dataset, "--csv", tmp_path / "A", "--plot", tmp_path / "P",
                  "--resume", "--models", PACK)
    assert plotted.returncode == 0, plotted.stderr
    assert sorted(p.name for p in (tmp_path / "P").iterdir()) == ["r1.png", "r2.png"]
    third = cli("bag", dataset, "--csv", tmp_path / "A", "--resume", "--models", PACK)
    assert third.stderr.count("skipped (done before, --resume)") == 2, third.stderr


def test_names_are_unique_by_construction(tmp_path, tiny) -> None:
    """`x/run` and `y/run` are named `x-run` and `y-run`; an input named `x-run` of its own
    gets another name, and nothing is written over."""
    assert unique_names(["/d/x/run", "/d/y/run", "/d/x-run"]) == ["x-run", "y-run", "x-run-2"]
    twice = unique_names(["/a/run1", "/a/run1", "/b/run1-2"])
    assert len(set(twice)) == 3 and twice[0] == "run1" and twice[2] == "run1-2"
    lengths = {"x/run": 3, "y/run": 4, "x-run": 5}
    for name, n in lengths.items():
        write_camera_bag(tmp_path / "in" / name, tiny[:n])
    out = tmp_path / "csv"
    proc = cli("bag", *(tmp_path / "in" / n for n in lengths), "--csv", out, "--summary",
               tmp_path / "table.csv", "--models", PACK)
    assert proc.returncode == 0, proc.stderr
    made = {p.name: len(_rows(p)) for p in out.iterdir() if not p.name.startswith(".")}
    assert made == {"x-run.csv": 3, "y-run.csv": 4, "x-run-2.csv": 5}
    table = _rows(tmp_path / "table.csv")
    assert {r["recording"]: 0 for r in table}.keys() == {"x-run", "y-run", "x-run-2"}
    assert len(table) == 12


def test_the_table_is_never_one_of_the_outputs(dataset, tmp_path) -> None:
    out = tmp_path / "o"
    for args in (["--csv", out / "s.csv", "--summary", out / "s.csv"],
                 ["--csv", out, "--summary", out / "r1.csv"],
                 ["--csv", out / "t.recordings.csv", "--summary", out / "t.csv"]):
        inputs = [dataset] if args[1] == out else [dataset / "r1"]
        proc = cli("bag", *inputs, *args, "--models", PACK)
        assert proc.returncode == 2, proc.stderr
        assert "is also" in proc.stderr and "Traceback" not in proc.stderr
        assert not any(p.is_file() for p in out.rglob("*")), list(out.rglob("*"))


def test_loose_storage_files_are_recordings_each(tmp_path, tiny) -> None:
    """A folder of loose .mcap files is not one bag: each file is a recording."""
    loose = tmp_path / "loose"
    loose.mkdir()
    for name, n in (("a", 3), ("b", 5)):
        bag = write_camera_bag(tmp_path / name, tiny[:n])
        (bag / f"{name}.mcap").rename(loose / f"{name}.mcap")
    assert expand_inputs([str(loose)], "bag") == [str(loose / "a.mcap"), str(loose / "b.mcap")]
    proc = cli("bag", loose, "--csv", tmp_path / "csv", "--models", PACK)
    assert proc.returncode == 0, proc.stderr
    assert "go back" not in proc.stderr
    assert [len(_rows(tmp_path / "csv" / f"{n}.csv")) for n in "ab"] == [3, 5]
    # a recording cut off before its metadata, split in rosbag2's own names, stays one
    split = write_camera_bag(tmp_path / "split", tiny[:3])
    (split / "metadata.yaml").unlink()
    (split / "split.mcap").rename(split / "split_0.mcap")
    assert expand_inputs([str(split)], "bag") == [str(split)]


def test_a_deleted_part_of_the_records_is_done_again(dataset, tmp_path) -> None:
    table = tmp_path / "t.csv"
    first = cli("bag", dataset, "--summary", table, "--models", PACK)
    assert first.returncode == 0, first.stderr
    parts = tmp_path / ".t.csv.state" / "parts"
    (parts / "r1.csv").unlink()
    again = cli("bag", dataset, "--summary", table, "--resume", "--models", PACK)
    assert again.returncode == 0, again.stderr
    assert again.stderr.count("skipped (done before, --resume)") == 1  # r2 only
    rows = _rows(table)
    assert sum(r["recording"] == "r1" for r in rows) == 12
    assert sum(r["recording"] == "r2" for r in rows) == 7


@pytest.mark.parametrize("record", ["[]", "null", "7", '{"input": 3, "outputs": "x"}'])
def test_a_record_that_is_not_one_is_done_again(dataset, tmp_path, record) -> None:
    out = tmp_path / "csv"
    assert cli("bag", dataset, "--csv", out, "--models", PACK).returncode == 0
    (out / ".dense_head_pose" / "r1.done.json").write_text(record)
    again = cli("bag", dataset, "--csv", out, "--resume", "--models", PACK)
    assert again.returncode == 0, again.stderr
    assert "Traceback" not in again.stderr
    assert again.stderr.count("skipped (done before, --resume)") == 1
    assert len(_rows(out / "r1.csv")) == 12


def test_symlinks_back_up_the_tree_are_searched_once(tmp_path, tiny) -> None:
    root = tmp_path / "tree"
    write_camera_bag(root / "sub" / "rec", tiny[:2])
    (root / "sub" / "up").symlink_to("..")
    (root / "sub" / "self").symlink_to(".")
    (root / "loop").symlink_to(root)
    start = time.monotonic()
    found = expand_inputs([str(root)], "bag")
    assert time.monotonic() - start < 5
    assert [os.path.realpath(p) for p in found] == [str((root / "sub" / "rec").resolve())]


def test_an_endless_list_is_refused_quickly(tmp_path) -> None:
    """`@/dev/zero` (no newline, ever), a line of 10 MB, a list of a directory."""
    long_line = tmp_path / "long.txt"
    long_line.write_text("x" * (10 << 20))
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing\n\n")
    for argument, why in ((f"@{empty}", "are empty"), ("@/dev/zero", "not a regular"),
                          (f"@{long_line}", "longer than"), (f"@{tmp_path}", "directory")):
        start = time.monotonic()
        proc = cli("bag", argument, "--csv", tmp_path / "out",
                   preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS,
                                                         (4 << 30, 4 << 30)))
        assert proc.returncode == 2, (argument, proc.stderr)
        assert why in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
        assert time.monotonic() - start < 60


def _long_bag(path: Path, frames: list[np.ndarray], n: int) -> Path:
    return write_camera_bag(path, [frames[i % len(frames)] for i in range(n)], jpeg=True)


def _wait_for_rows(table: Path, rows: int, proc: subprocess.Popen) -> None:
    end = time.monotonic() + 300
    while not (table.exists() and table.read_text().count("\n") > rows):
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < end, "no rows written"
        time.sleep(0.05)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_dataset_run_stops_at_once_with_whole_outputs(tmp_path, tiny, sig) -> None:
    """`--summary` with one job: a stop signal ends the run after the frame in hand, as
    plain `bag` does (it waited for the end of the recording), the outputs whole."""
    recording = _long_bag(tmp_path / "rec", tiny, 4000)
    out, table = tmp_path / "out", tmp_path / "csv"
    proc = subprocess.Popen(
        [sys.executable, "-m", "dense_head_pose", "bag", str(recording), "--out", str(out),
         "--csv", str(table), "--summary", str(tmp_path / "t.csv"), "--models", str(PACK)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        preexec_fn=default_signals)
    _wait_for_rows(table, 20, proc)
    proc.send_signal(sig)
    start = time.monotonic()
    assert proc.wait(timeout=120) == 128 + sig
    assert time.monotonic() - start < 20  # a frame's time, on a busy machine
    err = proc.stderr.read()
    assert "interrupted" in err and "Traceback" not in err, err
    poses = read_bag(out).get("/head_pose", [])
    assert 20 <= len(poses) < 4000 and len(_rows(table)) == len(poses)


def test_a_killed_driver_leaves_no_worker_behind(tmp_path, tiny) -> None:
    """SIGKILL to the `--jobs 2` driver: its workers close their outputs and exit, and so
    does multiprocessing's resource tracker."""
    recordings = [_long_bag(tmp_path / f"rec{i}", tiny, 4000) for i in range(2)]
    tables = tmp_path / "csv"
    proc = subprocess.Popen(
        [sys.executable, "-m", "dense_head_pose", "bag", *map(str, recordings), "--csv",
         str(tables), "--jobs", "2", "--models", str(PACK)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    _wait_for_rows(tables / "rec0.csv", 20, proc)
    _wait_for_rows(tables / "rec1.csv", 20, proc)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    end = time.monotonic() + 60
    while group_members(proc.pid):
        assert time.monotonic() < end, subprocess.run(
            ["ps", "-o", "pid,args", "-g", str(proc.pid)], capture_output=True,
            text=True).stdout
        time.sleep(0.2)
    for name in ("rec0", "rec1"):  # whole rows only
        rows = list(csv.reader((tables / f"{name}.csv").open()))
        assert len(rows) > 20 and all(len(r) == len(CSV_COLUMNS) for r in rows)


def _file_size_limit(limit: int):
    def apply() -> None:  # in the child: writes past `limit` bytes fail (EFBIG)
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_table_the_disk_cannot_take_is_one_line(dataset, tmp_path, suffix) -> None:
    """The recordings' parts fit, the table does not: one error line, exit 2, no table
    left half written."""
    if suffix == ".parquet":
        pytest.importorskip("pyarrow")
    measured = tmp_path / "measured" / f"faces{suffix}"  # the sizes, written whole
    assert cli("bag", dataset, "--summary", measured, "--models", PACK).returncode == 0
    part = max(p.stat().st_size for p in measured.parent.glob(".*.state/*/*"))
    whole = measured.stat().st_size
    assert whole > part + 100
    table = tmp_path / f"faces{suffix}"
    proc = cli("bag", dataset, "--summary", table, "--models", PACK,
               preexec_fn=_file_size_limit((part + whole) // 2))
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("ERROR")]
    assert len(errors) == 1 and "cannot write the table" in errors[0], proc.stderr
    assert not table.exists()
    json.dumps(errors)  # one plain line


def test_the_table_and_the_csvs_are_one_schema(dataset, tmp_path) -> None:
    """The table's face rows are the CSVs' rows, column for column, with the recording and
    the chunk around them; ``stamp_ns`` is an integer in both, so they join exactly."""
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq


    out = tmp_path / "csv"
    proc = cli("bag", dataset, "--csv", out, "--summary", tmp_path / "t.parquet",
               "--models", PACK)
    assert proc.returncode == 0, proc.stderr
    table = pq.read_table(tmp_path / "t.parquet")
    assert table.column_names == ["recording", *CSV_COLUMNS, "chunk"]
    assert table.schema.field("stamp_ns").type == pa.int64()
    rows = table.to_pylist()
    for name in ("r1", "r2"):
        mine = [r for r in rows if r["recording"] == name]
        theirs = _rows(out / f"{name}.csv")
        assert [(r["stamp_ns"], r["id"]) for r in mine] == [
            (int(r["stamp_ns"]), r["id"]) for r in theirs]
        assert all(abs(float(t["stamp"]) - m["stamp_ns"] * 1e-9) < 1e-6
                   for m, t in zip(mine, theirs))
    pd = pytest.importorskip("pandas")  # as a user reads them: the join keeps every row
    joined = pd.read_parquet(tmp_path / "t.parquet").merge(
        pd.read_csv(out / "r1.csv"), on=["stamp_ns", "camera", "id"])
    assert len(joined) == 12
