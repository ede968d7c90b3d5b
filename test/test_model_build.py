"""``models build``: the pack made from the upstream files, deterministic, equivalent to the
pack converted with torch before; hostile files refused without running them; downloads
over loopback HTTP (good, corrupt, truncated, silent server), nothing half-written."""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import io
import pickle
import shutil
import struct
import subprocess
import sys
import threading
import types
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
from helpers import SHARED, SHARED_MODELS, TESTDATA

from dense_head_pose import HeadPoseEstimator, ModelError, images, model_pack
from dense_head_pose.model_build import builder as model_build
from dense_head_pose.model_build.regressor_conversion import convert
from dense_head_pose.model_build.safe_pickle import load_numpy_pickle, load_torch_checkpoint
from dense_head_pose.runtime import TFLiteModel

UPSTREAM = SHARED / "upstream"
pytestmark = pytest.mark.skipif(not UPSTREAM.is_dir(), reason=f"no upstream files at {UPSTREAM}")


def cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dense_head_pose", *args], capture_output=True,
                          text=True, timeout=timeout, check=False)


def test_the_build_is_deterministic_and_matches_the_manifest() -> None:
    first, second = model_build.built_bytes(UPSTREAM), model_build.built_bytes(UPSTREAM)
    assert first == second
    for entry in model_pack.load_manifest():
        data = first[entry.name]
        assert len(data) == entry.bytes and hashlib.sha256(data).hexdigest() == entry.sha256


def test_models_build_from_a_directory_then_check(tmp_path) -> None:
    dest = tmp_path / "pack"
    result = cli("models", "build", "--from", str(UPSTREAM), "--dest", str(dest))
    assert result.returncode == 0, result.stderr
    assert cli("models", "check", "--models", str(dest)).returncode == 0
    again = cli("models", "build", "--from", str(UPSTREAM), "--dest", str(dest))
    kept = len(model_pack.load_manifest())
    assert again.stderr.count("ok ") == kept  # already there and valid: kept


def _regressor_crops() -> list[np.ndarray]:
    estimator = HeadPoseEstimator.from_model_dir(mirror=False)
    crops = []
    for name in ("one_face.jpg", "two_faces.jpg", "three_faces_large.jpg"):
        image = images.read(str(TESTDATA / name))
        for face in estimator(image).faces:
            crops.append(estimator.regressor.crop(image, face.roi).astype(np.float32)[None])
    return crops


@pytest.mark.skipif(not (SHARED_MODELS / "face_3dmm_mb05.tflite").is_file(),
                    reason="no torch-converted regressor to compare with")
def test_the_converted_regressor_equals_the_torch_converted_one(tmp_path) -> None:
    path = tmp_path / "r.tflite"
    path.write_bytes(convert(UPSTREAM / "mb05_120x120.pth",
                             UPSTREAM / "param_mean_std_62d_120x120.pkl"))
    ours = TFLiteModel(path, (1, 120, 120, 3))
    theirs = TFLiteModel(SHARED_MODELS / "face_3dmm_mb05.tflite", (1, 120, 120, 3))
    std = load_numpy_pickle(UPSTREAM / "param_mean_std_62d_120x120.pkl")["std"]
    crops = _regressor_crops()
    assert len(crops) == 6
    for crop in crops:
        a, b = ours.run(crop)[0][0].astype(np.float64), theirs.run(crop)[0][0]
        assert np.max(np.abs(a - b) / std) < 1e-5


# ----------------------------------------------------------------------- hostile checkpoints
@contextlib.contextmanager
def _fake_torch():
    """Modules named like torch's, so pickle writes the globals a checkpoint has."""
    torch, utils = types.ModuleType("torch"), types.ModuleType("torch._utils")

    class FloatStorage:
        pass

    def _rebuild_tensor_v2(*args):
        raise AssertionError("never called")

    FloatStorage.__module__, FloatStorage.__qualname__ = "torch", "FloatStorage"
    _rebuild_tensor_v2.__module__ = "torch._utils"
    _rebuild_tensor_v2.__qualname__ = "_rebuild_tensor_v2"
    torch.FloatStorage, utils._rebuild_tensor_v2, torch._utils = (FloatStorage,
                                                                  _rebuild_tensor_v2, utils)
    saved = {k: sys.modules.get(k) for k in ("torch", "torch._utils")}
    sys.modules.update({"torch": torch, "torch._utils": utils})
    try:
        yield torch
    finally:
        for key, value in saved.items():
            if value is None:
                sys.modules.pop(key, None)
            else:
                sys.modules[key] = value


class _Tensor:
    def __init__(self, key: str, array: np.ndarray) -> None:
        self.key, self.array = key, np.ascontiguousarray(array, np.float32)


def legacy_checkpoint(state: dict[str, np.ndarray], extra: object = None) -> bytes:
    """A checkpoint in PyTorch's legacy format, written without torch."""
    with _fake_torch() as torch:
        tensors = {name: _Tensor(str(i), a) for i, (name, a) in enumerate(state.items())}

        class Writer(pickle.Pickler):
            def persistent_id(self, obj):
                if isinstance(obj, _Storage):
                    return ("storage", torch.FloatStorage, obj.key, "cpu", obj.size, None)
                return None

            def reducer_override(self, obj):
                if isinstance(obj, _Tensor):
                    stride = tuple(s // 4 for s in obj.array.strides)
                    return (torch._utils._rebuild_tensor_v2,
                            (_Storage(obj.key, obj.array.size), 0, obj.array.shape, stride,
                             False, OrderedDict()))
                return NotImplemented

        out = io.BytesIO()
        for header in (0x1950A86A20F9469CFC6C, 1001,
                       {"protocol_version": 1001, "little_endian": True}):
            pickle.dump(header, out, protocol=2)
        root = {"state_dict": OrderedDict((k, t) for k, t in tensors.items())}
        if extra is not None:
            root["extra"] = extra
        Writer(out, protocol=2).dump(root)
        pickle.dump([t.key for t in tensors.values()], out, protocol=2)
        for t in tensors.values():
            out.write(struct.pack("<q", t.array.size) + t.array.tobytes())
        return out.getvalue()


class _Storage:
    def __init__(self, key: str, size: int) -> None:
        self.key, self.size = key, size


class _Payload:
    """Pickles as a call to os.system: what a malicious checkpoint would carry."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


def test_a_written_checkpoint_reads_back() -> None:
    state = {"a.weight": np.arange(6, dtype=np.float32).reshape(2, 3)}
    from dense_head_pose.model_build.safe_pickle import _load_checkpoint

    loaded = _load_checkpoint(io.BytesIO(legacy_checkpoint(state)))["state_dict"]
    assert np.array_equal(loaded["a.weight"], state["a.weight"])


def test_a_checkpoint_naming_another_callable_is_refused_unrun(tmp_path) -> None:
    marker = tmp_path / "PWNED"
    path = tmp_path / "evil.pth"
    path.write_bytes(legacy_checkpoint({"conv1.weight": np.zeros((16, 3, 3, 3))},
                                       extra=_Payload(marker)))
    with pytest.raises(ModelError, match=r"refusing pickled global (posix|os)\.system"):
        load_torch_checkpoint(path)
    assert not marker.exists()
    with pytest.raises(ModelError, match="refusing"):
        convert(path, UPSTREAM / "param_mean_std_62d_120x120.pkl")
    assert not marker.exists()
    evil_pkl = tmp_path / "evil.pkl"
    evil_pkl.write_bytes(pickle.dumps({"mean": _Payload(marker)}))
    with pytest.raises(ModelError, match="refusing"):
        load_numpy_pickle(evil_pkl)
    assert not marker.exists()


def test_a_truncated_checkpoint_is_one_clear_error(tmp_path) -> None:
    data = (UPSTREAM / "mb05_120x120.pth").read_bytes()
    for cut in (100, 5000, len(data) - 1000, len(data) - 1):
        path = tmp_path / f"cut{cut}.pth"
        path.write_bytes(data[:cut])
        with pytest.raises(ModelError, match="not a readable PyTorch checkpoint"):
            load_torch_checkpoint(path)


def test_wrong_shapes_are_refused(tmp_path) -> None:
    real = load_torch_checkpoint(UPSTREAM / "mb05_120x120.pth")["state_dict"]
    state = {k: v for k, v in real.items() if v.dtype == np.float32}
    state["module.dw3_1.conv_dw.weight"] = np.zeros((5, 1, 3, 3), np.float32)
    path = tmp_path / "shapes.pth"
    path.write_bytes(legacy_checkpoint(state))
    expected = r"dw3_1\.bn_dw\.weight has shape \(64,\), expected \(5,\)"
    with pytest.raises(ModelError, match=expected):
        convert(path, UPSTREAM / "param_mean_std_62d_120x120.pkl")
    del state["module.fc_param.bias"]
    state["module.dw3_1.conv_dw.weight"] = real["module.dw3_1.conv_dw.weight"]
    path.write_bytes(legacy_checkpoint(state))
    with pytest.raises(ModelError, match=r"fc_param\.bias missing"):
        convert(path, UPSTREAM / "param_mean_std_62d_120x120.pkl")


def test_a_wrong_upstream_hash_builds_nothing(tmp_path) -> None:
    source = tmp_path / "upstream"
    shutil.copytree(UPSTREAM, source)
    data = bytearray((source / "u_exp.npy").read_bytes())
    data[-1] ^= 0xFF  # same size, another hash
    (source / "u_exp.npy").write_bytes(bytes(data))
    dest = tmp_path / "pack"
    result = cli("models", "build", "--from", str(source), "--dest", str(dest))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "u_exp.npy" in result.stderr and "SHA-256" in result.stderr
    assert not [p for p in dest.iterdir() if p.suffix in (".npz", ".tflite")]
    assert not list(dest.glob(".*.partial"))


# -------------------------------------------------------------------------------- downloads
class _Handler(http.server.BaseHTTPRequestHandler):
    root: Path
    stalls: list[threading.Event]

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        mode, _, name = self.path.strip("/").partition("/")
        path = self.root / name
        if not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        if mode == "stall" and name == "u_shp.npy":
            event = threading.Event()
            self.stalls.append(event)
            event.wait(30)  # says nothing until the test is over
            return
        if mode == "corrupt" and name == "tri.pkl":
            data = data[:-1] + bytes([data[-1] ^ 1])
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if mode == "truncated" and name == "mb05_120x120.pth":
            self.wfile.write(data[: len(data) // 2])  # then the connection closes
            return
        self.wfile.write(data)


@pytest.fixture
def server():
    handler = type("Handler", (_Handler,), {"root": UPSTREAM, "stalls": []})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    for event in handler.stalls:
        event.set()
    httpd.shutdown()
    httpd.server_close()


def test_download_build_from_a_mirror(server, tmp_path) -> None:
    dest = tmp_path / "pack"
    result = cli("models", "build", "--url", f"{server}/ok/", "--dest", str(dest))
    assert result.returncode == 0, result.stderr
    assert cli("models", "check", "--models", str(dest)).returncode == 0


@pytest.mark.parametrize("mode, message", [
    ("corrupt", "tri.pkl"), ("truncated", "mb05_120x120.pth"), ("stall", "u_shp.npy")])
def test_bad_downloads_are_one_clear_error_and_leave_nothing(server, tmp_path, mode,
                                                             message) -> None:
    dest = tmp_path / "pack"
    result = cli("models", "build", "--url", f"{server}/{mode}/", "--dest", str(dest),
                 "--timeout", "3", "--keep-upstream", str(tmp_path / "upstream"))
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("ERROR")]
    assert len(errors) == 1, result.stderr
    assert not [p for p in dest.iterdir() if p.suffix in (".npz", ".tflite")]
    for folder in (dest, tmp_path / "upstream"):
        assert not list(folder.glob(".*.partial"))
    assert not (tmp_path / "upstream" / message).exists()  # no half file that looks whole


def test_the_quantiser_bar_hides_where_tqdm_would(monkeypatch) -> None:
    """ai-edge-quantizer forces its calibration bar on (13,542 steps flooded the set-up's
    log): with TQDM_DISABLE, or without a terminal, it is off."""
    progress_utils = pytest.importorskip("ai_edge_quantizer.utils.progress_utils")
    from dense_head_pose.model_build.quantization import _progress_bars_as_tqdm_says

    monkeypatch.setenv("TQDM_DISABLE", "1")
    with _progress_bars_as_tqdm_says():
        bar = progress_utils.ProgressBar(total_steps=13_542, description="Running Calibration:")
        assert bar._progress_bar.disable
    assert progress_utils.ProgressBar.__name__ == "ProgressBar"
