"""ROS message types for bags without ROS: ``rosbags``' type store with this package's
messages and, where installed, ``hri_msgs``' (:func:`typestore`), and the bag errors."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..errors import DenseHeadPoseError

IMAGE = "sensor_msgs/msg/Image"
COMPRESSED = "sensor_msgs/msg/CompressedImage"
CAMERA_INFO = "sensor_msgs/msg/CameraInfo"
IMAGE_TYPES = (IMAGE, COMPRESSED)
STORES = {"humble": "ROS2_HUMBLE", "jazzy": "ROS2_JAZZY", "kilted": "ROS2_KILTED"}
_PACKAGE_MSGS = ("Face", "FaceArray")  # FaceArray uses Face: registered together


class BagError(DenseHeadPoseError):
    """A bag that cannot be read at all, or an output that cannot be written."""


def require_rosbags() -> Any:
    try:
        import rosbags
    except ImportError:
        raise BagError("reading and writing bags needs rosbags (and mcap for recordings "
                       "that were cut off): pip install 'dense_head_pose[bag]'") from None
    return rosbags


# ------------------------------------------------------------------------------ types
def _package_msg_dirs(package: str) -> list[Path]:
    """Where ``package``'s .msg files may be: this package's own (a wheel, the source
    tree), then every ament prefix's ``share/<package>/msg`` (a ROS install, colcon)."""
    here = Path(__file__).resolve().parents[1]  # the dense_head_pose package
    dirs = []
    if package == "dense_head_pose":
        dirs += [here / "msg_definitions", here.parent / "msg"]
    for prefix in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep):
        if prefix:
            dirs.append(Path(prefix) / "share" / package / "msg")
    return [d for d in dirs if d.is_dir()]


def _register(store: Any, package: str, names: tuple[str, ...] | None = None) -> bool:
    """Register ``package``'s messages (all of them, or ``names``) in ``store``; whether
    their definitions were found."""
    from rosbags.typesys import get_types_from_msg

    for directory in _package_msg_dirs(package):
        files = ([directory / f"{n}.msg" for n in names] if names
                 else sorted(directory.glob("*.msg")))
        if not files or not all(f.is_file() for f in files):
            continue
        types: dict[str, Any] = {}
        for path in files:
            types.update(get_types_from_msg(path.read_text(), f"{package}/msg/{path.stem}"))
        store.register(types)
        return True
    return False


def typestore(distro: str | None = None) -> tuple[Any, bool]:
    """``rosbags``' type store of ``distro`` (default ``$ROS_DISTRO``, else Kilted) with this
    package's messages, and whether ``hri_msgs``' definitions were found and added."""
    require_rosbags()
    from rosbags.typesys import Stores, get_typestore

    distro = distro or os.environ.get("ROS_DISTRO", "kilted")
    store = get_typestore(getattr(Stores, STORES.get(distro, "ROS2_KILTED")))
    if not _register(store, "dense_head_pose", _PACKAGE_MSGS):
        raise BagError("the definitions of dense_head_pose/msg/FaceArray are missing from "
                       "this installation (msg/Face.msg, msg/FaceArray.msg)")
    return store, _register(store, "hri_msgs")


