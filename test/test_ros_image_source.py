"""image_source as a process: a folder with a calibration, a bad source."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from helpers import TESTDATA
from ros_harness import NodeProcess, Probe

pytestmark = pytest.mark.ros
REPO = Path(__file__).resolve().parents[1]


def test_image_source_folder_with_calibration(rclpy_context, tmp_path) -> None:
    from sensor_msgs.msg import CameraInfo, Image

    folder = tmp_path / "frames"
    folder.mkdir()
    image = cv2.imread(str(TESTDATA / "one_face.jpg"))
    for i in range(3):
        cv2.imwrite(str(folder / f"{i:03d}.png"), np.roll(image, 10 * i, axis=1))
    (folder / "notes.txt").write_text("not an image")
    calibration = tmp_path / "camera.yaml"
    calibration.write_text(yaml.safe_dump({
        "image_width": 413, "image_height": 551, "camera_name": "test",
        "camera_matrix": {"rows": 3, "cols": 3, "data": [500.0, 0, 206, 0, 505.0, 275, 0, 0, 1]},
        "distortion_model": "plumb_bob",
        "distortion_coefficients": {"rows": 1, "cols": 5, "data": [0.1, -0.05, 0, 0, 0]},
        "rectification_matrix": {"rows": 3, "cols": 3, "data": [1, 0, 0, 0, 1, 0, 0, 0, 1]},
        "projection_matrix": {"rows": 3, "cols": 4,
                              "data": [500.0, 0, 206, 0, 0, 505.0, 275, 0, 0, 0, 1, 0]},
    }))
    node = NodeProcess("image_source", params={"source": str(folder), "rate": 20.0,
                                               "loop": False, "frame_id": "cam_opt",
                                               "wait_for_subscriber": True,
                                               "camera_info_file": str(calibration)},
                       log_dir=tmp_path)
    probe = Probe("source_probe")
    try:
        probe.subscribe(Image, "image")
        probe.subscribe(CameraInfo, "camera_info")
        assert probe.spin_until(lambda: len(probe.received["image"]) >= 3, 20), node.output()
        probe.spin_for(0.5)
        images, infos = probe.received["image"], probe.received["camera_info"]
        assert len(images) == 3  # no loop: three frames, the text file skipped
        first = images[0]
        assert (first.width, first.height, first.encoding) == (413, 551, "bgr8")
        pixels = np.frombuffer(first.data, np.uint8).reshape(551, 413, 3)
        assert np.array_equal(pixels, image)
        assert first.header.frame_id == "cam_opt"
        # each image's CameraInfo carries its stamp (the first may precede our camera_info
        # subscription's match: wait_for_subscriber only waits for 'image')
        stamps = {(m.header.stamp.sec, m.header.stamp.nanosec) for m in images}
        paired = [i for i in infos if (i.header.stamp.sec, i.header.stamp.nanosec) in stamps]
        assert len(paired) >= 2
        info = paired[0]
        assert list(info.k) == [500.0, 0, 206, 0, 505.0, 275, 0, 0, 1]
        assert list(info.d) == pytest.approx([0.1, -0.05, 0, 0, 0])
        assert "end of folder" in node.output()
    finally:
        probe.destroy()
        assert node.stop() == 0


def test_image_source_bad_source_exits_with_message(rclpy_context, tmp_path) -> None:
    node = NodeProcess("image_source", params={"source": str(tmp_path / "missing.mp4")},
                       log_dir=tmp_path)
    assert node.proc.wait(timeout=20) == 1
    assert "does not exist" in node.output()
    node.stop()
