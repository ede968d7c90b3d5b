"""SHA-256 of what the commands write on the test data, one line per output.

Run it before and after a change that must not change what users see (a refactoring), and
compare the two listings::

    python scripts/output_digests.py > before.txt     # on the old commit
    python scripts/output_digests.py > after.txt      # on the new one
    diff before.txt after.txt                          # nothing: the same bytes

Timings are left out (they differ from run to run); everything else a command prints or
writes is hashed: JSON lines, drawings, CSV tables, output bags, evaluation and stability
figures.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("DHP_SHARED", REPO.parent / "shared"))
DATA = SHARED / "testdata"
VIDEO = DATA / "talking_head.mp4"
STILLS = [DATA / n for n in ("one_face.jpg", "two_faces.jpg", "three_faces_large.jpg")]
TIMING_KEYS = {"ms_per_image", "wall_s", "cpu_s", "real_time_factor", "throughput", "path"}
#: Columns of the recordings table that are timings or machine names.
TABLE_TIMING_COLUMNS = {"wall_s", "cpu_s", "nodes", "path"}


def run(*args: object, cwd: Path | None = None) -> str:
    """``dense-head-pose ARGS`` (stdout), failing loudly."""
    proc = subprocess.run([sys.executable, "-m", "dense_head_pose", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"dense-head-pose {' '.join(map(str, args))} failed:\n{proc.stderr}")
    return proc.stdout


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def without_timings(value: object) -> object:
    if isinstance(value, dict):
        return {k: without_timings(v) for k, v in value.items() if k not in TIMING_KEYS}
    if isinstance(value, list):
        return [without_timings(v) for v in value]
    return value


def json_lines(text: str) -> bytes:
    return "\n".join(json.dumps(without_timings(json.loads(line)), sort_keys=True)
                     for line in text.splitlines() if line.strip()).encode()


def table(path: Path) -> bytes:
    """A CSV table without its timing columns (and the paths of the temporary folder)."""
    import csv

    rows = list(csv.reader(path.open(newline="")))
    keep = [i for i, name in enumerate(rows[0]) if name not in TABLE_TIMING_COLUMNS]
    return "\n".join(",".join(row[i] for i in keep) for row in rows).encode()


def datasets(out: Path, bag: Path, lines: list[tuple[str, str]]) -> None:
    """``bag`` over several recordings: ``--jobs 2``, ``--summary``, ``--chunk-seconds``;
    ``video`` over several videos."""
    second = out / "rec2"
    run("record", VIDEO, second, "--start-time", "1700000100", "--jpeg")
    run("bag", bag, second, "--csv", out / "jobs", "--jobs", "2", "--deterministic-ids")
    for name in ("rec", "rec2"):
        lines.append((f"bag --jobs 2 {name}.csv", digest((out / "jobs" / f"{name}.csv")
                                                         .read_bytes())))
    run("bag", bag, second, "--csv", out / "summed", "--summary", out / "table.csv",
        "--deterministic-ids")
    lines.append(("bag --summary (faces)", digest((out / "table.csv").read_bytes())))
    lines.append(("bag --summary (recordings)", digest(table(out / "table.recordings.csv"))))
    for name in ("rec", "rec2"):
        lines.append((f"bag --summary {name}.csv", digest((out / "summed" / f"{name}.csv")
                                                          .read_bytes())))
    run("bag", second, "--csv", out / "chunked.csv", "--chunk-seconds", "1",
        "--warmup-seconds", "0.5", "--deterministic-ids")
    lines.append(("bag --chunk-seconds 1 --csv", digest((out / "chunked.csv").read_bytes())))
    videos = out / "videos"
    videos.mkdir()
    for name in ("a.mp4", "b.mp4"):
        shutil.copyfile(VIDEO, videos / name)
    run("video", videos / "a.mp4", videos / "b.mp4", "--summary", out / "videos.csv",
        "--max-frames", "30")
    lines.append(("video A B --summary (faces)", digest((out / "videos.csv").read_bytes())))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--aflw2000", type=Path, default=SHARED / "benchmarks" / "AFLW2000",
                        help="AFLW2000-3D folder (every 50th image is evaluated)")
    args = parser.parse_args()
    lines = []
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        lines.append(("image --json", digest(json_lines(run("image", *STILLS, "--json")))))
        for mode in ("sparse", "dense", "pose", "mesh"):
            run("image", *STILLS, "--mode", mode, "--out", out / mode)
            for still in STILLS:
                drawn = out / mode / still.name
                lines.append((f"image --mode {mode} {still.name}", digest(drawn.read_bytes())))
        for extra in ([], ["--no-smooth", "--detect-every", "1"], ["--precision", "int8"]):
            text = run("video", VIDEO, "--json", "--max-frames", "40", *extra)
            lines.append((f"video --json {' '.join(extra)}".strip(), digest(json_lines(text))))
        bag = out / "rec"
        run("record", VIDEO, bag, "--start-time", "1700000000", "--max-frames", "40")
        run("bag", bag, "--out", out / "heads", "--csv", out / "poses.csv",
            "--deterministic-ids", "--json")
        lines.append(("bag --csv", digest((out / "poses.csv").read_bytes())))
        for storage in sorted((out / "heads").glob("*.mcap")):
            lines.append(("bag --out (mcap)", digest(storage.read_bytes())))
        datasets(out, bag, lines)
        text = run("stability", STILLS[0], "--still-frames", "20", "--moving-frames", "30",
                   "--json")
        lines.append(("stability --json", digest(json_lines(text))))
        if args.aflw2000.is_dir():
            text = run("evaluate", "aflw2000", args.aflw2000, "--stride", "50", "--json")
            lines.append(("evaluate aflw2000 --stride 50 --json", digest(json_lines(text))))
    for name, value in lines:
        print(f"{value}  {name}")


if __name__ == "__main__":
    main()
