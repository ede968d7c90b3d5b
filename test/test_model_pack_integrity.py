"""Every file of the model pack is checked before it is used: the pinned ones against the
manifest, the int8 regressor and the imported full BFM against the SHA-256 recorded when
they were written; `models import-bfm` validates before it writes, and never leaves a pack
that it cannot repair; `models build --from` looks at a file's size before copying it."""

from __future__ import annotations

import os
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
from helpers import PACK, SHARED, TESTDATA, cli, cli_with_read_only

from dense_head_pose import HeadPoseEstimator, ModelError, model_pack
from dense_head_pose.model_build.bfm_import import import_full_bfm
from dense_head_pose.model_pack import FULL_BFM, INT8_REGRESSOR

ONE_FACE = TESTDATA / "one_face.jpg"


@pytest.fixture()
def pack(tmp_path: Path) -> Path:
    copy = tmp_path / "pack"
    shutil.copytree(PACK, copy, ignore=shutil.ignore_patterns(FULL_BFM, FULL_BFM + ".sha256"))
    return copy


def test_every_flipped_byte_of_the_int8_regressor_is_refused(pack) -> None:
    """80 random single-byte flips: each is refused at load with the command that remakes
    the file (before, 43 ran silently on corrupt weights and 2 raised a traceback on the
    first face)."""
    int8 = pack / INT8_REGRESSOR
    good = int8.read_bytes()
    rng = np.random.default_rng(8)
    for offset in rng.integers(0, len(good), 80):
        data = bytearray(good)
        data[offset] ^= 1 << int(rng.integers(0, 8))
        int8.write_bytes(bytes(data))
        with pytest.raises(ModelError, match=r"changed since it was written.*--precision int8"):
            HeadPoseEstimator.from_model_dir(pack, precision="int8")
    int8.write_bytes(good)
    HeadPoseEstimator.from_model_dir(pack, precision="int8")


def test_models_check_names_a_corrupt_optional_file(pack) -> None:
    """`models check` says "complete" only when every file is; a corrupt int8 model or
    imported BFM is BAD, exit 2 (it said complete for both)."""
    proc = cli("models", "check", "--models", pack)
    assert proc.returncode == 0 and "is complete" in proc.stderr, proc.stderr
    assert f"ok   {pack / INT8_REGRESSOR}" in proc.stderr
    data = bytearray((pack / INT8_REGRESSOR).read_bytes())
    data[100] ^= 0xFF
    (pack / INT8_REGRESSOR).write_bytes(bytes(data))
    proc = cli("models", "check", "--models", pack)
    assert proc.returncode == 2 and f"BAD  {pack / INT8_REGRESSOR}" in proc.stderr
    assert "complete" not in proc.stderr and "--precision int8" in proc.stderr
    proc = cli("image", ONE_FACE, "--models", pack, "--precision", "int8")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.count("\n") == 1 and INT8_REGRESSOR in proc.stderr
    assert cli("image", ONE_FACE, "--models", pack).returncode == 0  # float: not affected


@pytest.mark.parametrize("kind", ["directory", "fifo", "dev_zero"])
def test_models_check_says_what_stands_in_for_a_file(pack, kind) -> None:
    """A directory, a FIFO or a symlink to /dev/zero in place of a pack file is named for
    what it is (it was reported as "missing")."""
    target = pack / "bfm_sparse68.npz"
    target.unlink()
    if kind == "directory":
        target.mkdir()
    elif kind == "fifo":
        os.mkfifo(target)
    else:
        target.symlink_to("/dev/zero")
    proc = cli("models", "check", "--models", pack, timeout=60)
    assert proc.returncode == 2, proc.stderr
    expected = {"directory": "a directory", "fifo": "a FIFO", "dev_zero": "a device"}[kind]
    assert f"not a regular file ({expected})" in proc.stderr and "missing" not in proc.stderr


def _bfm(n: int = 300, seed: int = 5) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    keypoints = rng.choice(n, 68, replace=False)
    return {"u": rng.normal(size=(3 * n, 1)).astype(np.float32),
            "w_shp": rng.normal(size=(3 * n, 40)).astype(np.float32),
            "w_exp": rng.normal(size=(3 * n, 10)).astype(np.float32),
            "tri": np.stack([np.arange(0, n - 2), np.arange(1, n - 1), np.arange(2, n)]),
            "keypoints": np.stack([3 * keypoints, 3 * keypoints + 1,
                                   3 * keypoints + 2], 1).reshape(-1)}


def _import(pack: Path, bfm: dict, tmp_path: Path) -> object:
    pkl = tmp_path / "bfm_noneck_v3.pkl"
    pkl.write_bytes(pickle.dumps(bfm, protocol=2))
    return cli("models", "import-bfm", pkl, "--models", pack)


@pytest.mark.parametrize("damage", ["negative_keypoint", "overflowing_keypoint",
                                    "float_keypoint", "one_dimensional_w_shp",
                                    "negative_triangle", "huge_triangle"])
def test_import_bfm_validates_before_writing(pack, tmp_path, damage) -> None:
    """Indices out of range (negative, overflowing int64 when cast), a 1-D basis: one line,
    exit 2, nothing written, and the pack loads as before (it was "wrote", then every
    command refused the pack, or an IndexError)."""
    bfm = _bfm()
    if damage == "negative_keypoint":
        bfm["keypoints"][:3] = [-3, -2, -1]
    elif damage == "overflowing_keypoint":
        bfm["keypoints"] = bfm["keypoints"].astype(np.float64)
        bfm["keypoints"][:3] = [3.0 * 2**64, 3.0 * 2**64 + 1, 3.0 * 2**64 + 2]
    elif damage == "float_keypoint":
        bfm["keypoints"] = bfm["keypoints"] + 0.5
    elif damage == "one_dimensional_w_shp":
        bfm["w_shp"] = bfm["w_shp"].reshape(-1)
    elif damage == "negative_triangle":
        bfm["tri"][0, 0] = -1
    else:
        bfm["tri"] = bfm["tri"].astype(np.int64)
        bfm["tri"][0, 0] = 2**62 + 5
    proc = _import(pack, bfm, tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and "wrote" not in proc.stderr
    assert not (pack / FULL_BFM).exists() and not (pack / (FULL_BFM + ".sha256")).exists()
    assert cli("image", ONE_FACE, "--models", pack).returncode == 0


def test_an_imported_bfm_that_was_tampered_with_is_refused_and_repaired(pack,
                                                                        tmp_path) -> None:
    assert _import(pack, _bfm(), tmp_path).returncode == 0
    assert cli("models", "check", "--models", pack).returncode == 0
    full = pack / FULL_BFM
    data = bytearray(full.read_bytes())
    data[-200] ^= 0x55
    full.write_bytes(bytes(data))
    proc = cli("models", "check", "--models", pack)
    assert proc.returncode == 2 and f"BAD  {full}" in proc.stderr and "import-bfm" in proc.stderr
    proc = cli("image", ONE_FACE, "--models", pack)
    assert proc.returncode == 2 and "import-bfm" in proc.stderr
    assert _import(pack, _bfm(), tmp_path).returncode == 0  # the command that broke it mends it
    assert cli("models", "check", "--models", pack).returncode == 0


def test_import_bfm_into_a_read_only_pack_is_one_line(pack, tmp_path) -> None:
    pkl = tmp_path / "bfm_noneck_v3.pkl"
    pkl.write_bytes(pickle.dumps(_bfm(), protocol=2))
    proc = cli_with_read_only(pack, "models", "import-bfm", pkl, "--models", pack)
    if proc is None:
        pytest.skip("no mount namespaces here")
    assert proc.returncode == 2 and "cannot write" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


def test_import_bfm_api_leaves_nothing_on_a_bad_file(tmp_path) -> None:
    bfm = _bfm()
    bfm["keypoints"][0] = -3
    pkl = tmp_path / "x.pkl"
    pkl.write_bytes(pickle.dumps(bfm))
    with pytest.raises(ModelError, match="keypoints"):
        import_full_bfm(pkl, tmp_path, PACK / "bfm_dense_mean.npz")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.pkl"]


def test_build_from_checks_a_file_size_before_copying_it(tmp_path) -> None:
    """A 3 GB sparse file in place of an upstream file is refused at once, before a byte is
    copied (it was copied whole, 28 s and 3 GB of temporary space)."""
    upstream = tmp_path / "upstream"
    shutil.copytree(SHARED / "upstream", upstream)
    big = upstream / "mb05_120x120.pth"
    big.unlink()
    with big.open("wb") as f:
        f.truncate(3 << 30)  # sparse: no space used
    dest = tmp_path / "pack"
    proc = cli("models", "build", "--from", upstream, "--dest", dest, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "3221225472 bytes, expected 3752462" in proc.stderr
    assert not list(dest.glob(".*partial")) and not (dest / "face_3dmm_mb05.tflite").exists()


def test_build_writes_where_check_looks(tmp_path) -> None:
    """`models build` and `models check` follow one rule for where the pack is, and both
    say which place it is."""
    env = {"DENSE_HEAD_POSE_MODELS": str(tmp_path / "pack")}
    proc = cli("models", "build", "--from", SHARED / "upstream", env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert f"built in {tmp_path / 'pack'} ($DENSE_HEAD_POSE_MODELS)" in proc.stderr
    proc = cli("models", "check", env=env)
    assert f"model pack in {tmp_path / 'pack'} ($DENSE_HEAD_POSE_MODELS) is complete" in \
        proc.stderr, proc.stderr
    assert model_pack.default_fetch_dest() == model_pack.locate() or \
        model_pack.ENV_VAR in os.environ


def test_a_pack_is_never_built_into_its_own_sources(tmp_path) -> None:
    """`models build --from UP --dest UP` (or a symlink to UP, or a folder inside it), and
    `models fetch` alike: refused before anything is written."""
    sources = tmp_path / "upstream"
    sources.mkdir()
    for path in (SHARED / "upstream").iterdir():
        (sources / path.name).symlink_to(path)
    (tmp_path / "link").symlink_to(sources)
    before = sorted(p.name for p in sources.iterdir())
    for verb, dest in (("build", sources), ("build", tmp_path / "link"),
                       ("build", sources / "pack"), ("fetch", sources)):
        proc = cli("models", verb, "--from", sources, "--dest", dest)
        assert proc.returncode == 2, proc.stderr
        assert "--dest" in proc.stderr and "Traceback" not in proc.stderr
        assert sorted(p.name for p in sources.iterdir()) == before
