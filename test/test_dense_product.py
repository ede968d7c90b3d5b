"""The native dense product against float64 and numpy, on real faces and on odd sizes."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from dense_head_pose.pipeline import dense_product
from dense_head_pose.pipeline.dense_product import DenseProduct

REPO = Path(__file__).resolve().parents[1]


def _reference(model, face) -> np.ndarray:
    """Image-space dense vertices in float64 from the model's own weights."""
    weights, mean = model._dense.rows(np.arange(model.n_vertices))
    offsets = weights.astype(np.float64) @ model.landmark_offsets(face.params).astype(np.float64)
    camera = face.camera.astype(np.float64)
    return (mean.astype(np.float64) + offsets) @ camera[:, :3].T + camera[:, 3]


def test_native_path_is_used_here(estimator) -> None:
    assert estimator.model.dense_path == "avx2+fma" or os.uname().machine != "x86_64"


def test_vertices_of_real_faces_match_float64(estimator, three_faces) -> None:
    faces = estimator(three_faces).faces
    assert len(faces) == 3
    together = estimator(three_faces, dense=True).faces  # one pass for the three faces
    for face, joint in zip(faces, together):
        ref = _reference(estimator.model, face)
        extent = np.ptp(ref, axis=0).max()
        assert np.abs(face.vertices - ref).max() < 1e-6 * extent  # one face per pass
        assert np.abs(joint.vertices - ref).max() < 1e-6 * extent


def test_numpy_fallback_gives_the_same_vertices(estimator, one_face) -> None:
    model = estimator.model
    face = estimator(one_face).faces[0]
    weights, mean = model._dense.rows(np.arange(model.n_vertices))
    fallback = DenseProduct(weights, mean, native=False)
    assert fallback.path == "numpy"
    maps = [face.camera.astype(np.float32)]
    rhs = [model.landmark_offsets(face.params) @ maps[0][:, :3].T]
    native = model._dense(rhs, maps)[0]
    slow = fallback(rhs, maps)[0]
    assert np.abs(native - slow).max() < 1e-6 * np.ptp(slow, axis=0).max()
    assert np.array_equal(native, face.vertices)
    some = np.array([0, 31, 32, 33, model.n_vertices - 1, 17_000])
    assert np.allclose(model._dense(rhs, maps, some)[0], native[some], rtol=0, atol=1e-3)


@pytest.mark.parametrize("n,k,faces", [(1, 1, 1), (31, 68, 2), (32, 3, 1), (33, 150, 5),
                                       (1000, 68, 4)])
def test_odd_sizes_match_numpy(n: int, k: int, faces: int) -> None:
    rng = np.random.default_rng(n + k)
    weights = rng.normal(size=(n, k)).astype(np.float32)
    mean = rng.normal(size=(n, 3)).astype(np.float32) * 1e4
    rhs = [rng.normal(size=(k, 3)).astype(np.float32) for _ in range(faces)]
    maps = [rng.normal(size=(3, 4)).astype(np.float32) * 10 for _ in range(faces)]
    native = DenseProduct(weights, mean)(rhs, maps)
    slow = DenseProduct(weights, mean, native=False)(rhs, maps)
    for a, b, r, m in zip(native, slow, rhs, maps):
        assert a.shape == (n, 3) and a.dtype == np.float32 and a.flags.c_contiguous
        assert np.all(np.abs(a - b) <= rounding_bound(weights, mean, r, m)), (n, k)


def rounding_bound(weights, mean, rhs, affine) -> np.ndarray:
    """What float32 rounding may make two orders of summation differ by, element by
    element: a few units of rounding per term times the sum of the terms' magnitudes. A
    difference scaled to the operands, not to the result: where terms cancel, the result
    is small and its rounding error is not (an absolute or relative tolerance on the
    result fails there on one CPU and passes on another)."""
    terms = (np.abs(mean).astype(np.float64) @ np.abs(affine[:, :3]).T
             + np.abs(weights).astype(np.float64) @ np.abs(rhs) + np.abs(affine[:, 3]))
    return 4 * (weights.shape[1] + 4) * np.finfo(np.float32).eps * terms


def test_foreign_library_falls_back_to_numpy(monkeypatch, caplog) -> None:
    libm = subprocess.run(["cc", "-print-file-name=libm.so.6"], capture_output=True,
                          text=True, check=True).stdout.strip()
    monkeypatch.setenv(dense_product.ENV_VAR, libm)
    weights = np.eye(4, dtype=np.float32)
    with caplog.at_level(logging.WARNING):
        product = DenseProduct(weights, np.zeros((4, 3), np.float32))
    assert product.path == "numpy"
    assert "not the dense_head_pose dense reconstruction" in caplog.text
    rhs = np.arange(12, dtype=np.float32).reshape(4, 3)
    shift = np.hstack([np.eye(3), np.ones((3, 1))]).astype(np.float32)
    assert np.array_equal(product([rhs], [shift])[0], rhs + 1)


CHECK = textwrap.dedent("""
    import sys
    import numpy as np
    from dense_head_pose.pipeline.dense_product import DenseProduct
    rng = np.random.default_rng(int(sys.argv[1]))
    for it in range(200):
        n, k, f = int(rng.integers(1, 300)), int(rng.integers(1, 160)), int(rng.integers(1, 6))
        w = rng.normal(size=(n, k)).astype(np.float32)
        m = rng.normal(size=(n, 3)).astype(np.float32)
        rhs = [rng.normal(size=(k, 3)).astype(np.float32) for _ in range(f)]
        lin = [rng.normal(size=(3, 4)).astype(np.float32) for _ in range(f)]
        native = DenseProduct(w, m)
        slow = DenseProduct(w, m, native=False)(rhs, lin)
        for a, b, r, l in zip(native(rhs, lin), slow, rhs, lin):
            terms = (np.abs(m).astype(np.float64) @ np.abs(l[:, :3]).T
                     + np.abs(w).astype(np.float64) @ np.abs(r) + np.abs(l[:, 3]))
            bound = 4 * (k + 4) * np.finfo(np.float32).eps * terms
            assert np.all(np.abs(a - b) <= bound), (n, k, f)
    print(native.path, "checked")
""")


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["portable", "sanitizers"])
def test_built_variants_match_numpy(tmp_path: Path, variant: str) -> None:
    """The portable path (what a CPU without AVX2 runs) and the AVX2 path under
    AddressSanitizer, on random sizes that leave partial blocks."""
    lib = tmp_path / f"libdhp_dense_{variant}.so"
    flags = ["-O2", "-DDHP_DENSE_NO_SIMD"] if variant == "portable" else \
        ["-O1", "-g", "-fsanitize=address,undefined", "-fno-omit-frame-pointer",
         "-fno-sanitize-recover=undefined"]
    build = subprocess.run(["cc", "-std=c99", *flags, "-shared", "-fPIC",
                            str(REPO / "native" / "dhp_dense.c"), "-o", str(lib)],
                           capture_output=True, text=True, check=False)
    assert build.returncode == 0, build.stderr
    env = {**os.environ, dense_product.ENV_VAR: str(lib)}
    if variant == "sanitizers":
        preload = [subprocess.run(["cc", f"-print-file-name={name}"], capture_output=True,
                                  text=True, check=True).stdout.strip()
                   for name in ("libasan.so", "libubsan.so")]
        env.update(LD_PRELOAD=":".join(preload), ASAN_OPTIONS="detect_leaks=0:abort_on_error=1",
                   UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1")
    script = tmp_path / "check.py"
    script.write_text(CHECK)
    run = subprocess.run([sys.executable, str(script), "3"], capture_output=True, text=True,
                         env=env, timeout=600, check=False)
    assert run.returncode == 0, run.stderr[-3000:]
    expected = "portable" if variant == "portable" else "avx2+fma"
    assert f"{expected} checked" in run.stdout
    assert "AddressSanitizer" not in run.stderr and "runtime error" not in run.stderr
