#!/usr/bin/env python3
"""Where the time and the CPU go, measured in one process, interleaved, medians.

Four tables (README, "Performance"):

1. **Thread pools.** CPU and wall time of ``estimator()`` on the test video, alone and with
   the dense vertices and the mesh rendered after it every frame (what a node with the mesh
   outputs subscribed does), with the BLAS and OpenCV pools pinned to one thread (the
   default, ``EstimatorOptions.limit_threads``) and left at every core as before.
2. **Detection** on each test image and a 1280x720 frame, with the bilinear downscale
   (now) and INTER_AREA above 4x (before), and the faces found.
3. **Dense reconstruction**, one face (the test video) and three (the still): the native
   product (now) and the BLAS one over the same weights (before), each against the faces'
   two-pass alignment, and the largest difference between them.
4. **Many faces**: a 1280x720 frame tiled with 1, 4, 8 and 16 copies of a test face, the
   per-image pipeline; and one LiteRT invoke of N crops against N invokes of one crop.

Tables 1 and 4 detect with the near look alone (``detector_input=320x240``): they measure
what follows detection and how it grows with the faces, which the far look's cost on a
1280x720 frame would hide (``scripts/benchmark_detector_input.py`` measures that).

Usage: python scripts/benchmark_performance.py [--repeat 3] [--tables 1,2,3,4]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import cv2
import numpy as np
from threadpoolctl import threadpool_limits

from dense_head_pose import HeadPoseEstimator, MeshRenderer, ModelError, images
from dense_head_pose.evaluation.benchmark import format_table
from dense_head_pose.pipeline.dense_product import DenseProduct
from dense_head_pose.pipeline.detection import TRAINED_INPUT, FaceDetector
from dense_head_pose.pipeline.results import compute_vertices
from dense_head_pose.runtime import limit_native_threads
from dense_head_pose.video.sources import open_source

#: the detector's near look alone (see the module doc)
NEAR_LOOK = "{}x{}".format(*TRAINED_INPUT)

#: the estimator's stages of aligning the faces of a frame (two passes each), after detection
ALIGN_STAGES = ("preprocess", "infer", "reconstruct_sparse", "pose")
TESTDATA = Path(__file__).resolve().parents[2] / "shared" / "testdata"


def _median_ms(samples: list[float]) -> float:
    return float(np.median(samples)) * 1e3


def thread_pools(estimator, frames, repeat: int) -> str:
    renderer = MeshRenderer()
    results: dict = {}
    for _ in range(repeat):
        for pinned in (True, False):
            if pinned:
                limit_native_threads(1)
            else:  # the libraries' defaults: every core
                cv2.setNumThreads(os.cpu_count() or 1)
                threadpool_limits(limits=os.cpu_count() or 1, user_api="blas")
            for mesh in (False, True):
                wall, cpu = results.setdefault((pinned, mesh), ([], []))
                for frame in frames:
                    w0, c0 = time.perf_counter(), time.process_time()
                    result = estimator(frame)
                    wall.append(time.perf_counter() - w0)
                    cpu.append(time.process_time() - c0)
                    if mesh:
                        renderer.render_faces(frame.copy(), result.faces)
    limit_native_threads(1)
    rows = []
    for pinned in (True, False):
        alone_w, alone_c = (_median_ms(s) for s in results[(pinned, False)])
        mesh_w, mesh_c = (_median_ms(s) for s in results[(pinned, True)])
        rows.append(("1 thread (pinned)" if pinned else f"{os.cpu_count()} (defaults)",
                     f"{alone_w:.2f}", f"{alone_c:.2f}", f"{mesh_w:.2f}", f"{mesh_c:.2f}",
                     f"{mesh_c / alone_c:.2f}"))
    return format_table(rows, ("BLAS / OpenCV threads", "alone wall ms", "alone CPU ms",
                               "with mesh wall ms", "with mesh CPU ms",
                               "CPU with mesh / alone"))


def detection(estimator, repeat: int) -> str:
    """The detector's input now (images narrower than 4:3 letterboxed) against stretching
    every image to 4:3, interleaved."""
    named = {name: images.read(str(TESTDATA / name)) for name in
             ("one_face.jpg", "two_faces.jpg", "three_faces_large.jpg")}
    with open_source(str(TESTDATA / "talking_head.mp4")) as source:
        named["talking_head.mp4 frame"] = next(iter(source))[1]
    detector: FaceDetector = estimator.detector
    times: dict = {}
    found: dict = {}
    for _ in range(repeat * 10):
        for name, image in named.items():
            for label, letterbox in (("now", True), ("stretched", False)):
                detector.letterbox = letterbox
                start = time.perf_counter()
                dets = detector(image, far=False)
                times.setdefault((name, label), []).append(time.perf_counter() - start)
                found[(name, label)] = [round(d.score, 2) for d in dets]
    detector.letterbox = True
    base = {label: _median_ms(times[("talking_head.mp4 frame", label)])
            for label in ("now", "stretched")}
    rows = []
    for name, image in named.items():
        now, before = (_median_ms(times[(name, k)]) for k in ("now", "stretched"))
        rows.append((name, f"{image.shape[1]}x{image.shape[0]}", f"{now:.2f}",
                     f"{now / base['now']:.2f}", f"{before:.2f}", found[(name, "now")],
                     found[(name, "stretched")]))
    return format_table(rows, ("image", "size", "now ms", "now / 1280x720", "stretched ms",
                               "scores now", "scores stretched"))


def dense(estimator, frames, repeat: int) -> str:
    """Per frame: the two-pass alignment (the estimator's own stage timings), then the dense
    vertices natively (now) and with the BLAS product over the same weights (before), in
    alternating order so that neither always finds the weights in cache."""
    model = estimator.model
    weights, mean = model._dense.rows(np.arange(model.n_vertices))
    blas = DenseProduct(weights, mean, native=False)

    def before(group):
        maps = [f.camera.astype(np.float32) for f in group]
        return blas([model.landmark_offsets(f.params) @ m[:, :3].T for f, m in zip(group, maps)],
                    maps)

    def now(group):
        for face in group:
            face._vertices = None
        compute_vertices(group)
        return [f.vertices for f in group]

    still = images.read(str(TESTDATA / "three_faces_large.jpg"))
    inputs = {"talking_head.mp4 (1 face)": frames, "three_faces_large.jpg": [still] * 20}
    rows = []
    for name, clip in inputs.items():
        align, t_before, t_now, worst = [], [], [], 0.0
        for k in range(repeat):
            for i, frame in enumerate(clip):
                result = estimator(frame)
                align.append(sum(result.timings.get(s, 0.0) for s in ALIGN_STAGES) / 1e3)
                order = (before, now) if (i + k) % 2 else (now, before)
                for fn in order:
                    start = time.perf_counter()
                    out = fn(result.faces)
                    (t_now if fn is now else t_before).append(time.perf_counter() - start)
                    if fn is now:
                        got = out
                ref = before(result.faces)
                worst = max(worst, *(float(np.abs(a - b).max() / np.ptp(b, axis=0).max())
                                     for a, b in zip(got, ref)))
        a, b, n = _median_ms(align), _median_ms(t_before), _median_ms(t_now)
        rows.append((name, len(result.faces), f"{a:.2f}", f"{b:.3f}", f"{n:.3f}",
                     f"{n / b:.2f}", f"**{n / a:.2f}**", f"{worst:.1e}"))
    return format_table(rows, ("input", "faces", "alignment ms", "dense before (BLAS) ms",
                               "dense now ms", "now / before", "now / alignment",
                               "largest difference / extent"))


def many_faces(estimators: dict, repeat: int) -> str:
    """Frames of 1 to 16 faces, per-image pipeline (defaults), each estimator interleaved."""
    face = cv2.resize(images.read(str(TESTDATA / "one_face.jpg")), (150, 200))
    frames = {}
    for count in (1, 4, 8, 16):
        frame = np.full((720, 1280, 3), 110, np.uint8)
        for k in range(count):
            r, c = divmod(k, 8)
            frame[20 + r * 230:220 + r * 230, 10 + c * 158:160 + c * 158] = face
        frames[count] = frame
    samples: dict = {}
    for _ in range(repeat * 10):
        for count, frame in frames.items():
            for name, estimator in estimators.items():
                start = time.perf_counter()
                result = estimator(frame)
                samples.setdefault((name, count), []).append(time.perf_counter() - start)
                assert len(result.faces) == count, (name, count, len(result.faces))
    rows = []
    for count in frames:
        row = [count]
        for name in estimators:
            ms, base = _median_ms(samples[(name, count)]), _median_ms(samples[(name, 1)])
            row += [f"{ms:.2f}", f"{ms / base:.2f}"]
        rows.append(row)
    header = ["faces"] + [h for name in estimators for h in (f"{name} ms", f"{name} / 1 face")]
    table = format_table(rows, header)
    estimator = next(iter(estimators.values()))
    # one invoke of N crops against N invokes of one
    from ai_edge_litert.interpreter import Interpreter

    path = str(estimator.regressor.path)
    crops = np.random.default_rng(0).uniform(0, 255, (8, 120, 120, 3)).astype(np.float32)
    single = Interpreter(model_path=path, num_threads=1)
    single.allocate_tensors()
    batches = {}
    for n in (2, 8):
        batches[n] = Interpreter(model_path=path, num_threads=1)
        batches[n].resize_tensor_input(batches[n].get_input_details()[0]["index"],
                                       [n, 120, 120, 3])
        batches[n].allocate_tensors()
    t_single: dict = {2: [], 8: []}
    t_batch: dict = {2: [], 8: []}
    for _ in range(repeat * 10):
        for n, batch in batches.items():
            start = time.perf_counter()
            for i in range(n):
                single.set_tensor(single.get_input_details()[0]["index"], crops[i:i + 1])
                single.invoke()
            t_single[n].append(time.perf_counter() - start)
            start = time.perf_counter()
            batch.set_tensor(batch.get_input_details()[0]["index"], crops[:n])
            batch.invoke()
            t_batch[n].append(time.perf_counter() - start)
    lines = [table]
    for n in batches:
        s, b = _median_ms(t_single[n]) / n, _median_ms(t_batch[n]) / n
        lines.append(f"3DMM inference per crop: {s:.3f} ms invoked one by one, {b:.3f} ms in "
                     f"one batch of {n} ({b / s:.2f})")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--tables", default="1,2,3,4", help="which tables (default all)")
    args = parser.parse_args()
    tables = {t.strip() for t in args.tables.split(",")}
    near = {"detector_input": NEAR_LOOK}
    estimator = HeadPoseEstimator.from_model_dir(**near)
    with open_source(str(TESTDATA / "talking_head.mp4")) as source:
        frames = [f for _, f in source]
    if "1" in tables:
        print(f"1. Thread pools (talking_head.mp4, 1280x720, one LiteRT thread, "
              f"detector_input={NEAR_LOOK})")
        print(thread_pools(estimator, frames, args.repeat))
    if "2" in tables:
        print("\n2. Detection")
        print(detection(estimator, args.repeat))
    if "3" in tables:
        print("\n3. Dense reconstruction (the test video, and three_faces_large.jpg)")
        print(dense(estimator, frames, args.repeat))
    if "4" in tables:
        print(f"\n4. Many faces (one pass with its mirror, one thread, detector_input="
              f"{NEAR_LOOK}); 'one by one': an invoke per face (its crop and mirror), not "
              "every face in one batch")
        one_by_one = HeadPoseEstimator.from_model_dir(**near)
        one_by_one.regressor.max_batch = 2
        estimators = {"float32": estimator, "float32 one by one": one_by_one}
        try:
            estimators["int8"] = HeadPoseEstimator.from_model_dir(precision="int8", **near)
            estimators["int8 one by one"] = HeadPoseEstimator.from_model_dir(precision="int8",
                                                                             **near)
            estimators["int8 one by one"].regressor.max_batch = 2
        except ModelError as exc:
            print(f"(no int8 regressor: {exc})")
        print(many_faces(estimators, args.repeat))


if __name__ == "__main__":
    main()
