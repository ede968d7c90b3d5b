#!/usr/bin/env python3
"""Offline bag processing speed: ``dense-head-pose bag`` on the test video recorded at
1280x720, as a multiple of real time, wall and CPU time, one thread.

The recording is made here by ``dense-head-pose record`` (sensor_msgs/Image bgr8 and
CameraInfo at 25 Hz, the 55-frame test video ``--loops`` times in a row; a JPEG
CompressedImage copy too). Each
configuration runs ``--repeats`` times, interleaved, in this process; the table gives
medians. Then several copies of the recording through the CLI with ``--jobs 1`` and
``--jobs 2`` give one machine's throughput.

Usage:
    eval "$(make -s env)" && python scripts/benchmark_bag.py [--loops 10] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from dense_head_pose import model_pack
from dense_head_pose.evaluation.benchmark import format_table
from dense_head_pose.pipeline.estimator import EstimatorOptions, HeadPoseEstimator
from dense_head_pose.recordings.from_video import record_video
from dense_head_pose.recordings.process import process_bag
from dense_head_pose.recordings.summary import BagOptions
from dense_head_pose.video.tracking import TrackerOptions

REPO = Path(__file__).resolve().parents[1]

VIDEO = REPO.parent / "shared" / "testdata" / "talking_head.mp4"
CONFIGS = {  # name: (estimator overrides, outputs, JPEG input)
    "CSV (default: mirror on)": ({}, ("csv",), False),
    "CSV + bag (all outputs)": ({}, ("csv", "out"), False),
    "CSV + bag, JPEG input": ({}, ("csv", "out"), True),
    "CSV + bag, --no-mirror": ({"mirror": False}, ("csv", "out"), False),
    "CSV + bag, --precision int8": ({"precision": "int8"}, ("csv", "out"), False),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--loops", type=int, default=10, help="times the video is recorded")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--copies", type=int, default=4, help="bags for the --jobs runs")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        start = 1_700_000_000 * 10**9
        frames = record_video(str(VIDEO), tmp / "raw", repeat=args.loops, start_ns=start)
        record_video(str(VIDEO), tmp / "jpeg", repeat=args.loops, start_ns=start, jpeg=True)
        raw, jpeg = tmp / "raw", tmp / "jpeg"
        pack = model_pack.locate(None)
        estimators = {name: HeadPoseEstimator.from_model_dir(pack, EstimatorOptions(**over))
                      for name, (over, _, _) in CONFIGS.items()}
        samples: dict[str, list] = {name: [] for name in CONFIGS}
        run = 0
        for _ in range(args.repeats):
            for name, (_, outputs, compressed) in CONFIGS.items():
                run += 1
                options = BagOptions(
                    csv=tmp / f"{run}.csv" if "csv" in outputs else None,
                    out=tmp / f"out{run}" if "out" in outputs else None)
                summary = process_bag(jpeg if compressed else raw, estimators[name],
                                      TrackerOptions(), options)
                samples[name].append(summary)
        rows = []
        for name, runs in samples.items():
            wall = statistics.median(s.wall_s for s in runs)
            cpu = statistics.median(s.cpu_s for s in runs)
            recorded = runs[0].recorded_s
            rows.append([name, f"{recorded / wall:.1f}x", f"{wall:.2f}", f"{cpu:.2f}",
                         f"{runs[0].frames_processed / wall:.0f}"])
        print(f"{frames} frames of 1280x720 ({samples[next(iter(CONFIGS))][0].recorded_s:.1f}"
              f" s of recording), one thread, median of {args.repeats}:\n")
        print(format_table(rows, ["configuration", "real time", "wall s", "CPU s",
                                  "frames/s"]))
        # one machine, several bags: one process per bag
        copies = []
        for i in range(args.copies):
            link = tmp / f"bag{i}"
            link.symlink_to(raw, target_is_directory=True)
            copies.append(str(link))
        rows = []
        base = None
        for jobs in (1, 2):
            start = time.perf_counter()
            result = subprocess.run(
                [sys.executable, "-m", "dense_head_pose", "bag", *copies, "--csv",
                 str(tmp / f"csv_jobs{jobs}"), "--jobs", str(jobs)],
                capture_output=True, text=True, check=False)
            wall = time.perf_counter() - start
            if result.returncode != 0:
                raise SystemExit(result.stderr[-2000:])
            recorded = args.copies * samples[next(iter(CONFIGS))][0].recorded_s
            base = base or wall
            rows.append([jobs, args.copies, f"{recorded / wall:.1f}x", f"{wall:.1f}",
                         f"{base / wall:.2f}"])
        print(f"\n{args.copies} bags through the CLI (CSV; process start and model loading "
              "included):\n")
        print(format_table(rows, ["--jobs", "bags", "real time", "wall s",
                                  "speed-up over --jobs 1"]))


if __name__ == "__main__":
    main()
