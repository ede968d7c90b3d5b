"""Real rosbag2 recordings for the tests, written with ``rosbags`` as ``ros2 bag record``
writes them (CDR messages, format version 9, MCAP or sqlite3), and ways to damage them as
recordings get damaged."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from rosbags.rosbag2 import StoragePlugin, Writer

from dense_head_pose.recordings.bag_types import typestore

PERIOD_NS = 40_000_000  # 25 Hz, the test video's rate
T0_NS = 1_700_000_000 * 1_000_000_000


def _header(store: Any, stamp_ns: int, frame_id: str) -> Any:
    types = store.types
    return types["std_msgs/msg/Header"](
        stamp=types["builtin_interfaces/msg/Time"](sec=stamp_ns // 1_000_000_000,
                                                   nanosec=stamp_ns % 1_000_000_000),
        frame_id=frame_id)


def camera_info(store: Any, stamp_ns: int, frame_id: str, width: int, height: int) -> Any:
    types = store.types
    f = float(width)
    return types["sensor_msgs/msg/CameraInfo"](
        header=_header(store, stamp_ns, frame_id), height=height, width=width,
        distortion_model="plumb_bob", d=np.zeros(5),
        k=np.array([f, 0, width / 2, 0, f, height / 2, 0, 0, 1.0]), r=np.eye(3).ravel(),
        p=np.array([f, 0, width / 2, 0, 0, f, height / 2, 0, 0, 0, 1.0, 0]),
        binning_x=0, binning_y=0,
        roi=types["sensor_msgs/msg/RegionOfInterest"](x_offset=0, y_offset=0, height=0,
                                                        width=0, do_rectify=False))


def image(store: Any, stamp_ns: int, frame_id: str, frame: np.ndarray,
          encoding: str = "bgr8") -> Any:
    h, w = frame.shape[:2]
    channels = 1 if frame.ndim == 2 else frame.shape[2]
    return store.types["sensor_msgs/msg/Image"](
        header=_header(store, stamp_ns, frame_id), height=h, width=w, encoding=encoding,
        is_bigendian=0, step=w * channels * frame.itemsize,
        data=np.ascontiguousarray(frame).view(np.uint8).ravel())


def compressed(store: Any, stamp_ns: int, frame_id: str, frame: np.ndarray) -> Any:
    return store.types["sensor_msgs/msg/CompressedImage"](
        header=_header(store, stamp_ns, frame_id), format="jpeg",
        data=np.frombuffer(cv2.imencode(".jpg", frame)[1].tobytes(), np.uint8))


def write_camera_bag(path: Path, frames: Sequence[np.ndarray], *, storage: str = "mcap",
                     cameras: Sequence[str] = ("/camera",), jpeg: bool = False,
                     stamps: Sequence[int] | None = None, info: bool = True,
                     mirror_second: bool = True,
                     damage: Callable[[int, str, bytes], bytes | None] | None = None) -> Path:
    """A recording of ``frames`` on each camera (``NAME/image_raw`` or
    ``NAME/image_raw/compressed``, and ``NAME/camera_info``), 25 Hz, the second camera's
    frames mirrored. ``damage(index, topic, data)`` may replace a message's bytes (None:
    leave it out)."""
    store, _ = typestore()
    plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
    writer = Writer(path, version=9, storage_plugin=plugin)
    writer.open()
    connections = {}
    for name in cameras:
        image_type = "sensor_msgs/msg/CompressedImage" if jpeg else "sensor_msgs/msg/Image"
        topic = f"{name}/image_raw/compressed" if jpeg else f"{name}/image_raw"
        connections[name] = (
            writer.add_connection(topic, image_type, typestore=store),
            writer.add_connection(f"{name}/camera_info", "sensor_msgs/msg/CameraInfo",
                                  typestore=store) if info else None)
    for i, frame in enumerate(frames):
        stamp = stamps[i] if stamps is not None else T0_NS + i * PERIOD_NS
        log_ns = T0_NS + i * PERIOD_NS
        for k, name in enumerate(cameras):
            shown = np.ascontiguousarray(frame[:, ::-1]) if k == 1 and mirror_second else frame
            frame_id = f"{name.strip('/')}_optical"
            image_conn, info_conn = connections[name]
            h, w = shown.shape[:2]
            if info_conn is not None:
                writer.write(info_conn, log_ns, store.serialize_cdr(
                    camera_info(store, stamp, frame_id, w, h), "sensor_msgs/msg/CameraInfo"))
            msg = (compressed(store, stamp, frame_id, shown) if jpeg
                   else image(store, stamp, frame_id, shown))
            data = store.serialize_cdr(msg, image_conn.msgtype)
            if damage is not None:
                data = damage(i, image_conn.topic, bytes(data))
                if data is None:
                    continue
            writer.write(image_conn, log_ns + 1000 + k, data)
    writer.close()
    return path


def as_killed_recording(path: Path) -> Path:
    """``path`` as ``ros2 bag record`` leaves it when killed: no metadata.yaml."""
    (path / "metadata.yaml").unlink()
    return path


def truncate(path: Path, fraction: float) -> Path:
    """A copy of the bag whose storage file is cut at ``fraction`` of its size, and no
    metadata.yaml (a recording killed, or a copy that did not finish)."""
    cut = path.with_name(path.name + f"_cut{int(fraction * 100)}")
    shutil.copytree(path, cut)
    as_killed_recording(cut)
    storage = next(p for p in cut.iterdir() if p.suffix in (".mcap", ".db3"))
    size = storage.stat().st_size
    with storage.open("r+b") as f:
        f.truncate(int(size * fraction))
    return cut


def read_bag(path: Path) -> dict[str, list[tuple[int, Any]]]:
    """Every message of a bag: ``{topic: [(log time, message), ...]}`` (rosbags)."""
    from rosbags.highlevel import AnyReader

    store, _ = typestore()
    out: dict[str, list[tuple[int, Any]]] = {}
    with AnyReader([path], default_typestore=store) as reader:
        for connection, log_ns, data in reader.messages():
            out.setdefault(connection.topic, []).append(
                (log_ns, reader.deserialize(data, connection.msgtype)))
    return out


def digests(path: Path) -> dict[str, str]:
    """The type hash (RIHS01) of each topic of a bag."""
    from rosbags.highlevel import AnyReader

    store, _ = typestore()
    with AnyReader([path], default_typestore=store) as reader:
        return {c.topic: c.digest for c in reader.connections}


def raw_messages(path: Path, topic: str) -> list[bytes]:
    """The serialized (CDR) messages of one topic of a bag, as stored."""
    from rosbags.highlevel import AnyReader

    store, _ = typestore()
    with AnyReader([path], default_typestore=store) as reader:
        connections = [c for c in reader.connections if c.topic == topic]
        return [bytes(data) for _, _, data in reader.messages(connections=connections)]
