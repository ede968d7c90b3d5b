#!/usr/bin/env python3
"""A dataset on a Ray cluster against one worker and against the local ``--jobs`` path.

Starts a two-node Ray cluster on loopback (one CPU each; ``LoopbackCluster``), makes bags of
the test video with ``dense-head-pose record`` (JPEG, as cameras record), and times the
``bag`` command as users run it, each configuration in its own process, taking turns:

1. **Throughput**: a dataset of ``--recordings`` bags, media seconds per wall second, with
   ``--ray`` and one or two workers, and locally with ``--jobs 1`` / ``--jobs 2``.
2. **Driver memory**: the driver's peak RSS with 8 and with 64 (short) recordings.
3. **One long recording**: split into chunks (``--chunk-seconds``) on one and two workers.

Also printed, for the projection in docs/cluster.md: the bytes of input per media second
(JPEG and raw bags) and the media seconds one worker CPU processes per second.

Usage: python scripts/benchmark_cluster.py [--video PATH] [--repeat 2] [--recordings 8]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from dense_head_pose.evaluation.benchmark import cpu_name, format_table

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "test_support"))
from dhp_test_support.cluster import LoopbackCluster

REPO = Path(__file__).resolve().parents[1]


def cli(*args: object, cwd: Path | None = None) -> tuple[float, float, int]:
    """Run ``dense-head-pose ARGS``: wall seconds, the driver's CPU seconds, its peak RSS
    in MiB."""
    start = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "dense_head_pose", *map(str, args)],
                               cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    stderr = process.stderr.read().decode() if process.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"dense-head-pose {' '.join(map(str, args))} failed:\n{stderr}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss // 1024


def record(video: Path, out: Path, *extra: str) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "dense_head_pose", "record", str(video), str(out),
                    *extra], check=True, capture_output=True)


def media_seconds(directory: Path) -> float:
    """Media seconds of a dataset, from a local run's CSVs' stamps."""
    import csv

    total = 0.0
    for path in directory.glob("*.csv"):
        with open(path) as file:
            stamps = [float(r["stamp"]) for r in csv.DictReader(file)]
        if len(stamps) > 1:
            total += (stamps[-1] - stamps[0]) * len(stamps) / (len(stamps) - 1)
    return total


def size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--video", type=Path,
                        default=REPO.parent / "shared" / "testdata" / "talking_head.mp4")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--recordings", type=int, default=8)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="benchmark_cluster-"))
    print(f"making the bags in {work} ...", flush=True)
    for k in range(args.recordings):
        record(args.video, work / "set" / f"s{k}", "--jpeg", "--repeat", "6")
    for k in range(64):
        record(args.video, work / "many" / f"m{k:02d}", "--jpeg")
    record(args.video, work / "long" / "session", "--jpeg", "--repeat", "30")
    record(args.video, work / "raw" / "r", "--repeat", "6")
    with LoopbackCluster(2, work / "ray") as cluster:
        print(f"cluster at {cluster.address}", flush=True)
        runs: dict[str, list[tuple[float, float, int]]] = {}
        configs = {
            "ray, 1 worker": ("--ray", cluster.address, "--workers", "1"),
            "ray, 2 workers": ("--ray", cluster.address, "--workers", "2"),
            "local --jobs 1": ("--jobs", "1"),
            "local --jobs 2": ("--jobs", "2"),
        }
        for r in range(args.repeat):
            for name, extra in configs.items():
                out = work / "out" / f"{name.replace(' ', '_')}-{r}"
                runs.setdefault(name, []).append(cli("bag", work / "set", "--csv", out,
                                                     *extra, "--chunk-seconds", "0"))
        media = media_seconds(work / "out" / "local_--jobs_1-0")
        rows = []
        for name, timings in runs.items():
            wall = statistics.median(t[0] for t in timings)
            rows.append([name, f"{wall:.1f}", f"{media / wall:.2f}",
                         f"{statistics.median(t[1] for t in timings):.1f}",
                         f"{max(t[2] for t in timings)}"])
        print(f"\n1. Throughput: {args.recordings} bags, {media:.0f} s of media "
              f"(JPEG 1280x720); {cpu_name()}, "
              f"{os.cpu_count()} cores; medians of {args.repeat}")
        print(format_table(rows, ["configuration", "wall s", "media s / wall s",
                                  "driver CPU s", "driver peak RSS MiB"]))
        one = statistics.median(t[0] for t in runs["ray, 1 worker"])
        two = statistics.median(t[0] for t in runs["ray, 2 workers"])
        local2 = statistics.median(t[0] for t in runs["local --jobs 2"])
        print(f"2 workers / 1 worker: {one / two:.2f}x; ray (2) against local --jobs 2: "
              f"{100 * (two / local2 - 1):+.1f} % wall")

        memory = []
        for count in (8, 64):
            names = sorted((work / "many").iterdir())[:count]
            listing = work / f"many{count}.txt"
            listing.write_text("\n".join(str(p) for p in names) + "\n")
            wall, cpu, rss = cli("bag", f"@{listing}", "--ray", cluster.address,
                                 "--summary", work / "out" / f"summary{count}.parquet",
                                 "--chunk-seconds", "0")
            memory.append([count, f"{wall:.1f}", f"{cpu:.1f}", rss])
        print("\n2. Driver memory (2 workers, bags of 2.2 s, --summary)")
        print(format_table(memory, ["recordings", "wall s", "driver CPU s",
                                    "driver peak RSS MiB"]))

        long_rows = []
        timings: dict[str, list[float]] = {}
        for r in range(args.repeat):
            for workers in ("1", "2"):
                wall = cli("bag", work / "long" / "session", "--ray", cluster.address,
                           "--workers", workers, "--chunk-seconds", "15", "--csv",
                           work / "out" / f"long-{workers}-{r}.csv")[0]
                timings.setdefault(workers, []).append(wall)
        for workers, walls in timings.items():
            long_rows.append([workers, f"{statistics.median(walls):.1f}"])
        ratio = statistics.median(timings["1"]) / statistics.median(timings["2"])
        print("\n3. One long recording (66 s of media, chunks of 15 s, warm-up 5 s)")
        print(format_table(long_rows, ["workers", "wall s"]))
        print(f"2 workers / 1 worker: {ratio:.2f}x")

    jpeg = size(work / "set" / "s0") / (media / args.recordings)
    raw = size(work / "raw" / "r") / (media / args.recordings)
    per_cpu = media / statistics.median(t[0] for t in runs["local --jobs 1"])
    print(f"\nInput per media second: JPEG bag {jpeg / 1e6:.2f} MB, raw bgr8 bag "
          f"{raw / 1e6:.1f} MB; one worker CPU: {per_cpu:.1f} media s per s "
          f"(JPEG {jpeg * per_cpu / 1e6:.1f} MB/s, raw {raw * per_cpu / 1e6:.0f} MB/s read)")


if __name__ == "__main__":
    main()
