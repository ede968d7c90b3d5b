#!/usr/bin/env python3
"""The dense product's prefetch hint, measured on the CPU at hand.

``native/dhp_dense.c`` prefetches the 3DMM weights two blocks ahead; the hint decides
whether they stay in the shared cache between frames. This builds the same source with each
hint (NTA, T0, T1, T2, none) into a temporary directory, with the flags of ``setup.py``,
then times the dense vertices of each frame of the test video right after the pipeline ran
on it (as in use: the network has just been through the caches), the variants taking turns
frame by frame, and prints the medians.

Usage: python scripts/benchmark_prefetch_hints.py [--repeat 6] [--cc gcc]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from dense_head_pose import HeadPoseEstimator
from dense_head_pose.evaluation.benchmark import cpu_name, format_table
from dense_head_pose.pipeline.dense_product import load_library
from dense_head_pose.pipeline.results import compute_vertices
from dense_head_pose.video.sources import open_source

ROOT = Path(__file__).resolve().parents[1]
TESTDATA = ROOT.parent / "shared" / "testdata"
FLAGS = ["-O3", "-std=c99", "-fno-math-errno", "-fno-wrapv", "-shared", "-fPIC"]
HINTS = ("NTA", "T0", "T1", "T2", "none")
PREFETCH = re.compile(r"_mm_prefetch\(([^;]*), _MM_HINT_\w+\);")


def build(hint: str, directory: Path, cc: str) -> Path:
    """``native/dhp_dense.c`` with every prefetch given ``hint`` (or removed), built."""
    source = (ROOT / "native" / "dhp_dense.c").read_text()
    if not PREFETCH.search(source):
        raise SystemExit("native/dhp_dense.c has no _mm_prefetch to vary")
    if hint == "none":
        source = PREFETCH.sub("(void)0;", source)
    else:
        source = PREFETCH.sub(lambda m: f"_mm_prefetch({m.group(1)}, _MM_HINT_{hint});", source)
    path = directory / f"dhp_dense_{hint}.c"
    path.write_text(source)
    library = directory / f"libdense_{hint}.so"
    subprocess.run([cc, *FLAGS, f"-I{ROOT / 'native'}", str(path), "-o", str(library)],
                   check=True)
    return library



def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=6, help="passes over the video")
    parser.add_argument("--cc", default="cc", help="C compiler")
    args = parser.parse_args()
    with open_source(str(TESTDATA / "talking_head.mp4")) as source:
        frames = [frame for _, frame in source]
    estimator = HeadPoseEstimator.from_model_dir()
    product = estimator.model._dense  # the product every Face's vertices go through
    with tempfile.TemporaryDirectory() as tmp:
        libraries = {h: load_library(build(h, Path(tmp), args.cc)) for h in HINTS}
        times: dict[str, list[float]] = {h: [] for h in HINTS}
        for rep in range(args.repeat):
            for i, frame in enumerate(frames):
                hint = HINTS[(i + rep) % len(HINTS)]
                faces = estimator(frame).faces
                product._lib = libraries[hint]
                start = time.perf_counter()
                compute_vertices(faces)
                times[hint].append(time.perf_counter() - start)
    base = float(np.median(times["NTA"]))
    rows = [(h, f"{np.median(t) * 1e3:.3f}", f"{np.median(t) / base:.2f}", len(t))
            for h, t in times.items()]
    print(f"{cpu_name()}: dense vertices of one face of talking_head.mp4 after the "
          "pipeline, medians")
    print(format_table(rows, ("prefetch hint", "ms per frame", "/ NTA", "frames")))


if __name__ == "__main__":
    main()
