"""Bad input to the library and the CLI from a hostile or careless user, each attack run for
real: the renderer at the float-precision limit, decompression bombs,
devices and pipes as image files, pickle bombs, outputs written over inputs, corrupt imported
models, absurd intrinsics, big-endian images. The rule they check: one clear message naming
the input and the fix, the rest of the batch still processed, nothing written over, nothing
half-written that looks complete, never a traceback.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
import stat
import subprocess
import sys
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers import PACK, TESTDATA, pack_with_full_bfm, png_bomb, system_library

from dense_head_pose import (
    CameraIntrinsics,
    EstimatorOptions,
    HeadPoseEstimator,
    ImageError,
    MeshRenderer,
    ModelError,
    images,
    model_pack,
)
from dense_head_pose.model_build.bfm_import import import_full_bfm
from dense_head_pose.model_pack import FULL_BFM as FULL_BFM_NAME
from dense_head_pose.pipeline.drawing import draw_pose
from dense_head_pose.pipeline.morphable_model import MorphableModel
from dense_head_pose.pipeline.render import MAX_SIDE


def run(*args: str, env: dict | None = None, cwd: Path | None = None
        ) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dense_head_pose", *args], capture_output=True,
                          text=True, timeout=300, check=False, env={**os.environ, **(env or {})},
                          cwd=cwd)





@pytest.fixture(scope="module")
def bomb(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("bomb") / "bomb.png"
    path.write_bytes(png_bomb(20000, 20000))  # 400 million pixels
    return path


# -------------------------------------------------------------- memory safety and bombs
def test_renderer_is_exact_at_its_size_limit_and_refuses_beyond() -> None:
    renderer = MeshRenderer()
    lib = renderer._lib
    width = MAX_SIDE  # the largest accepted: every pixel coordinate is an exact float
    guard = 4096
    buffer = np.zeros(width * 3 + guard, np.uint8)
    buffer[width * 3:] = 0xAB
    image = buffer[:width * 3].reshape(1, width, 3)
    tri = np.array([[0, 1, 2]], np.int32)
    verts = np.array([[width - 8, -2, 0], [width, -2, 0], [width, 2, 0]], np.float32)
    assert renderer.render(image, verts, tri) > 0  # the right-most pixels are covered
    assert np.all(buffer[width * 3:] == 0xAB), "the renderer wrote past the image"
    # one pixel wider: refused by the wrapper and by the C code itself
    wide = np.zeros((1, width + 4, 3), np.uint8)
    with pytest.raises(ValueError, match="sides up to"):
        renderer.render(wide, verts, tri)
    assert lib.dhp_render_scratch_pixels(1, width + 4) == 0
    import ctypes

    refused = lib.dhp_render_meshes(
        wide.ctypes.data, 1, width + 4, wide.strides[0], verts.ctypes.data, 3, 1,
        tri.ctypes.data, 1, renderer._scratch.depth.ctypes.data,
        renderer._scratch.shade.ctypes.data, renderer._scratch.normals.ctypes.data,
        ctypes.byref(renderer._c_style))
    assert refused == -1


def test_decompression_bomb_is_refused_from_its_header(bomb) -> None:
    data = bomb.read_bytes()
    assert len(data) < 2_000_000
    assert images.declared_size(png_bomb(300, 200)) == (300, 200)
    with pytest.raises(ImageError, match="exceeds"):
        images.decode(data)
    with pytest.raises(ImageError, match="exceeds"):
        images.read(str(bomb))


def test_cli_batch_goes_on_past_bombs_devices_and_pipes(bomb, tmp_path) -> None:
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    big = tmp_path / "big.jpg"
    with big.open("wb") as fh:  # sparse: a huge file that takes no disk
        fh.truncate(images.MAX_FILE_BYTES + 1)
    proc = run("image", str(bomb), "/dev/zero", str(fifo), str(big),
               str(TESTDATA / "one_face.jpg"), "--json")
    assert proc.returncode == 1  # some inputs failed, the others were processed
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["frame"] for r in records] == ["one_face.jpg"]
    assert "exceeds" in proc.stderr and "not a regular file" in proc.stderr
    assert "more than" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_read_is_bounded(tmp_path) -> None:
    path = tmp_path / "x.png"
    path.write_bytes(bytes(2000))
    with pytest.raises(ImageError, match="more than the 1000"):
        images.read_file(path, limit=1000)
    with pytest.raises(ImageError, match="not a regular file"):
        images.read_file(tmp_path)


def test_pickle_bomb_is_refused_quickly(tmp_path) -> None:
    x: list = [0.0]
    for _ in range(28):  # 2^28 elements once expanded; a few hundred bytes pickled
        x = [x, x]
    bfm = {"u": x, "w_shp": x, "w_exp": x, "tri": x, "keypoints": x}
    pkl = tmp_path / "bomb.pkl"
    pkl.write_bytes(pickle.dumps(bfm, protocol=2))
    assert pkl.stat().st_size < 2000
    done = threading.Event()
    result: list = []

    def attempt() -> None:
        try:
            import_full_bfm(pkl, tmp_path, PACK / "bfm_dense_mean.npz")
        except ModelError as exc:
            result.append(exc)
        done.set()

    threading.Thread(target=attempt, daemon=True).start()
    assert done.wait(20), "the pickle bomb was expanded"
    assert result and "is a list, expected a numeric numpy array" in str(result[0])


def test_import_bfm_with_a_dict_says_so(tmp_path) -> None:
    pkl = tmp_path / "dict.pkl"
    pkl.write_bytes(pickle.dumps({"u": {"a": 1}, "w_shp": np.zeros((3, 40)),
                                  "w_exp": np.zeros((3, 10)), "tri": np.zeros((1, 3)),
                                  "keypoints": np.zeros(204)}))
    pack = tmp_path / "pack"
    shutil.copytree(PACK, pack)
    proc = run("models", "import-bfm", str(pkl), "--models", str(pack))
    assert proc.returncode == 2 and "'u' is a dict" in proc.stderr
    assert "Traceback" not in proc.stderr


# -------------------------------------------------------------------------- data loss
def test_never_writes_over_an_input(tmp_path) -> None:
    face = tmp_path / "a.jpg"
    shutil.copy(TESTDATA / "one_face.jpg", face)
    before = hashlib.sha256(face.read_bytes()).hexdigest()
    for out in ("./", str(tmp_path), "a.jpg"):
        proc = run("image", "a.jpg", "--out", out, cwd=tmp_path)
        assert proc.returncode == 2, proc.stderr
        assert "never written over" in proc.stderr
    assert hashlib.sha256(face.read_bytes()).hexdigest() == before


def test_output_names_and_the_one_or_several_rule(tmp_path) -> None:
    noext = tmp_path / "noextface"
    shutil.copy(TESTDATA / "one_face.jpg", noext)
    two = str(TESTDATA / "two_faces.jpg")
    proc = run("image", str(noext), two, "--out", str(tmp_path / "multi_out") + "/")
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in (tmp_path / "multi_out").iterdir()) == \
        ["noextface.png", "two_faces.jpg"]
    existing = tmp_path / "existing_dir"
    existing.mkdir()
    assert run("image", two, "--out", str(existing)).returncode == 0
    assert (existing / "two_faces.jpg").is_file()  # an existing directory, without a slash
    proc = run("image", str(noext), two, "--out", str(tmp_path / "single.jpg"))
    assert proc.returncode == 2 and "several inputs" in proc.stderr
    assert not (tmp_path / "single.jpg").exists()
    proc = run("image", two, "--out", str(tmp_path / "drawing.xyz"))
    assert proc.returncode == 2 and "cannot write that file type" in proc.stderr


# ------------------------------------------------------------------------- model pack



@pytest.mark.parametrize("damage", ["truncated", "triangles_out_of_range", "wrong_shape"])
def test_imported_full_bfm_is_validated(tmp_path, damage) -> None:
    pack = pack_with_full_bfm(tmp_path)
    full = pack / FULL_BFM_NAME
    MorphableModel(pack / "bfm_sparse68.npz", pack / "bfm_dense_mean.npz", full)  # good
    if damage == "truncated":
        full.write_bytes(full.read_bytes()[:5000])
    else:
        with np.load(full) as data:
            arrays = dict(data)
        if damage == "triangles_out_of_range":
            arrays["triangles"][0, 0] = 10**6
        else:
            arrays["w_shp"] = arrays["w_shp"][:-3]
        np.savez(full, **arrays)
        # as if the hash had been recorded for this file: the content checks must catch it
        digest = hashlib.sha256(full.read_bytes()).hexdigest()
        (pack / f"{FULL_BFM_NAME}.sha256").write_text(f"{digest}  {FULL_BFM_NAME}\n")
    with pytest.raises(ModelError, match=FULL_BFM_NAME):
        MorphableModel(pack / "bfm_sparse68.npz", pack / "bfm_dense_mean.npz", full)
    proc = run("image", str(TESTDATA / "one_face.jpg"), "--models", str(pack))
    assert proc.returncode == 2 and FULL_BFM_NAME in proc.stderr
    assert "Traceback" not in proc.stderr


def test_fetch_honours_the_umask_and_cleans_up_after_a_killed_fetch(tmp_path) -> None:
    dest = tmp_path / "pack"
    dest.mkdir()
    leftover = dest / ".face_3dmm_mb05.tflite.k3j9_x.partial"
    leftover.write_bytes(b"half a model")
    old = os.umask(0o022)
    try:
        model_pack.fetch(dest, PACK, log=lambda m: None)
    finally:
        os.umask(old)
    assert not leftover.exists()
    for entry in model_pack.load_manifest():
        mode = stat.S_IMODE((dest / entry.name).stat().st_mode)
        assert mode == 0o644, (entry.name, oct(mode))


def test_unreadable_model_is_a_model_error(tmp_path) -> None:
    if os.geteuid() == 0:
        pytest.skip("running as root: file permissions do not stop root from reading")
    dest = tmp_path / "pack"
    model_pack.fetch(dest, PACK, log=lambda m: None)
    (dest / "face_3dmm_mb05.tflite").chmod(0)
    with pytest.raises(ModelError, match="unreadable"):
        model_pack.locate(dest)


# ------------------------------------------------------------ clear errors, exit status 2
@pytest.mark.parametrize("args, env, message", [
    (["video", "99999999999999999999"], {}, "out of range"),
    (["video", "2147483648"], {}, "out of range"),
    (["video", str(TESTDATA / "talking_head.mp4"), "--out", "/proc/x/y.mp4"], {},
     "cannot create the directory"),
    (["image", str(TESTDATA / "one_face.jpg"), str(TESTDATA / "two_faces.jpg"), "--out",
      "/proc/foo/"], {}, "cannot create the directory"),
    (["models", "fetch", "--from", str(PACK), "--dest", "/etc/passwd"], {},
     "not a directory"),
    (["image", str(TESTDATA / "one_face.jpg")], {"DENSE_HEAD_POSE_MODELS": "/etc/passwd"},
     "not a directory"),
    (["benchmark", str(TESTDATA / "one_face.jpg"), "--frames", "-3"], {}, "not in 0.."),
    (["video", str(TESTDATA / "talking_head.mp4"), "--max-frames", "-5"], {}, "not in 0.."),
    (["image", str(TESTDATA / "one_face.jpg"), "--mode", "mesh", "--out", "/tmp/x.jpg"],
     {"DENSE_HEAD_POSE_RENDER_LIB": "libm.so.6"}, "not the dense_head_pose renderer"),
    (["image", str(TESTDATA / "one_face.jpg"), "--intrinsics", "1.7e308", "1", "1", "1"], {},
     "cannot be a camera"),
    (["image", str(TESTDATA / "one_face.jpg"), "--intrinsics", "1e-320", "1e-320", "0", "0"],
     {}, "cannot be a camera"),
    (["video", str(TESTDATA / "one_face.jpg")], {}, "is an image, not a video"),
])
def test_clear_errors(args, env, message) -> None:
    if env.get("DENSE_HEAD_POSE_RENDER_LIB") == "libm.so.6":  # another real library
        env = {"DENSE_HEAD_POSE_RENDER_LIB": str(system_library("libm.so.6"))}
    proc = run(*args, env=env)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


def test_option_types_are_checked(estimator, one_face) -> None:
    with pytest.raises(TypeError):
        estimator.configure(max_faces=1.5)
    with pytest.raises(TypeError):
        EstimatorOptions(refine="no")
    assert len(estimator(one_face).faces) == 1  # a refused change leaves it working


def test_extreme_intrinsics_are_refused_and_no_nan_escapes(estimator, one_face) -> None:
    for values in ((1.7e308, 1.7e308, 0, 0), (1e-300, 1e-300, 0, 0), (1e-320, 1, 0, 0)):
        with pytest.raises(ValueError, match="cannot be a camera"):
            CameraIntrinsics(*values)
    found = 0
    for f in (1.0, 1e6):  # the accepted extremes: finite poses in front of the camera, or
        # no face at all (at f = 1 px the head would be a millimetre away, behind the lens)
        for face in estimator(one_face, CameraIntrinsics(f, f, 200.0, 270.0)).faces:
            record = json.dumps(face.to_dict(), allow_nan=False)  # raises on NaN, infinity
            assert face.pose.translation[2] > 0 and record
            found += 1
    assert found >= 1


def test_big_endian_16_bit_images(estimator, one_face) -> None:
    native = one_face.astype(np.uint16) * 257
    big = native.astype(">u2")
    assert np.array_equal(images.as_bgr8(big), images.as_bgr8(native))
    assert len(estimator(big).faces) == 1


# ---------------------------------------------------- the documented API and CLI, as written
def test_readme_api_and_cli_details(tmp_path) -> None:
    from dense_head_pose import MeshRenderer as Exported  # the documented import

    assert Exported is MeshRenderer
    proc = run("image", str(TESTDATA / "one_face.jpg"), "--json")
    assert "XNNPACK" not in proc.stderr  # LiteRT's start-up line is not shown
    help_text = run("video", "--help").stdout + run("models", "fetch", "--help").stdout
    assert "default 0.6" in help_text and "default 16" in help_text
    assert "see README" not in help_text


def test_pose_labels_of_neighbouring_faces_do_not_overlap(estimator, three_faces) -> None:
    canvas = three_faces.copy()
    taken: list = []
    for face in estimator(three_faces).faces:
        draw_pose(canvas, face, taken)
    assert len(taken) == 3
    for i, a in enumerate(taken):
        for b in taken[i + 1:]:
            assert not (a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]), (a, b)


def test_estimator_from_model_dir_with_a_file_path_says_so() -> None:
    with pytest.raises(ModelError, match="not a directory"):
        HeadPoseEstimator.from_model_dir("/etc/passwd")
    assert cv2.haveImageWriter("x.png")


@pytest.mark.parametrize("ext", [".tiff", ".hdr", ".pfm"])
def test_compressed_formats_opencv_decodes_are_taken(ext) -> None:
    """Floating-point TIFF, Radiance HDR and colour PFM, which Pillow does not identify:
    their header's size is read (the bomb check still applies) and OpenCV decodes them (they
    were refused with "<_io.BytesIO object at 0x...>" in the message)."""
    from dense_head_pose.interfaces import messages

    image = np.linspace(0, 1, 40 * 60 * 3, dtype=np.float32).reshape(40, 60, 3)
    ok, data = cv2.imencode(ext, image)
    assert ok
    assert images.declared_size(data) == (60, 40)

    class Msg:
        format = ext.lstrip(".")

    Msg.data = data.tobytes()
    assert messages.compressed_to_bgr(Msg).shape == (40, 60, 3)
    with pytest.raises(ImageError) as raised:
        images.decode(np.frombuffer(b"neither of them" * 10, np.uint8))
    assert "BytesIO" not in str(raised.value)
