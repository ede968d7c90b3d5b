"""image_source as a process, and the launch files checked without ``launch`` installed."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from conftest import TESTDATA
from ros_harness import NodeProcess, Probe, require_ros

pytestmark = pytest.mark.ros
REPO = Path(__file__).resolve().parents[1]


def _launch_calls(path: Path) -> list[ast.Call]:
    tree = ast.parse(path.read_text(), filename=str(path))
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call)]


def _kw(call: ast.Call, name: str):
    for kw in call.keywords:
        if kw.arg == name:
            return kw.value
    return None


def _installed_programs() -> set[str]:
    cmake = (REPO / "CMakeLists.txt").read_text()
    match = re.search(r"install\(PROGRAMS ([^)]*) DESTINATION lib/\$\{PROJECT_NAME\}\)", cmake)
    assert match, "CMakeLists.txt installs no executables"
    return {Path(p).name for p in match.group(1).split()}


@pytest.mark.parametrize("launch_file", sorted((REPO / "launch").glob("*.launch.py")))
def test_launch_files_name_what_exists(launch_file: Path) -> None:
    require_ros()
    from dense_head_pose.ros.head_pose_node import SPECS

    compile(launch_file.read_text(), str(launch_file), "exec")
    programs = _installed_programs()
    for program in programs:
        assert (REPO / "bin" / program).is_file()
    source_params = {"source", "rate", "loop", "frame_id", "camera_info_file", "reliable",
                     "wait_for_subscriber"}
    declared_args = set()
    used_args = set()
    for call in _launch_calls(launch_file):
        func = getattr(call.func, "id", getattr(call.func, "attr", ""))
        if func == "DeclareLaunchArgument":
            declared_args.add(call.args[0].value)
        if func == "LaunchConfiguration":
            used_args.add(call.args[0].value)
        if func != "Node":
            continue
        package, executable = _kw(call, "package").value, _kw(call, "executable").value
        if package == "dense_head_pose":
            assert executable in programs, executable
            known = set(SPECS) if executable == "head_pose_node" else source_params
            params = _kw(call, "parameters")
            for element in params.elts if params is not None else []:
                if isinstance(element, ast.Dict):
                    for key in element.keys:
                        assert key.value in known, f"{executable} has no parameter {key.value}"
            remaps = _kw(call, "remappings")
            for pair in remaps.elts if remaps is not None else []:
                assert pair.elts[0].value in {"image", "image/compressed", "camera_info"}
        else:
            assert (package, executable) == ("rviz2", "rviz2")
    assert used_args <= declared_args, used_args - declared_args


def test_demo_launch_arguments() -> None:
    calls = _launch_calls(REPO / "launch" / "demo.launch.py")
    declared = {c.args[0].value for c in calls
                if getattr(c.func, "id", "") == "DeclareLaunchArgument"}
    assert {"source", "rviz", "mode", "namespace"} <= declared


def test_parameter_file_matches_the_node() -> None:
    require_ros()
    from dense_head_pose.ros.head_pose_node import SPECS

    data = yaml.safe_load((REPO / "config" / "head_pose.yaml").read_text())
    params = data["/**/head_pose_node"]["ros__parameters"]
    assert set(params) == set(SPECS)
    for name, value in params.items():
        assert type(value) is type(SPECS[name].default), name
        assert value == SPECS[name].default, name


def test_rviz_config_shows_the_node_topics() -> None:
    config = yaml.safe_load((REPO / "rviz" / "demo.rviz").read_text())
    displays = config["Visualization Manager"]["Displays"]
    topics = {d["Topic"]["Value"]: d["Class"] for d in displays if "Topic" in d}
    assert topics == {
        "mesh_image": "rviz_default_plugins/Image",
        "face_landmarks": "rviz_default_plugins/MarkerArray",
        "face_mesh": "rviz_default_plugins/Marker",
        "face_points": "rviz_default_plugins/PointCloud2",
        "head_pose": "rviz_default_plugins/Pose",
    }
    # QoS that matches the node's reliable publishers
    assert all(d["Topic"]["Reliability Policy"] == "Reliable" for d in displays if "Topic" in d)
    assert any(d["Class"] == "rviz_default_plugins/TF" for d in displays)


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
        info = next(i for i in infos if i.header.stamp == first.header.stamp)
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
