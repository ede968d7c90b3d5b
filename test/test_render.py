"""The native renderer against a numpy reference, on real reconstructed meshes."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import cv2
import numpy as np
import pytest
import render_reference

from dense_head_pose import RendererUnavailableError
from dense_head_pose.pipeline.render import MeshRenderer, RenderStyle, load_library

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def renderer() -> MeshRenderer:
    return MeshRenderer()


@pytest.fixture(scope="module")
def meshes(estimator, one_face, two_faces, video_frames):
    """(image, [vertices, ...]) of real faces: one, two side by side, a turned video face."""
    cases = []
    for image in (one_face, two_faces, video_frames[40], video_frames[0]):
        faces = estimator(image, dense=True).faces
        cases.append((image, [f.vertices for f in faces]))
    return cases


def _edge_band(mask: np.ndarray) -> np.ndarray:
    kernel = np.ones((3, 3), np.uint8)
    m = mask.astype(np.uint8)
    return (cv2.dilate(m, kernel) - cv2.erode(m, kernel)).astype(bool)


def test_agrees_with_numpy_reference(renderer, estimator, meshes) -> None:
    triangles = estimator.model.triangles
    for image, verts in meshes:
        ours = image.copy()
        covered = renderer.render(ours, verts, triangles)
        ref = image.copy()
        mask = render_reference.render(ref, verts, triangles)
        assert covered == pytest.approx(mask.sum(), rel=0.002)
        # coverage: rendered over black with alpha 1, every covered pixel is non-black
        black = np.zeros_like(image)
        MeshRenderer(RenderStyle(alpha=1.0, color=(1, 1, 1))).render(black, verts, triangles)
        ours_mask = black.max(axis=2) > 0
        differs = ours_mask ^ mask
        assert not (differs & ~_edge_band(mask)).any(), "coverage differs away from edges"
        assert differs.sum() < 0.002 * mask.sum()
        both = mask & ours_mask
        diff = np.abs(ours.astype(int) - ref.astype(int)).max(axis=2)[both]
        assert (diff <= 2).mean() >= 0.99
        assert diff.mean() < 0.5


def test_nearer_mesh_wins(renderer, estimator, meshes) -> None:
    image, (verts, *_) = meshes[0]
    triangles = estimator.model.triangles
    shifted = verts + np.array([40.0, 10.0, 0.0], np.float32)
    for dz, winner in ((+500.0, "shifted"), (-500.0, "original")):
        moved = shifted + np.array([0, 0, dz], np.float32)
        both = image.copy()
        renderer.render(both, [verts, moved], triangles)
        alone_orig, alone_moved = image.copy(), image.copy()
        renderer.render(alone_orig, verts, triangles)
        renderer.render(alone_moved, moved, triangles)
        m_orig = np.any(alone_orig != image, axis=2)
        m_moved = np.any(alone_moved != image, axis=2)
        overlap = m_orig & m_moved & ~_edge_band(m_orig) & ~_edge_band(m_moved)
        assert overlap.sum() > 1000
        expected = alone_moved if winner == "shifted" else alone_orig
        assert np.array_equal(both[overlap], expected[overlap])


def test_mesh_off_image_leaves_it_untouched(renderer, estimator, meshes) -> None:
    image, (verts, *_) = meshes[0]
    for offset in ((-5000, 0), (5000, 0), (0, -5000), (0, 1e6)):
        moved = verts + np.array([*offset, 0.0], np.float32)
        canvas = image.copy()
        assert renderer.render(canvas, moved, estimator.model.triangles) == 0
        assert np.array_equal(canvas, image)


def test_mesh_partly_off_image(renderer, estimator, meshes) -> None:
    image, (verts, *_) = meshes[0]
    moved = verts - np.array([verts[:, 0].mean(), 0.0, 0.0], np.float32)  # half left of x=0
    canvas = image.copy()
    covered = renderer.render(canvas, moved, estimator.model.triangles)
    full = renderer.render(image.copy(), verts, estimator.model.triangles)
    assert 0.3 * full < covered < 0.7 * full
    ref = image.copy()
    assert render_reference.render(ref, [moved], estimator.model.triangles).sum() == \
        pytest.approx(covered, rel=0.005)


def test_render_faces_and_no_faces(renderer, estimator, two_faces) -> None:
    faces = estimator(two_faces).faces
    canvas = two_faces.copy()
    assert renderer.render_faces(canvas, []) is canvas
    assert np.array_equal(canvas, two_faces)
    renderer.render_faces(canvas, faces)
    changed = np.any(canvas != two_faces, axis=2)
    for face in faces:
        x1, y1, x2, y2 = face.box.astype(int)
        assert changed[y1:y2, x1:x2].mean() > 0.4


def test_bad_input_is_rejected(renderer, estimator, meshes) -> None:
    image, (verts, *_) = meshes[0]
    tri = estimator.model.triangles
    canvas = image.copy()
    nan_verts = verts.copy()
    nan_verts[100, 0] = np.nan
    inf_verts = verts.copy()
    inf_verts[5, 2] = np.inf
    bad_neg = tri.copy()
    bad_neg[3, 1] = -1
    bad_big = tri.copy()
    bad_big[7, 2] = len(verts)
    cases = [
        (ValueError, (canvas, nan_verts, tri)),
        (ValueError, (canvas, inf_verts, tri)),
        (ValueError, (canvas, verts, bad_neg)),
        (ValueError, (canvas, verts, bad_big)),
        (TypeError, (canvas, verts.astype(np.float64), tri)),
        (TypeError, (canvas, verts, tri.astype(np.int64))),
        (ValueError, (canvas, np.ascontiguousarray(verts[:, :2]), tri)),
        (ValueError, (canvas, verts[::2], tri[:10] // 2)),
        (ValueError, (canvas, verts, np.asfortranarray(tri))),
        (ValueError, (canvas[:, ::2], verts, tri)),
        (ValueError, (canvas.astype(np.float32), verts, tri)),
        (ValueError, (canvas[:, :, :2].copy(), verts, tri)),
        (ValueError, (np.zeros((0, 5, 3), np.uint8), verts, tri)),
        (ValueError, (canvas, [verts, verts[:-1]], tri)),
        (TypeError, ("image", verts, tri)),
    ]
    for error, args in cases:
        with pytest.raises(error):
            renderer.render(*args)
    assert np.array_equal(canvas, image)  # nothing was drawn by any refused call
    readonly = image.copy()
    readonly.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        renderer.render(readonly, verts, tri)


def test_padded_image_rows(renderer, estimator, meshes) -> None:
    """A row-padded view (as from a ROS image with step > 3 * width) renders like a packed one."""
    image, (verts, *_) = meshes[0]
    h, w = image.shape[:2]
    padded = np.zeros((h, w + 7, 3), np.uint8)
    padded[:, :w] = image
    view = padded[:, :w]
    packed = image.copy()
    renderer.render(view, verts, estimator.model.triangles)
    renderer.render(packed, verts, estimator.model.triangles)
    assert np.array_equal(view, packed)
    assert not padded[:, w:].any()  # the padding was not written


def test_missing_library_names_the_build_command(tmp_path: Path) -> None:
    with pytest.raises(RendererUnavailableError, match="pip install"):
        load_library(tmp_path / "nope.so")


def test_style_is_validated() -> None:
    with pytest.raises(ValueError):
        RenderStyle(alpha=1.5)
    with pytest.raises(ValueError):
        RenderStyle(ambient=float("nan"))
    with pytest.raises(ValueError):
        RenderStyle(lights=((0, 0, 1),) * 3, intensities=(1, 1, 1))


FUZZ = textwrap.dedent("""
    import ctypes, sys
    import numpy as np
    from dense_head_pose.pipeline.render import MeshRenderer, RenderStyle
    rng = np.random.default_rng(int(sys.argv[1]))
    r = MeshRenderer()
    lib = r._lib
    for it in range(300):
        h, w = int(rng.integers(1, 90)), int(rng.integers(1, 90))
        img = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
        n = int(rng.integers(3, 60))
        scale = float(10 ** rng.uniform(-1, 8))
        v = (rng.normal(size=(int(rng.integers(1, 4)), n, 3)) * scale
             + rng.uniform(-50, 150, (1, 1, 3))).astype(np.float32)
        if rng.random() < 0.2:
            v[..., :2] = np.round(v[..., :2])  # vertices exactly on pixel centres
        t = rng.integers(0, n, (int(rng.integers(1, 200)), 3)).astype(np.int32)
        r.render(img, v, t)
        if rng.random() < 0.3:  # C directly: non-finite coordinates past the wrapper
            bad = v.copy()
            bad.reshape(-1)[rng.integers(0, bad.size, 5)] = rng.choice(
                [np.nan, np.inf, -np.inf, 3e38], 5)
            r._scratch.ensure(lib.dhp_render_scratch_pixels(h, w), bad.shape[0] * n)
            lib.dhp_render_meshes(img.ctypes.data, h, w, img.strides[0], bad.ctypes.data, n,
                                  bad.shape[0], t.ctypes.data, len(t),
                                  r._scratch.depth.ctypes.data, r._scratch.shade.ctypes.data,
                                  r._scratch.normals.ctypes.data, ctypes.byref(r._c_style))
    print("fuzzed ok")
""")


@pytest.mark.slow
def test_fuzzed_meshes_under_address_sanitizer(tmp_path: Path) -> None:
    lib = tmp_path / "libdhp_render_asan.so"
    build = subprocess.run(
        ["cc", "-std=c99", "-O1", "-g", "-fsanitize=address,undefined", "-fno-omit-frame-pointer",
         "-fno-sanitize-recover=undefined", "-shared", "-fPIC",
         str(REPO / "native" / "dhp_render.c"), "-o", str(lib), "-lm"],
        capture_output=True, text=True, check=False)
    assert build.returncode == 0, build.stderr
    libasan = subprocess.run(["cc", "-print-file-name=libasan.so"], capture_output=True,
                             text=True, check=True).stdout.strip()
    libubsan = subprocess.run(["cc", "-print-file-name=libubsan.so"], capture_output=True,
                              text=True, check=True).stdout.strip()
    env = {**os.environ, "DENSE_HEAD_POSE_RENDER_LIB": str(lib),
           "LD_PRELOAD": f"{libasan}:{libubsan}",
           "ASAN_OPTIONS": "detect_leaks=0:abort_on_error=1",
           "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1"}
    script = tmp_path / "fuzz.py"
    script.write_text(FUZZ)
    for seed in ("1", "2"):
        run = subprocess.run([sys.executable, str(script), seed], capture_output=True,
                             text=True, env=env, timeout=600, check=False)
        assert run.returncode == 0 and "fuzzed ok" in run.stdout, run.stderr[-3000:]
        assert "AddressSanitizer" not in run.stderr and "runtime error" not in run.stderr


def test_concurrent_rendering_matches_sequential(estimator, meshes) -> None:
    """ctypes releases the GIL: two threads, two renderers, two images at the same time."""
    import threading

    triangles = estimator.model.triangles
    jobs = [(meshes[0][0], meshes[0][1]), (meshes[1][0], meshes[1][1])]
    expected = []
    for image, verts in jobs:
        canvas = image.copy()
        MeshRenderer().render(canvas, verts, triangles)
        expected.append(canvas)
    results: list = [None, None]
    errors: list = []

    def work(i: int) -> None:
        try:
            renderer = MeshRenderer()
            for _ in range(20):
                canvas = jobs[i][0].copy()
                renderer.render(canvas, jobs[i][1], triangles)
                assert np.array_equal(canvas, expected[i])
            results[i] = canvas
        except Exception as exc:  # reported below, in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert all(np.array_equal(r, e) for r, e in zip(results, expected))
