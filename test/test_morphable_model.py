"""Dense reconstruction: thin-plate interpolation and the full-BFM import path."""

from __future__ import annotations

import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import PACK

from dense_head_pose import HeadPoseEstimator, ModelError
from dense_head_pose.model_build.bfm_import import import_full_bfm
from dense_head_pose.model_pack import FULL_BFM as FULL_BFM_NAME
from dense_head_pose.pipeline.morphable_model import MorphableModel, thin_plate_weights


def test_thin_plate_weights_interpolate_exactly() -> None:
    rng = np.random.default_rng(0)
    keypoints = rng.normal(size=(20, 3)) * 50_000
    vertices = np.concatenate([keypoints, rng.normal(size=(500, 3)) * 50_000])
    w = thin_plate_weights(vertices, keypoints)
    assert w.shape == (520, 20)
    assert np.allclose(w[:20], np.eye(20), atol=1e-3)
    # affine reproduction: an affine displacement field is interpolated exactly everywhere
    a, b = rng.normal(size=(3, 3)) * 1e-2, rng.normal(size=3)
    disp = keypoints @ a.T + b
    assert np.allclose(w @ disp, vertices @ a.T + b, atol=1e-2 * np.abs(disp).max())


def test_dense_deformation_is_smooth(estimator, one_face) -> None:
    face = estimator(one_face).faces[0]
    model = estimator.model
    offsets = model.dense_model(face.params) - model.dense_mean
    tri = model.triangles
    # neighbouring vertices move alike: edge-wise offset differences are small against the
    # offsets themselves
    edge_diff = np.linalg.norm(offsets[tri[:, 0]] - offsets[tri[:, 1]], axis=1)
    assert np.median(edge_diff) < 0.05 * np.median(np.linalg.norm(offsets, axis=1))


def _synthetic_bfm(n: int, keypoints: np.ndarray, rng) -> dict:
    """A dict shaped like 3DDFA_V2's bfm_noneck_v3.pkl (u 3Nx1, tri 3xM, flat keypoints)."""
    flat_kp = np.stack([3 * keypoints, 3 * keypoints + 1, 3 * keypoints + 2], 1).reshape(-1)
    return {
        "u": rng.normal(size=(3 * n, 1)).astype(np.float32) * 1e4,
        "w_shp": rng.normal(size=(3 * n, 199)).astype(np.float32),
        "w_exp": rng.normal(size=(3 * n, 29)).astype(np.float32),
        "tri": np.stack([np.arange(0, n - 2), np.arange(1, n - 1), np.arange(2, n)]),
        "keypoints": flat_kp.astype(np.int64),
    }


def test_import_bfm_converts_and_is_used(tmp_path: Path, one_face) -> None:
    pack = tmp_path / "pack"
    shutil.copytree(PACK, pack)
    rng = np.random.default_rng(1)
    n = 1000
    keypoints = rng.choice(n, 68, replace=False)
    bfm = _synthetic_bfm(n, keypoints, rng)
    pkl = tmp_path / "bfm_noneck_v3.pkl"
    pkl.write_bytes(pickle.dumps(bfm, protocol=2))
    env = {**os.environ, "DENSE_HEAD_POSE_MODELS": str(pack)}
    run = subprocess.run([sys.executable, "-m", "dense_head_pose", "models", "import-bfm",
                          str(pkl)], capture_output=True, text=True, env=env, check=False)
    assert run.returncode == 0, run.stderr
    assert "trusting" in run.stderr
    assert (pack / FULL_BFM_NAME).is_file()

    model = MorphableModel(pack / "bfm_sparse68.npz", pack / "bfm_dense_mean.npz",
                           pack / FULL_BFM_NAME)
    assert model.exact_dense and model.n_vertices == n
    assert model.triangles.shape == (n - 2, 3)  # not the pack's triangles: other vertex count
    params = rng.normal(size=62)
    expected = (bfm["u"][:, 0] + bfm["w_shp"][:, :40] @ params[12:52]
                + bfm["w_exp"][:, :10] @ params[52:62]).reshape(n, 3)
    assert np.allclose(model.dense_model(params), expected, rtol=1e-4, atol=1e-2)
    camera = np.hstack([np.eye(3) * 0.5, np.ones((3, 1))])
    assert np.allclose(model.project(model.dense_model(params), camera), expected * 0.5 + 1,
                       rtol=1e-4, atol=1e-2)

    estimator = HeadPoseEstimator.from_model_dir(pack)
    assert estimator(one_face, dense=True).faces[0].vertices.shape == (n, 3)


def test_import_bfm_refuses_code(tmp_path: Path) -> None:
    class Evil:
        def __reduce__(self):
            return (os.system, ("touch " + str(tmp_path / "pwned"),))

    pkl = tmp_path / "evil.pkl"
    pkl.write_bytes(pickle.dumps({"u": Evil()}))
    with pytest.raises(ModelError, match="refusing pickled global"):
        import_full_bfm(pkl, tmp_path, PACK / "bfm_dense_mean.npz")
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize("breakage", ["missing_key", "bad_keypoints", "short_bases", "nan"])
def test_import_bfm_validates_structure(tmp_path: Path, breakage: str) -> None:
    rng = np.random.default_rng(2)
    bfm = _synthetic_bfm(200, rng.choice(200, 68, replace=False), rng)
    if breakage == "missing_key":
        del bfm["w_exp"]
    elif breakage == "bad_keypoints":
        bfm["keypoints"] = bfm["keypoints"][::-1].copy()
    elif breakage == "short_bases":
        bfm["w_shp"] = bfm["w_shp"][:, :10]
    else:
        bfm["u"][5] = np.nan
    pkl = tmp_path / "bfm.pkl"
    pkl.write_bytes(pickle.dumps(bfm))
    with pytest.raises(ModelError):
        import_full_bfm(pkl, tmp_path, PACK / "bfm_dense_mean.npz")
    assert not (tmp_path / FULL_BFM_NAME).exists()
