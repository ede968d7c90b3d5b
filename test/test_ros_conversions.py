"""Message conversions without DDS: every encoding, padding, endianness, bad messages."""

from __future__ import annotations

import array
import threading
import time

import cv2
import numpy as np
import pytest
from helpers import TESTDATA
from ros_harness import camera_info_msg, image_msg, require_ros, stamp

pytestmark = pytest.mark.ros
require_ros()

from sensor_msgs.msg import CameraInfo, Image  # noqa: E402

from dense_head_pose import ImageError  # noqa: E402
from dense_head_pose.interfaces.camera_info import CameraInfoCache  # noqa: E402
from dense_head_pose.ros import conversions  # noqa: E402


@pytest.fixture(scope="module")
def bgr() -> np.ndarray:
    return cv2.resize(cv2.imread(str(TESTDATA / "one_face.jpg")), (64, 48))


@pytest.mark.parametrize(("encoding", "make"), [
    ("bgr8", lambda f: f),
    ("rgb8", lambda f: cv2.cvtColor(f, cv2.COLOR_BGR2RGB)),
    ("bgra8", lambda f: cv2.cvtColor(f, cv2.COLOR_BGR2BGRA)),
    ("rgba8", lambda f: cv2.cvtColor(f, cv2.COLOR_BGR2RGBA)),
    ("8UC3", lambda f: f),
    ("bgr16", lambda f: f.astype(np.uint16) * 257),
    ("rgb16", lambda f: cv2.cvtColor(f, cv2.COLOR_BGR2RGB).astype(np.uint16) * 257),
])
@pytest.mark.parametrize("padding", [0, 13])
def test_colour_encodings_round_trip(bgr, encoding, make, padding) -> None:
    msg = image_msg(make(bgr), "cam", stamp(1), encoding=encoding, step_padding=padding)
    out = conversions.image_to_bgr(msg)
    assert out.dtype == np.uint8 and out.shape == bgr.shape and out.flags.c_contiguous
    assert np.array_equal(out, bgr)


@pytest.mark.parametrize("encoding", ["mono8", "8UC1", "mono16", "16UC1"])
def test_grey_encodings(bgr, encoding) -> None:
    grey = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    data = grey if "8" in encoding else grey.astype(np.uint16) * 257
    out = conversions.image_to_bgr(image_msg(data, "cam", stamp(1), encoding=encoding))
    assert np.array_equal(out[:, :, 0], grey) and np.array_equal(out[:, :, 2], grey)


def test_big_endian_16_bit(bgr) -> None:
    grey = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY).astype(np.uint16) * 257
    msg = image_msg(grey.astype(">u2"), "cam", stamp(1), encoding="mono16")
    msg.is_bigendian = 1
    assert np.array_equal(conversions.image_to_bgr(msg)[:, :, 1], grey >> 8)


def test_yuv422(bgr) -> None:
    yuyv = cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_YUY2) if hasattr(cv2, "COLOR_BGR2YUV_YUY2") \
        else None
    if yuyv is None:
        pytest.skip("this OpenCV cannot encode YUY2")
    out = conversions.image_to_bgr(image_msg(yuyv, "cam", stamp(1), encoding="yuyv"))
    assert np.abs(out.astype(int) - bgr.astype(int)).mean() < 6  # chroma is subsampled


@pytest.mark.parametrize("breakage", ["encoding", "truncated", "step", "empty", "odd_yuv"])
def test_bad_images_raise_image_error(bgr, breakage) -> None:
    msg = image_msg(bgr, "cam", stamp(1))
    if breakage == "encoding":
        msg.encoding = "bayer_rggb8x"
    elif breakage == "truncated":
        msg.data = msg.data[:-1]
    elif breakage == "step":
        msg.step = 10
    elif breakage == "empty":
        msg.height = 0
    else:
        msg = Image(height=4, width=5, encoding="yuyv", step=10)
        msg.data = array.array("B", bytes(40))
    with pytest.raises(ImageError):
        conversions.image_to_bgr(msg)


def test_camera_info_scaling_and_rejection() -> None:
    info = CameraInfo(width=1280, height=720, k=[1000.0, 0, 639.5, 0, 1000.0, 359.5, 0, 0, 1])
    same = conversions.intrinsics_from_camera_info(info, 1280, 720)
    assert (same.fx, same.cx) == (1000.0, 639.5)
    half = conversions.intrinsics_from_camera_info(info, 640, 360)
    assert (half.fx, half.fy, half.cx, half.cy) == (500.0, 500.0, 319.5, 179.5)
    with pytest.raises(ValueError):
        conversions.intrinsics_from_camera_info(info, 640, 480)  # other aspect: not this camera
    with pytest.raises(ValueError):
        conversions.intrinsics_from_camera_info(CameraInfo(k=[0.0] * 9), 640, 480)


def test_the_first_camera_info_is_waited_for_once() -> None:
    """An image that overtakes the first CameraInfo gets it if it comes within the wait; a
    source that never sends one costs the wait once."""
    cache = CameraInfoCache()
    info = camera_info_msg(1000.0, 1000.0, 640.0, 360.0, 1280, 720, "cam", stamp(7))
    later = threading.Timer(0.05, cache.add, args=(info,))
    later.start()
    assert cache.wait_for_first(timeout=30.0)
    intrinsics, problem = cache.match("cam", stamp(7), 1280, 720)
    assert problem is None and intrinsics.fx == 1000.0
    assert cache.wait_for_first(timeout=30.0)  # already there: no wait

    silent = CameraInfoCache()
    assert not silent.wait_for_first(timeout=0.05)
    start = time.monotonic()
    assert not silent.wait_for_first(timeout=30.0)  # waited once already
    assert time.monotonic() - start < 10.0


def test_point_cloud_round_trip() -> None:
    from std_msgs.msg import Header

    pts = np.random.default_rng(0).normal(size=(100, 3)).astype(np.float32)
    cloud = conversions.point_cloud(pts, Header(frame_id="cam"))
    assert cloud.width == 100 and cloud.point_step == 12 and cloud.row_step == 1200
    assert [f.name for f in cloud.fields] == ["x", "y", "z"]
    assert np.array_equal(conversions.cloud_to_numpy(cloud), pts)


# ----------------------------------------------------------------------------- bounded state
def test_camera_info_cache_is_bounded_by_frame_ids() -> None:
    cache = CameraInfoCache(per_frame=4, max_frames=16)
    for k in range(20_000):  # a sender making up frame_ids
        cache.add(camera_info_msg(500.0, 500.0, 320.0, 240.0, 640, 480, f"f{k}", stamp(k)))
    assert len(cache._by_frame) == 16
    cache.add(camera_info_msg(900.0, 900.0, 320.0, 240.0, 640, 480, "cam", stamp(1)))
    intrinsics, problem = cache.match("cam", stamp(1), 640, 480)
    assert problem is None and intrinsics.fx == 900.0


def test_problem_log_throttles_by_kind_with_bounded_state() -> None:
    from dense_head_pose.ros.problem_log import ProblemLog

    lines: list[str] = []
    log = ProblemLog(type("L", (), {"warning": lambda self, t: lines.append(t)})(),
                     period_s=60.0)
    for k in range(3000):
        msg = Image(encoding=f"enc{k}" + "x" * (10_000 if k == 0 else 0), width=2, height=2,
                    step=6)
        try:
            conversions.image_to_bgr(msg)
        except ImageError as exc:
            log.warning("frame", f"unusable frame: {exc}")
    assert len(lines) == 1 and len(lines[0]) < 500  # the 10 kB encoding clipped
    log.warning("frame", "unusable frame: truncated image: 3 bytes")  # another problem
    assert len(lines) == 2
    for k in range(200):  # distinct kinds beyond the bound share one throttle
        log.warning(f"kind{k}", f"text {k}")
    assert len(log._last) <= 64 + 1


def test_a_huge_raw_image_is_refused_before_conversion() -> None:
    width = height = 13_000
    msg = Image(encoding="mono8", width=width, height=height, step=width)
    msg.data = array.array("B", bytes(width * height))
    with pytest.raises(ImageError, match="exceeds"):
        conversions.image_to_bgr(msg)


def test_face_ids_forget_and_do_not_reuse() -> None:
    from dense_head_pose.interfaces.face_ids import FaceIds

    ids = FaceIds(deterministic=True, remember=10)
    first = ids(1)
    assert ids(1) == first and ids(2) != first
    ids.forget(first)
    assert ids(1) != first  # a forgotten track id gets a new name, never the old one
    for k in range(100):
        ids.forget(ids(100 + k))
    assert len(ids) == 2 and len(ids._used) <= 10
