"""The manifest shipped with the code: every file of the model pack with its size, SHA-256,
origin and licence, and the files a pack may hold beyond it."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ..errors import ModelError

ENV_VAR = "DENSE_HEAD_POSE_MODELS"
PACKAGE_NAME = "dense_head_pose"
MANIFEST_NAME = "manifest.json"
FETCH_HINT = "dense-head-pose models build"
INT8_REGRESSOR = "face_3dmm_mb05_int8.tflite"
FULL_BFM = "bfm_dense_full.npz"
#: Files a pack may hold beyond the manifest, each made here (so not pinned: the int8 model
#: depends on its calibration images, the full BFM is the user's) with the command that
#: makes it. Each has its SHA-256 recorded beside it (``NAME.sha256``) when it is written,
#: and is checked against it at load and by ``models check``.
LOCAL_FILES = {
    INT8_REGRESSOR: "dense-head-pose models build --precision int8 --calibration "
                    "VIDEOS_OR_IMAGES",
    FULL_BFM: "dense-head-pose models import-bfm bfm_noneck_v3.pkl",
}
HASH_SUFFIX = ".sha256"


@dataclass(frozen=True)
class ModelFile:
    """One entry of the manifest."""

    name: str
    role: str
    bytes: int
    sha256: str
    origin: str
    licence: str


def package_dir() -> Path:
    """The ``dense_head_pose`` package directory (the manifests are copied into it by a pip
    build; a source checkout's ``models/`` is beside it)."""
    return Path(__file__).resolve().parents[1]


def manifest_path() -> Path:
    """The manifest shipped with the code (source tree, pip install or colcon install)."""
    candidates = [
        package_dir().parent / "models" / MANIFEST_NAME,  # source checkout
        package_dir() / MANIFEST_NAME,  # copied into the package by setup.py
        *(d / MANIFEST_NAME for d in share_dirs()),
    ]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise ModelError(f"the model manifest ({MANIFEST_NAME}) is not installed with {PACKAGE_NAME}")


def load_manifest(path: Path | None = None) -> list[ModelFile]:
    """Read the manifest into :class:`ModelFile` entries."""
    path = path or manifest_path()
    data = json.loads(path.read_text(encoding="utf-8"))
    return [
        ModelFile(
            name=f["name"], role=f["role"], bytes=int(f["bytes"]), sha256=f["sha256"].lower(),
            origin=f["origin"], licence=f["licence"],
        )
        for f in data["files"]
    ]


def share_dirs() -> list[Path]:
    """``share/dense_head_pose/models`` of a colcon/ament install and of a pip prefix."""
    dirs: list[Path] = []
    # a ROS 2 install's ament index: the first prefix of AMENT_PREFIX_PATH that registers
    # the package (what ament_index_python looks up, without importing ROS)
    for prefix in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep):
        index = Path(prefix) / "share" / "ament_index" / "resource_index" / "packages"
        if prefix and (index / PACKAGE_NAME).is_file():
            dirs.append(Path(prefix) / "share" / PACKAGE_NAME / "models")
            break
    dirs.append(Path(sys.prefix) / "share" / PACKAGE_NAME / "models")
    return dirs


class Pinned(Protocol):
    """A file known by name, size and SHA-256 (a pack file, an upstream file)."""

    name: str
    bytes: int
    sha256: str


