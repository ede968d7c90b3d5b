"""The model pack: manifest, fetch (directory and URL), verification and clear errors."""

from __future__ import annotations

import functools
import http.server
import shutil
import threading
from pathlib import Path

import pytest
from helpers import PACK

from dense_head_pose import HeadPoseEstimator, ModelError, model_pack
from dense_head_pose.pipeline.detection import FaceDetector

NAMES = [e.name for e in model_pack.load_manifest()]


def test_manifest_matches_the_built_pack() -> None:
    problems = model_pack.verify(PACK, local=False)
    assert problems == dict.fromkeys(NAMES)
    # the int8 regressor the set-up built is checked against the hash recorded beside it
    assert model_pack.verify(PACK)[model_pack.INT8_REGRESSOR] is None


def test_fetch_from_directory_then_check(tmp_path: Path) -> None:
    dest = tmp_path / "pack"
    written = model_pack.fetch(dest, source_dir=PACK, log=lambda _: None)
    assert sorted(p.name for p in written) == sorted(NAMES)
    assert model_pack.locate(dest) == dest
    assert not list(dest.glob("*.partial")) and not list(dest.glob(".*"))


def test_checksum_mismatch_is_refused_and_nothing_left(tmp_path: Path) -> None:
    source = tmp_path / "source"
    shutil.copytree(PACK, source)
    victim = source / "face_3dmm_mb05.tflite"
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, one flipped byte
    victim.write_bytes(bytes(data))
    dest = tmp_path / "dest"
    with pytest.raises(ModelError, match=r"face_3dmm_mb05\.tflite.*SHA-256"):
        model_pack.fetch(dest, source_dir=source, log=lambda _: None)
    assert not (dest / "face_3dmm_mb05.tflite").exists()
    assert [p.name for p in dest.iterdir() if "partial" in p.name] == []


def test_truncated_source_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "source"
    shutil.copytree(PACK, source)
    victim = source / "bfm_dense_mean.npz"
    victim.write_bytes(victim.read_bytes()[:1000])
    dest = tmp_path / "dest"
    with pytest.raises(ModelError, match="truncated"):
        model_pack.fetch(dest, source_dir=source, log=lambda _: None)
    assert not (dest / "bfm_dense_mean.npz").exists()


def test_fetch_over_http(tmp_path: Path) -> None:
    handler = functools.partial(http.server.SimpleHTTPRequestHandler,
                                directory=str(PACK))
    handler.log_message = lambda *a: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        dest = tmp_path / "http"
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        model_pack.fetch(dest, base_url=url, log=lambda _: None)
        assert model_pack.verify(dest) == dict.fromkeys(NAMES)
        with pytest.raises(ModelError, match=r"download of .* failed"):
            model_pack.fetch(tmp_path / "missing", base_url=url + "nothing-here/",
                             log=lambda _: None)
    finally:
        server.shutdown()


def test_corrupt_installed_pack_names_file_and_command(tmp_path: Path) -> None:
    dest = tmp_path / "pack"
    model_pack.fetch(dest, source_dir=PACK, log=lambda _: None)
    (dest / "face_detector_rfb320.tflite").write_bytes(b"\0" * 100)
    with pytest.raises(ModelError) as info:
        HeadPoseEstimator.from_model_dir(dest)
    message = str(info.value)
    assert "face_detector_rfb320.tflite" in message and "models build" in message


def test_missing_pack_says_how_to_build_it(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="models build"):
        model_pack.locate(tmp_path / "empty")


def test_explicit_path_beats_environment(tmp_path: Path, monkeypatch) -> None:
    dest = tmp_path / "pack"
    model_pack.fetch(dest, source_dir=PACK, log=lambda _: None)
    monkeypatch.setenv(model_pack.ENV_VAR, str(tmp_path / "nowhere"))
    assert model_pack.locate(dest) == dest
    with pytest.raises(ModelError):
        model_pack.locate(None)  # the environment variable wins over the default places
    monkeypatch.setenv(model_pack.ENV_VAR, str(dest))
    assert model_pack.locate(None) == dest


def test_truncated_model_file_gives_model_error(tmp_path: Path) -> None:
    # loading a model directly (not through the verified pack) still fails cleanly
    bad = tmp_path / "bad.tflite"
    bad.write_bytes((PACK / "face_detector_rfb320.tflite").read_bytes()[:5000])
    with pytest.raises(ModelError, match=r"bad\.tflite"):
        FaceDetector(bad)
