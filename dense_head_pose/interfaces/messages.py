"""ROS messages in and out, without ROS: one place for what the node reads and publishes.

The node (rclpy's message classes) and the bag processor (``rosbags``' classes, no rclpy)
read the same images and CameraInfo and publish the same outputs, so both go through here:

* **In**, duck-typed (any object with the message's fields): :func:`image_to_bgr` for
  ``sensor_msgs/Image`` (every common encoding, ``step`` padding and endianness honoured,
  validated with a clear :class:`~dense_head_pose.errors.ImageError`), :func:`compressed_to_bgr`,
  :func:`intrinsics_from_camera_info`. cv_bridge is not used: its Python side ignores
  ``step`` and is not installable everywhere.
* **Out**, built from the classes a :class:`MessageTypes` gives by ROS type name
  (``"geometry_msgs/msg/PoseStamped"``): every field is passed, as ``rosbags``' dataclasses
  require, so an rclpy message and a rosbags message of the same output hold the same values.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import cv2
import numpy as np

from .. import images
from ..attention.gazing import camera_mutual_gaze
from ..attention.mutual_gaze import GAZE_IN_HEAD
from ..errors import ImageError
from ..pipeline.pose import CameraIntrinsics, HeadPose
from ..pipeline.results import Face

#: encoding -> (dtype, channels, OpenCV conversion to BGR or None)
ENCODINGS: dict[str, tuple[type, int, int | None]] = {
    "bgr8": (np.uint8, 3, None),
    "rgb8": (np.uint8, 3, cv2.COLOR_RGB2BGR),
    "bgra8": (np.uint8, 4, cv2.COLOR_BGRA2BGR),
    "rgba8": (np.uint8, 4, cv2.COLOR_RGBA2BGR),
    "mono8": (np.uint8, 1, cv2.COLOR_GRAY2BGR),
    "8UC1": (np.uint8, 1, cv2.COLOR_GRAY2BGR),
    "8UC3": (np.uint8, 3, None),
    "8UC4": (np.uint8, 4, cv2.COLOR_BGRA2BGR),
    "mono16": (np.uint16, 1, None),
    "16UC1": (np.uint16, 1, None),
    "bgr16": (np.uint16, 3, None),
    "rgb16": (np.uint16, 3, cv2.COLOR_RGB2BGR),
    "yuv422": (np.uint8, 2, cv2.COLOR_YUV2BGR_UYVY),
    "uyvy": (np.uint8, 2, cv2.COLOR_YUV2BGR_UYVY),
    "yuv422_yuy2": (np.uint8, 2, cv2.COLOR_YUV2BGR_YUY2),
    "yuyv": (np.uint8, 2, cv2.COLOR_YUV2BGR_YUY2),
}


# ----------------------------------------------------------------------------------- in
def stamp_ns(stamp: Any) -> int:
    """A builtin_interfaces/Time in integer nanoseconds."""
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def image_to_bgr(msg: Any) -> np.ndarray:
    """A sensor_msgs/Image as contiguous 8-bit BGR, honouring ``step`` and endianness."""
    spec = ENCODINGS.get(msg.encoding)
    if spec is None:
        shown = msg.encoding if len(msg.encoding) <= 40 else msg.encoding[:40] + "..."
        raise ImageError(f"unsupported encoding {shown!r}; supported: "
                         f"{', '.join(sorted(ENCODINGS))}")
    dtype, channels, conversion = spec
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    if height == 0 or width == 0:
        raise ImageError(f"empty image ({width}x{height})")
    images.check_pixels(width, height)  # before a 13000x13000 mono8 becomes 500 MB of BGR
    row_bytes = width * channels * np.dtype(dtype).itemsize
    if step < row_bytes:
        raise ImageError(f"step {step} is smaller than a row of {width} {msg.encoding} "
                         f"pixels ({row_bytes} bytes)")
    data = np.frombuffer(msg.data, dtype=np.uint8)
    needed = step * (height - 1) + row_bytes
    if data.size < needed:
        raise ImageError(f"truncated image: {data.size} bytes for {width}x{height} "
                         f"{msg.encoding} with step {step} (need {needed})")
    rows = np.lib.stride_tricks.as_strided(data, shape=(height, row_bytes),
                                           strides=(step, 1), writeable=False)
    wire = np.dtype(dtype).newbyteorder(">" if msg.is_bigendian else "<")
    # native byte order, one copy at most (none for 8-bit images without padding)
    pixels = rows.view(wire).reshape(height, width, channels).astype(dtype, copy=False)
    if conversion is not None:
        try:
            pixels = cv2.cvtColor(np.ascontiguousarray(pixels), conversion)
        except cv2.error as exc:  # e.g. a YUV 4:2:2 image of odd width
            raise ImageError(f"{msg.encoding} image of {width}x{height} does not convert: "
                             f"{exc.err}") from exc
    return images.as_bgr8(pixels)


def compressed_to_bgr(msg: Any) -> np.ndarray:
    """A sensor_msgs/CompressedImage (JPEG, PNG, ...) as 8-bit BGR."""
    return images.decode(np.frombuffer(msg.data, dtype=np.uint8))


def intrinsics_from_camera_info(msg: Any, width: int, height: int) -> CameraIntrinsics:
    """Intrinsics from ``msg.k`` for an image of ``width`` x ``height``.

    Raises ``ValueError`` when K is unusable or describes another resolution (a calibration
    whose size differs by an integer factor, i.e. binning or a resized stream, is scaled).
    """
    k = np.asarray(msg.k, dtype=np.float64)
    if k.shape != (9,) or not np.all(np.isfinite(k)):
        raise ValueError("camera_info K is not 9 finite numbers")
    intrinsics = CameraIntrinsics.from_matrix(k)  # validates fx, fy > 0
    info_w, info_h = int(msg.width), int(msg.height)
    if info_w == 0 or info_h == 0 or (info_w, info_h) == (width, height):
        return intrinsics
    sx, sy = width / info_w, height / info_h
    if not math.isclose(sx, sy, rel_tol=1e-3):
        raise ValueError(f"camera_info is for {info_w}x{info_h}, the image is {width}x{height}")
    return CameraIntrinsics(intrinsics.fx * sx, intrinsics.fy * sy,
                            (intrinsics.cx + 0.5) * sx - 0.5, (intrinsics.cy + 0.5) * sy - 0.5)


# ---------------------------------------------------------------------------------- out
#: ``types("geometry_msgs/msg/Pose")`` -> the message class of an implementation.
MessageTypes = Callable[[str], Any]


def time(types: MessageTypes, nanoseconds: int) -> Any:
    return types("builtin_interfaces/msg/Time")(sec=int(nanoseconds // 1_000_000_000),
                                                nanosec=int(nanoseconds % 1_000_000_000))


def header(types: MessageTypes, stamp: Any, frame_id: str) -> Any:
    """A std_msgs/Header with a copy of ``stamp`` (any Time-like object), field for field:
    outputs carry their input's stamp exactly as it came."""
    stamp_copy = types("builtin_interfaces/msg/Time")(sec=int(stamp.sec),
                                                      nanosec=int(stamp.nanosec))
    return types("std_msgs/msg/Header")(stamp=stamp_copy, frame_id=frame_id)


def _quaternion(types: MessageTypes, xyzw: Sequence[float]) -> Any:
    x, y, z, w = (float(v) for v in xyzw)
    return types("geometry_msgs/msg/Quaternion")(x=x, y=y, z=z, w=w)


def pose(types: MessageTypes, head_pose: HeadPose) -> Any:
    """A core HeadPose as geometry_msgs/Pose."""
    t = head_pose.translation
    return types("geometry_msgs/msg/Pose")(
        position=types("geometry_msgs/msg/Point")(x=float(t[0]), y=float(t[1]), z=float(t[2])),
        orientation=_quaternion(types, head_pose.quaternion_xyzw))


def face(types: MessageTypes, face: Face) -> Any:
    """A core Face as dense_head_pose/Face (fields documented in msg/Face.msg)."""
    return types("dense_head_pose/msg/Face")(
        id=int(face.id or 0), score=float(face.score),
        bbox=np.asarray(face.box, dtype=np.float32),
        head_pose=pose(types, face.pose),
        yaw=float(face.yaw), pitch=float(face.pitch), roll=float(face.roll),
        landmarks_image=face.landmarks.astype(np.float32).reshape(-1),
        landmarks_camera=face.landmarks_in_camera().astype(np.float32).reshape(-1),
        shape_coefficients=face.shape_coefficients.astype(np.float32),
        expression_coefficients=face.expression_coefficients.astype(np.float32),
        affine_camera=face.camera.astype(np.float32).reshape(-1),
        mutual_gaze=float(camera_mutual_gaze(face)))


def face_array(types: MessageTypes, hdr: Any, width: int, height: int,
               faces: Sequence[Face]) -> Any:
    """The dense_head_pose/FaceArray of a frame (an unusable frame: no faces, size 0)."""
    return types("dense_head_pose/msg/FaceArray")(
        header=hdr, image_width=int(width), image_height=int(height),
        faces=[face(types, f) for f in faces])


def pose_stamped(types: MessageTypes, hdr: Any, face: Face) -> Any:
    return types("geometry_msgs/msg/PoseStamped")(header=hdr, pose=pose(types, face.pose))


def pose_array(types: MessageTypes, hdr: Any, faces: Sequence[Face]) -> Any:
    return types("geometry_msgs/msg/PoseArray")(header=hdr,
                                                poses=[pose(types, f.pose) for f in faces])


def transform(types: MessageTypes, hdr: Any, child: str, translation: Sequence[float],
              quaternion_xyzw: Sequence[float]) -> Any:
    """A geometry_msgs/TransformStamped from ``hdr.frame_id`` to ``child``."""
    return types("geometry_msgs/msg/TransformStamped")(
        header=hdr, child_frame_id=child,
        transform=types("geometry_msgs/msg/Transform")(
            translation=types("geometry_msgs/msg/Vector3")(
                x=float(translation[0]), y=float(translation[1]), z=float(translation[2])),
            rotation=_quaternion(types, quaternion_xyzw)))


def face_transforms(types: MessageTypes, hdr: Any, faces: Sequence[Face],
                    names: Sequence[str], face_prefix: str, gaze_prefix: str) -> list[Any]:
    """REP-155's ``face_<id>`` (in the camera frame) and ``gaze_<id>`` (in the face frame)
    of every face."""
    from ..pipeline.pose import quaternion_from_matrix

    gaze = quaternion_from_matrix(GAZE_IN_HEAD)
    out = []
    for f, name in zip(faces, names):
        face_frame = f"{face_prefix}{name}"
        out.append(transform(types, hdr, face_frame, f.pose.translation,
                             f.pose.quaternion_xyzw))
        out.append(transform(types, header(types, hdr.stamp, face_frame),
                             f"{gaze_prefix}{name}", (0.0, 0.0, 0.0), gaze))
    return out


def tf_message(types: MessageTypes, transforms: Sequence[Any]) -> Any:
    return types("tf2_msgs/msg/TFMessage")(transforms=list(transforms))


# ------------------------------------------------------------------------ ROS4HRI (REP-155)
RIGHT_EYE = slice(36, 42)  # the subject's right eye (iBUG 300-W = FacialLandmarks order)
LEFT_EYE = slice(42, 48)


def normalised_roi(box: np.ndarray, width: int, height: int) -> tuple[float, ...]:
    """(xmin, ymin, xmax, ymax) of a pixel box, normalised by the image size, in [0, 1]."""
    x1, y1, x2, y2 = (float(v) for v in box[:4])
    return (min(max(x1 / width, 0.0), 1.0), min(max(y1 / height, 0.0), 1.0),
            min(max(x2 / width, 0.0), 1.0), min(max(y2 / height, 0.0), 1.0))


def pupils(landmarks: np.ndarray) -> np.ndarray:
    """(2, 2) pixel positions of the right and left pupil: the middle of each eye's six
    contour landmarks (the model has no iris)."""
    return np.stack([landmarks[RIGHT_EYE, :2].mean(axis=0), landmarks[LEFT_EYE, :2].mean(axis=0)])


def gaze(types: MessageTypes, hdr: Any, sender: str, receiver: str) -> Any:
    """hri_msgs/Gaze: ``sender`` looks at ``receiver`` (persons; "" is the robot)."""
    return types("hri_msgs/msg/Gaze")(header=hdr, sender=sender, receiver=receiver)


def engagement_level(types: MessageTypes, hdr: Any, level: int) -> Any:
    return types("hri_msgs/msg/EngagementLevel")(header=hdr, level=int(level))


def time_of(types: MessageTypes, nanoseconds: int) -> Any:
    """A builtin_interfaces/Time of integer nanoseconds."""
    seconds, nanosec = divmod(int(nanoseconds), 1_000_000_000)
    return types("builtin_interfaces/msg/Time")(sec=seconds, nanosec=nanosec)


def ids_list(types: MessageTypes, hdr: Any, names: Sequence[str]) -> Any:
    return types("hri_msgs/msg/IdsList")(header=hdr, ids=list(names))


def roi(types: MessageTypes, hdr: Any, face: Face, width: int, height: int) -> Any:
    xmin, ymin, xmax, ymax = normalised_roi(face.box, width, height)
    return types("hri_msgs/msg/NormalizedRegionOfInterest2D")(
        header=hdr, xmin=xmin, ymin=ymin, xmax=xmax, ymax=ymax, c=float(face.score))


def facial_landmarks(types: MessageTypes, hdr: Any, face: Face, width: int, height: int
                     ) -> Any:
    """The 70-point hri_msgs/FacialLandmarks of a face: the 68 landmarks and the two pupils
    (half the face's confidence: inferred), normalised, a landmark outside the image with
    confidence 0."""
    points = np.concatenate([face.landmarks[:, :2], pupils(face.landmarks)])
    inside = ((points[:, 0] >= 0) & (points[:, 0] <= width - 1)
              & (points[:, 1] >= 0) & (points[:, 1] <= height - 1))
    confidence = np.where(inside, float(face.score), 0.0)
    confidence[68:] *= 0.5
    xs = np.clip(points[:, 0] / width, 0.0, 1.0)
    ys = np.clip(points[:, 1] / height, 0.0, 1.0)
    point = types("hri_msgs/msg/NormalizedPointOfInterest2D")
    return types("hri_msgs/msg/FacialLandmarks")(
        header=hdr, landmarks=[point(x=float(x), y=float(y), c=float(c))
                               for x, y, c in zip(xs, ys, confidence)],
        height=int(height), width=int(width))
