"""The launch files as users run them: real ``ros2 launch``, ``ros2 topic``, ``ros2 param``.

Every run is a ``ros2 launch dense_head_pose ...`` subprocess in its own process group, on
loopback in this test run's random domain; outputs are counted by this process as a second
DDS participant. The shutdown tests send SIGINT and SIGTERM the ways a terminal, a shell
script or a supervisor would, many times, and require every node to exit 0 with nothing
left running.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import shlex
import shutil
import signal
import subprocess
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from helpers import TESTDATA, docs_text
from ros_harness import (
    TIMEOUT_SCALE,
    Launch,
    Probe,
    camera_info_msg,
    default_signals,
    group_members,
    image_msg,
    kill_all_launches,
    require_ros,
    stamp,
    subreaper,
)

from dense_head_pose import EstimatorOptions

pytestmark = pytest.mark.ros
require_ros()

from geometry_msgs.msg import PoseStamped  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data  # noqa: E402
from sensor_msgs.msg import CameraInfo, CompressedImage, Image  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DOCS = docs_text()
VIDEO = str(TESTDATA / "talking_head.mp4")
SHUTDOWN_RUNS = 10


def _need_launch_stack() -> None:
    if shutil.which("ros2") is None:
        pytest.fail("the ros2 command is missing: the test set-up installs it from "
                    "../shared/ros/launch_stack") if _required() else pytest.skip("no ros2")


def _required() -> bool:
    return os.environ.get("DHP_REQUIRE_ROS") == "1"


@pytest.fixture(scope="module", autouse=True)
def launch_stack(rclpy_context):
    _need_launch_stack()
    # the ros2 command's discovery daemon, running as on a user's machine
    subprocess.run(["ros2", "daemon", "start"], capture_output=True, timeout=30)
    with subreaper():  # so a node that outlives its launch can still be reaped and judged
        yield
        kill_all_launches()
    # `ros2 param` / `ros2 topic` start a daemon for this domain: stop it with the tests
    subprocess.run(["ros2", "daemon", "stop"], capture_output=True, timeout=30)


def _ros2(*args: str, timeout: float = 30.0) -> subprocess.CompletedProcess:
    return subprocess.run(["ros2", *args], capture_output=True, text=True, timeout=timeout)


def readme_ros_commands() -> list[str]:
    """Every ``ros2 ...`` command line in the code blocks of the README and the docs pages
    (comments dropped): each is run by a test exactly as written."""
    blocks = re.findall(r"```bash\n(.*?)```", DOCS, re.S)
    lines = [line.split("  #")[0].strip() for block in blocks for line in block.splitlines()]
    return [line for line in lines if line.startswith("ros2 ")]


#: the documented commands and the test that runs each one exactly as written
RUN_BY = {
    "ros2 launch dense_head_pose demo.launch.py":
        "test_demo_from_nothing_says_what_is_missing_and_exits",
    "ros2 launch dense_head_pose demo.launch.py source:=/path/to/video.mp4 rviz:=false":
        "test_demo_video_topic_echo_and_param_cli",
    "ros2 topic echo /head_pose --once": "test_demo_video_topic_echo_and_param_cli",
    "ros2 param set /head_pose_node max_faces 1": "test_demo_video_topic_echo_and_param_cli",
    "ros2 launch dense_head_pose head_pose.launch.py image:=/camera/color/image_raw "
    "camera_info:=/camera/color/camera_info": "test_head_pose_launch_readme_command",
    "ros2 run dense_head_pose head_pose_node --ros-args -r image:=/cam/image "
    "-r camera_info:=/cam/info": "test_ros2_run_readme_command",
    "ros2 launch dense_head_pose head_pose.launch.py lifecycle:=true autostart:=false":
        "test_lifecycle_readme_commands",
    "ros2 lifecycle get /head_pose_node": "test_lifecycle_readme_commands",
    "ros2 lifecycle set /head_pose_node configure": "test_lifecycle_readme_commands",
    "ros2 lifecycle set /head_pose_node activate": "test_lifecycle_readme_commands",
    "ros2 launch dense_head_pose multi_camera.launch.py cameras:='front back'":
        "test_two_cameras_readme_command",
}


def readme_command(command: str) -> list[str]:
    """The documented ``command`` as an argument list (the video placeholder made real)."""
    assert command in readme_ros_commands(), f"the docs no longer say: {command}"
    return shlex.split(command.replace("/path/to/video.mp4", VIDEO))  # as a shell would


def test_every_readme_ros_command_is_run_by_a_test() -> None:
    assert set(readme_ros_commands()) == set(RUN_BY)  # a command may appear twice
    assert all(callable(globals().get(name)) for name in RUN_BY.values())


def _documented_arguments(launch_file: str) -> dict[str, str]:
    """The docs' table of ``launch_file``'s arguments (docs/ros2.md): ``{name: default}``."""
    section = DOCS.split(f"`{launch_file}` arguments")[1].split("\n\n")[1]
    rows = [r for r in section.splitlines() if r.startswith("| `")]
    out = {}
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        out[cells[0].strip("`")] = cells[1].strip("`")
    return out


def _wait_for_node(name: str, timeout: float = 15.0) -> None:
    """Wait until the ros2 command's daemon lists node ``name``, as a user would look."""
    end = time.monotonic() + timeout
    while name not in _ros2("node", "list").stdout.split():
        assert time.monotonic() < end, f"ros2 node list never showed {name}"


def _count(probe: Probe, topic: str, n: int, timeout: float = 30.0, since: float = 0.0) -> int:
    """Wait for ``n`` messages of ``topic`` stamped after ``since`` (wall-clock seconds, to
    ignore a previous launch's late messages); how many there are."""
    def fresh() -> int:
        return sum(1 for m in probe.received[topic]
                   if m.header.stamp.sec + m.header.stamp.nanosec * 1e-9 >= since)

    probe.spin_until(lambda: fresh() >= n, timeout)
    return fresh()


@contextlib.contextmanager
def _launched(*args: str, log_dir: Path, probe_name: str):
    """A running ``ros2 launch`` and a probe. Afterwards the launch must end cleanly on SIGINT
    (checked unless the body failed first), and nothing of it survives either way."""
    launch = Launch(*args, log_dir=log_dir)
    probe = Probe(probe_name)
    body_ok = False
    try:
        yield launch, probe
        body_ok = True
    finally:
        probe.destroy()
        try:
            if body_ok:
                _finish_clean(launch)
        finally:
            launch.kill()


def _finish_clean(launch: Launch, sig: int = signal.SIGINT, group: bool = False) -> dict:
    """Stop ``launch`` with ``sig``; assert that everything ended cleanly; the report."""
    launch.send(sig, group=group)
    report = launch.finish(timeout=40)
    out = report["output"]
    assert report["leftover"] == [], f"orphans {report['leftover']}:\n{out[-3000:]}"
    assert report["nodes"] and all(code == 0 for code in report["nodes"].values()), \
        f"{report['nodes']}\n{out[-4000:]}"
    assert "Traceback" not in out, out[-4000:]
    assert "context is invalid" not in out, out[-4000:]
    assert all(_known_dds_hang(dump) for dump in out.split("Timeout (")[1:]), out[-4000:]
    errors = [line for line in out.splitlines() if "[ERROR]" in line
              and not _launch_sigterm_notice(line)]
    assert not errors, "\n".join(errors)
    return report


def _known_dds_hang(dump: str) -> bool:
    """Whether a stop-deadline stack dump (ros/process.py) shows the one hang the deadline is for:
    a thread stuck in rclpy's ``destroy_node()`` (Fast DDS on Jazzy, ~1 in 40 stops). Any
    other hang fails the test."""
    return re.search(r'\(most recent call first\):\n[^\n]*rclpy/node\.py", line \d+ in '
                     r"destroy_node\n", dump) is not None


def _launch_sigterm_notice(line: str) -> bool:
    """ros2 launch's own three lines on SIGTERM ("using SIGTERM can result in orphaned
    processes"): upstream behaviour, and exactly what the nodes' parent tie answers."""
    return line.startswith("[ERROR] [launch]:") and (
        "SIGTERM" in line or "make sure no processes launched are still running" in line)


# --------------------------------------------------------------- files launch uses
def test_parameter_file_matches_the_node() -> None:
    from dense_head_pose.ros.parameters import SPECS

    data = yaml.safe_load((REPO / "config" / "head_pose.yaml").read_text())

    def flat(tree: dict, prefix: str = "") -> dict:  # ROS nests dotted names in YAML
        out = {}
        for key, value in tree.items():
            if isinstance(value, dict):
                out.update(flat(value, f"{prefix}{key}."))
            else:
                out[f"{prefix}{key}"] = value
        return out

    params = flat(data["/**/head_pose_node"]["ros__parameters"])
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



# ------------------------------------------------------------------------------ arguments
@pytest.mark.parametrize("launch_file",
                         ["demo.launch.py", "head_pose.launch.py", "multi_camera.launch.py"])
def test_show_args_lists_exactly_the_documented_arguments(launch_file) -> None:
    result = _ros2("launch", "dense_head_pose", launch_file, "--show-args")
    assert result.returncode == 0, result.stderr
    shown = {name: default for name, _, default in
             re.findall(r"'(\w+)':\n(.*?)\(default: '([^']*)'\)", result.stdout, re.S)}
    documented = _documented_arguments(launch_file)
    assert set(shown) == set(documented)
    for name, default in documented.items():
        if "share/" not in default:  # install paths are documented relative to share/
            assert shown[name] == default, name
        else:
            assert shown[name].endswith(default.split("share/dense_head_pose/")[1]), name


def test_demo_from_nothing_says_what_is_missing_and_exits(tmp_path) -> None:
    """No camera and no rviz2 here: the default demo must fail at once, in one line."""
    launch = Launch(*readme_command("ros2 launch dense_head_pose demo.launch.py")[3:],
                    log_dir=tmp_path)
    report = launch.finish(timeout=30)
    errors = [line for line in report["output"].splitlines() if "[ERROR]" in line]
    assert report["launch"] == 1
    assert report["nodes"] == {} and report["leftover"] == []
    assert len(errors) == 1, report["output"]
    assert "source:=/path/to/video.mp4" in errors[0] and "rviz:=false" in errors[0]


def test_demo_rviz_without_rviz2_starts_nothing(tmp_path) -> None:
    launch = Launch("demo.launch.py", f"source:={VIDEO}", "rviz:=true", log_dir=tmp_path)
    report = launch.finish(timeout=30)
    assert report["launch"] == 1 and report["nodes"] == {} and report["leftover"] == []
    assert "rviz2 is not installed" in report["output"] and "rviz:=false" in report["output"]


def test_demo_video_topic_echo_and_param_cli(tmp_path) -> None:
    """The first steps of the docs: the demo on a video, `ros2 topic echo /head_pose --once`,
    `ros2 param get/set` on the running node."""
    command = readme_command("ros2 launch dense_head_pose demo.launch.py "
                             "source:=/path/to/video.mp4 rviz:=false")
    with _launched(*command[3:], log_dir=tmp_path,
                   probe_name="launch_video_probe") as (launch, probe):
        probe.subscribe(PoseStamped, "/head_pose")
        assert _count(probe, "/head_pose", 20) >= 20, launch.output()[-3000:]
        # the installed package found its native dense product (not the numpy fallback)
        assert re.search(r"dense vertices: (avx2\+fma|portable)", launch.output()), \
            launch.output()[-3000:]
        # as a user would: wait until the CLI's daemon lists the topic, then echo it
        end = time.monotonic() + 15 * TIMEOUT_SCALE
        while "/head_pose" not in _ros2("topic", "list").stdout.split():
            assert time.monotonic() < end, "ros2 topic list never showed /head_pose"
        echo = _ros2(*readme_command("ros2 topic echo /head_pose --once")[1:])
        assert echo.returncode == 0, echo.stderr
        # (echo may first print "A message was lost!!!": a best-effort notice, not the message)
        pose = yaml.safe_load(echo.stdout[echo.stdout.index("header:"):].split("---")[0])
        assert pose["header"]["frame_id"] == "camera_optical_frame"
        assert 0.2 < pose["pose"]["position"]["z"] < 3.0
        _wait_for_node("/head_pose_node")
        got = _ros2("param", "get", "/head_pose_node", "max_faces")
        default = EstimatorOptions().max_faces  # the library's, the node's and the YAML's
        assert got.returncode == 0 and f"Integer value is: {default}" in got.stdout, got
        assert _ros2("param", "get", "/head_pose_node", "draw_mode").stdout.strip() == \
            "String value is: mesh"
        changed = _ros2(*readme_command("ros2 param set /head_pose_node max_faces 1")[1:])
        assert "Set parameter successful" in changed.stdout, changed
        assert _ros2("param", "get", "/head_pose_node", "max_faces").stdout.strip() == \
            "Integer value is: 1"
        changed = _ros2("param", "set", "/head_pose_node", "max_faces", "0")
        assert "Set parameter successful" in changed.stdout, changed
        # max_faces 0: the node processes frames but reports no face any more
        probe.clear()
        probe.spin_for(1.0)
        assert _ros2("param", "get", "/head_pose_node", "max_faces").stdout.strip() == \
            "Integer value is: 0"
        probe.clear()
        probe.spin_for(1.5)
        assert probe.received["/head_pose"] == []
        beyond = EstimatorOptions.LIMITS["max_faces"][1] + 1  # the library's own range
        refused = _ros2("param", "set", "/head_pose_node", "max_faces", str(beyond))
        assert "Set parameter successful" not in refused.stdout
        assert _ros2("param", "set", "/head_pose_node", "max_faces", "8").returncode == 0
        probe.clear()
        assert _count(probe, "/head_pose", 5) >= 5


def test_demo_folder_namespace_mode_and_calibration(tmp_path) -> None:
    folder = tmp_path / "frames"
    folder.mkdir()
    image = cv2.imread(str(TESTDATA / "one_face.jpg"))
    for i in range(4):
        cv2.imwrite(str(folder / f"{i:03d}.jpg"), np.roll(image, 6 * i, axis=1))
    calibration = tmp_path / "camera.yaml"
    k = [480.0, 0, 206.5, 0, 482.0, 275.5, 0, 0, 1]
    calibration.write_text(yaml.safe_dump({
        "image_width": 413, "image_height": 551, "camera_name": "test",
        "camera_matrix": {"rows": 3, "cols": 3, "data": k},
        "distortion_model": "plumb_bob",
        "distortion_coefficients": {"rows": 1, "cols": 5, "data": [0.0] * 5}}))
    with _launched("demo.launch.py", f"source:={folder}", "rviz:=false", "mode:=pose",
                   "namespace:=front", f"camera_info_file:={calibration}", "hri:=on",
                   log_dir=tmp_path,
                   probe_name="launch_folder_probe") as (launch, probe):
        from hri_msgs.msg import IdsList

        probe.subscribe(IdsList, "/humans/faces/tracked")
        probe.subscribe(PoseStamped, "/front/head_pose")
        probe.subscribe(CameraInfo, "/front/camera_info")
        probe.subscribe(PoseStamped, "/head_pose")
        assert _count(probe, "/front/head_pose", 8) >= 8, launch.output()[-3000:]
        assert probe.received["/head_pose"] == []  # everything is in the namespace
        assert _count(probe, "/front/camera_info", 1) >= 1
        info = probe.received["/front/camera_info"][-1]
        assert list(info.k) == k
        _wait_for_node("/front/head_pose_node")
        got = _ros2("param", "get", "/front/head_pose_node", "draw_mode")
        assert got.stdout.strip() == "String value is: pose", got
        # ROS4HRI on: its topics are absolute (/humans/faces), whatever the namespace
        assert probe.spin_until(lambda: any(m.ids for m in probe.received[
            "/humans/faces/tracked"]), 10)


def test_demo_camera_index_is_text_for_image_source(tmp_path) -> None:
    """`source:=0` must reach image_source as a camera index, not a parameter type error.

    There is no camera here, so the demo refuses up front; image_source started directly
    with an integer-typed `-p source:=0` (what launch used to hand it) must say the camera
    cannot be opened, not fail on the parameter's type."""
    launch = Launch("demo.launch.py", "source:=0", "rviz:=false", log_dir=tmp_path)
    report = launch.finish(timeout=30)
    assert report["launch"] == 1 and "no camera 0" in report["output"]
    result = _ros2("run", "dense_head_pose", "image_source", "--ros-args", "-p", "source:=0")
    assert result.returncode == 1
    assert "camera 0 cannot be opened" in result.stderr
    assert "Traceback" not in result.stderr and "InvalidParameterType" not in result.stderr


def _fake_rviz2(tmp_path: Path) -> Path:
    """A stand-in rviz2 package (ament index entry + executable) that records its command
    line and runs until it is told to stop or a file appears (the user closing rviz)."""
    prefix = tmp_path / "fake_rviz2"
    (prefix / "share/ament_index/resource_index/packages").mkdir(parents=True)
    (prefix / "share/ament_index/resource_index/packages/rviz2").write_text("")
    (prefix / "share/rviz2").mkdir(parents=True)
    exe = prefix / "lib/rviz2/rviz2"
    exe.parent.mkdir(parents=True)
    exe.write_text(f"""#!/bin/sh
echo "$@" > {tmp_path}/rviz_args
trap 'exit 0' INT TERM
while [ ! -e {tmp_path}/close_rviz ]; do sleep 0.05; done
""")
    exe.chmod(0o755)
    return prefix


def test_demo_starts_rviz_with_the_config_and_closing_it_ends_the_demo(tmp_path) -> None:
    prefix = _fake_rviz2(tmp_path)
    env = {"AMENT_PREFIX_PATH": f"{prefix}:{os.environ['AMENT_PREFIX_PATH']}"}
    launch = Launch("demo.launch.py", f"source:={VIDEO}", "namespace:=viz", log_dir=tmp_path,
                    env=env)
    probe = Probe("launch_rviz_probe")
    try:
        probe.subscribe(PoseStamped, "/viz/head_pose")
        assert _count(probe, "/viz/head_pose", 3) >= 3, launch.output()[-3000:]
        args = (tmp_path / "rviz_args").read_text().split()
        config = args[args.index("-d") + 1]
        assert config.endswith("share/dense_head_pose/rviz/demo.rviz") and Path(config).is_file()
        assert "__ns:=/viz" in args
        (tmp_path / "close_rviz").write_text("")  # the user closes the rviz window
        report = launch.finish(timeout=30)
        assert report["launch"] == 0
        assert set(report["nodes"]) == {"image_source", "head_pose_node", "rviz2"}
        assert all(code == 0 for code in report["nodes"].values()), report["nodes"]
        assert report["leftover"] == []
        assert "Traceback" not in report["output"]
    finally:
        probe.destroy()
        launch.kill()


# -------------------------------------------------------------------- head_pose.launch.py
def test_head_pose_launch_remaps_namespace_and_qos(tmp_path, video_frames) -> None:
    params = tmp_path / "params.yaml"
    data = yaml.safe_load((REPO / "config" / "head_pose.yaml").read_text())
    data["/**/head_pose_node"]["ros__parameters"].update(max_faces=1, publish_tf=False)
    params.write_text(yaml.safe_dump(data))
    with _launched("head_pose.launch.py", "image:=/cam/color/image_raw",
                   "camera_info:=/cam/color/camera_info", "namespace:=robot",
                   f"params_file:={params}", "image_qos:=reliable", log_dir=tmp_path,
                   probe_name="launch_head_pose_probe") as (launch, probe):
        probe.subscribe(PoseStamped, "/robot/head_pose")
        pub = probe.publisher(Image, "/cam/color/image_raw")
        info = probe.publisher(CameraInfo, "/cam/color/camera_info")
        probe.wait_for_subscribers(pub)
        probe.wait_for_subscribers(info)
        subs = probe.node.get_subscriptions_info_by_topic("/cam/color/image_raw")
        assert subs[0].qos_profile.reliability == ReliabilityPolicy.RELIABLE
        for i in range(10):  # lock-step: reliable delivery, so not one frame may be lost
            t = stamp(500 + i)
            info.publish(camera_info_msg(900.0, 900.0, 640.0, 360.0, 1280, 720, "cam", t))
            pub.publish(image_msg(video_frames[i * 5], "cam", t))
            assert _count(probe, "/robot/head_pose", i + 1, 10) == i + 1, \
                launch.output()[-3000:]
        _wait_for_node("/robot/head_pose_node")
        assert _ros2("param", "get", "/robot/head_pose_node", "max_faces").stdout.strip() == \
            "Integer value is: 1"
        assert _ros2("param", "get", "/robot/head_pose_node", "publish_tf").stdout.strip() == \
            "Boolean value is: False"


def _feed_frames(probe: Probe, image_topic: str, info_topic: str, frames, n: int = 12) -> int:
    """Publish ``n`` frames and their CameraInfo like a camera driver; how many head poses
    came back."""
    probe.subscribe(PoseStamped, "/head_pose")
    pub = probe.publisher(Image, image_topic, qos_profile_sensor_data)
    info = probe.publisher(CameraInfo, info_topic, qos_profile_sensor_data)
    probe.wait_for_subscribers(pub)
    probe.wait_for_publishers(["/head_pose"])
    # small frames: best-effort delivery of large ones loses many on loopback (docs/ros2.md)
    small = [cv2.resize(f, (320, 180)) for f in frames[:n]]
    for i, frame in enumerate(small):
        t = stamp(700 + i)
        info.publish(camera_info_msg(320.0, 320.0, 160.0, 90.0, 320, 180, "cam", t))
        pub.publish(image_msg(frame, "cam", t))
        probe.spin_for(0.15)
    probe.spin_for(1.0)
    return len(probe.received["/head_pose"])


def test_head_pose_launch_readme_command(tmp_path, video_frames) -> None:
    command = readme_command(
        "ros2 launch dense_head_pose head_pose.launch.py image:=/camera/color/image_raw "
        "camera_info:=/camera/color/camera_info")
    with _launched(*command[3:], log_dir=tmp_path,
                   probe_name="readme_head_pose_launch") as (launch, probe):
        # default sensor-data QoS: small frames, best effort on loopback loses a few at most
        received = _feed_frames(probe, "/camera/color/image_raw", "/camera/color/camera_info",
                                video_frames)
        assert received >= 6, launch.output()[-3000:]


def test_ros2_run_readme_command(tmp_path, video_frames) -> None:
    command = readme_command("ros2 run dense_head_pose head_pose_node --ros-args "
                             "-r image:=/cam/image -r camera_info:=/cam/info")
    log = (tmp_path / "run.log").open("w")
    proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True, preexec_fn=default_signals)
    probe = Probe("readme_ros2_run")
    try:
        assert _feed_frames(probe, "/cam/image", "/cam/info", video_frames) >= 6
    finally:
        probe.destroy()
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C: `ros2 run` leaves it to the node
        try:
            assert proc.wait(timeout=30) == 0
        finally:
            if group_members(proc.pid):
                os.killpg(proc.pid, signal.SIGKILL)
        log.close()
        out = (tmp_path / "run.log").read_text()
        assert "Traceback" not in out and "[ERROR]" not in out, out


def test_lifecycle_readme_commands(tmp_path, video_frames) -> None:
    """The documented lifecycle session, command by command: unconfigured until told, then
    serving the default camera topics."""
    command = readme_command(
        "ros2 launch dense_head_pose head_pose.launch.py lifecycle:=true autostart:=false")
    get = readme_command("ros2 lifecycle get /head_pose_node")

    def run(cmd: list[str]) -> str:
        end = time.monotonic() + 30 * TIMEOUT_SCALE
        while True:  # the CLI's daemon may not have discovered the node yet
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
            text = out.stdout + out.stderr
            if "Node not found" not in text or time.monotonic() > end:
                return text
            time.sleep(0.5)

    with _launched(*command[3:], log_dir=tmp_path,
                   probe_name="readme_lifecycle") as (launch, probe):
        assert run(get).startswith("unconfigured"), launch.output()[-2000:]
        for step in ("configure", "activate"):
            out = run(readme_command(f"ros2 lifecycle set /head_pose_node {step}"))
            assert "Transitioning successful" in out, out + launch.output()[-2000:]
        assert run(get).startswith("active")
        received = _feed_frames(probe, "/camera/image_raw", "/camera/camera_info",
                                video_frames)
        assert received >= 6, launch.output()[-3000:]


# ------------------------------------------------------------------------- several cameras
def test_camera_list_argument() -> None:
    from dense_head_pose.ros.launching import CameraTopics, parse_cameras

    assert parse_cameras("front back") == [
        CameraTopics("front", "/front/image_raw", "/front/camera_info"),
        CameraTopics("back", "/back/image_raw", "/back/camera_info")]
    assert parse_cameras(" left=/cam0/color/image_raw,/cam0/color/camera_info;right ") == [
        CameraTopics("left", "/cam0/color/image_raw", "/cam0/color/camera_info"),
        CameraTopics("right", "/right/image_raw", "/right/camera_info")]
    for bad, says in [("", "empty"), ("front front", "given twice"),
                      ("a=/x/image,/a/info b=/x/image,/b/info", "given twice"),
                      ("2cam", "a letter"), ("front-left", "a letter"),
                      ("front=image_raw,/front/info", "absolute"),
                      ("front=/front/image_raw", "absolute")]:
        with pytest.raises(ValueError, match=says):
            parse_cameras(bad)


def test_camera_names_give_face_ids_that_never_collide() -> None:
    """Each camera's node prefixes its ids with `NAME_`; names are unique and an id never
    holds `_` after its prefix, so no two cameras' faces can share an id or a TF frame,
    however the names nest (`a`, `a_b`, `a_b_c`, `a_`)."""
    from dense_head_pose.interfaces.face_ids import FaceIds
    from dense_head_pose.ros.launching import parse_cameras

    cameras = parse_cameras("a a_b a_b_c a_ b")
    for deterministic in (True, False):
        names = [{FaceIds(deterministic, seed=0, prefix=f"{c.name}_")(i) for i in range(300)}
                 for c in cameras]
        for i, ids in enumerate(names):
            for other in names[i + 1:]:
                assert not ids & other


def test_two_cameras_readme_command(tmp_path, video_frames) -> None:
    """Two cameras, one node each in its namespace; ids and TF frames unique across them;
    /humans/faces/tracked holds both cameras' faces and drops a camera that goes quiet;
    Ctrl-C ends all three processes cleanly."""
    from hri_msgs.msg import IdsList, NormalizedRegionOfInterest2D
    from tf2_msgs.msg import TFMessage

    command = readme_command(
        "ros2 launch dense_head_pose multi_camera.launch.py cameras:='front back'")
    launch = Launch(*command[3:], "image_qos:=reliable", log_dir=tmp_path)
    probe = Probe("two_cameras_probe")
    try:
        qos = QoSProfile(depth=2, reliability=ReliabilityPolicy.RELIABLE)
        cams = {name: (probe.publisher(Image, f"/{name}/image_raw", qos),
                       probe.publisher(CameraInfo, f"/{name}/camera_info", qos))
                for name in ("front", "back")}
        for name in cams:
            probe.subscribe(PoseStamped, f"/{name}/head_pose")
        probe.subscribe(IdsList, "/humans/faces/tracked")
        probe.subscribe(TFMessage, "/tf")
        for image_pub, _ in cams.values():
            probe.wait_for_subscribers(image_pub, timeout=60)
        small = [np.ascontiguousarray(cv2.resize(f, (640, 360))) for f in video_frames[:20]]

        def feed(names: tuple[str, ...], n: int, first: int) -> None:
            for i in range(first, first + n):
                t = stamp(900 + i // 10, (i % 10) * 100_000_000)
                for name in names:
                    frame = small[i % len(small)]
                    frame = np.ascontiguousarray(frame[:, ::-1]) if name == "back" else frame
                    cams[name][1].publish(camera_info_msg(640.0, 640.0, 320.0, 180.0, 640,
                                                          360, f"{name}_optical", t))
                    cams[name][0].publish(image_msg(frame, f"{name}_optical", t))
                probe.spin_for(0.1)

        feed(("front", "back"), 30, 0)
        probe.spin_for(0.5)
        out = launch.output()[-3000:]
        assert len(probe.received["/front/head_pose"]) >= 15, out
        assert len(probe.received["/back/head_pose"]) >= 15, out
        front = {p.header.frame_id for p in probe.received["/front/head_pose"]}
        assert front == {"front_optical"}
        lists = [list(m.ids) for m in probe.received["/humans/faces/tracked"]]
        both = [ids for ids in lists if len(ids) == 2]
        assert both, lists[-10:]
        ids = both[-1]
        assert sorted(i.split("_")[0] for i in ids) == ["back", "front"], ids
        frames = {t.child_frame_id for m in probe.received["/tf"] for t in m.transforms}
        assert {f"face_{i}" for i in ids} <= frames and {f"gaze_{i}" for i in ids} <= frames
        roi = f"/humans/faces/{ids[0]}/roi"  # per-face topics stay global (REP-155)
        probe.subscribe(NormalizedRegionOfInterest2D, roi)
        probe.wait_for_publishers([roi])
        # the back camera goes quiet: its faces leave the merged list within stale_after
        probe.clear()
        feed(("front",), 25, 30)
        last = [list(m.ids) for m in probe.received["/humans/faces/tracked"]][-5:]
        assert last and all(len(ids) == 1 and ids[0].startswith("front_") for ids in last), \
            last
        launch.send(signal.SIGINT)
        report = launch.finish(timeout=40)
        assert report["nodes"] == {"head_pose_node-1": 0, "head_pose_node-2": 0,
                                   "hri_tracked_merger": 0}, report["output"][-3000:]
        assert report["leftover"] == [] and "Traceback" not in report["output"]
    finally:
        probe.destroy()
        launch.kill()


def test_two_cameras_bad_camera_list_fails_in_one_line(tmp_path) -> None:
    launch = Launch("multi_camera.launch.py", "cameras:=front front", log_dir=tmp_path)
    report = launch.finish(timeout=30)
    assert report["launch"] == 1 and report["nodes"] == {}, report["output"]
    assert "camera name given twice: front" in report["output"]
    assert "Traceback" not in report["output"]


def test_head_pose_launch_compressed_transport_default_qos(tmp_path, video_frames) -> None:
    from std_msgs.msg import Header

    with _launched("head_pose.launch.py", "image:=/cam/image", "camera_info:=/cam/info",
                   "transport:=compressed", log_dir=tmp_path,
                   probe_name="launch_compressed_probe") as (launch, probe):
        probe.subscribe(PoseStamped, "/head_pose")
        pub = probe.publisher(CompressedImage, "/cam/image/compressed", qos_profile_sensor_data)
        probe.wait_for_subscribers(pub)
        subs = probe.node.get_subscriptions_info_by_topic("/cam/image/compressed")
        assert subs[0].qos_profile.reliability == ReliabilityPolicy.BEST_EFFORT
        small = cv2.resize(video_frames[10], (480, 270))
        jpeg = cv2.imencode(".jpg", small)[1].tobytes()
        sent = 0
        while not probe.received["/head_pose"] and sent < 100:  # best effort: may lose some
            msg = CompressedImage(header=Header(stamp=stamp(900 + sent), frame_id="cam"),
                                  format="jpeg")
            msg.data = jpeg
            pub.publish(msg)
            sent += 1
            probe.spin_for(0.1)
        assert probe.received["/head_pose"], launch.output()[-3000:]


def test_launch_arguments_are_never_evaluated_as_python(tmp_path) -> None:
    """``image:=`` used to go into a PythonExpression: a quote in it ran code."""
    marker = tmp_path / "PWNED"
    payload = f"/cam'+str(__import__('os').system('touch {marker}'))+'"
    for image in (payload, "/cam'"):
        launch = Launch("head_pose.launch.py", f"image:={image}", "transport:=compressed",
                        log_dir=tmp_path)
        time.sleep(3.0)
        launch.send(signal.SIGINT)
        report = launch.finish(timeout=40)
        out = report["output"]
        assert not marker.exists()
        assert "unterminated string literal" not in out and "Traceback" not in out, out
        # the name is not a topic name: the node says so and ends, nothing else happens
        assert report["leftover"] == [], out


def test_demo_on_a_source_without_frames_ends_instead_of_idling(tmp_path) -> None:
    junk = tmp_path / "junk"
    junk.mkdir()
    for i in range(3):
        (junk / f"{i}.jpg").write_bytes(os.urandom(1000))
    launch = Launch("demo.launch.py", f"source:={junk}", "rviz:=false", log_dir=tmp_path)
    report = launch.finish(timeout=60)
    out = report["output"]
    assert report["launch"] != "hung" and report["leftover"] == [], out[-3000:]
    assert "none of its 3 image file(s) decodes" in out
    assert report["nodes"].get("image_source") == 1 and report["nodes"].get(
        "head_pose_node") == 0, report["nodes"]


def test_demo_on_a_one_frame_video_loops_it(tmp_path, video_frames) -> None:
    one = tmp_path / "one.mp4"
    writer = cv2.VideoWriter(str(one), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (1280, 720))
    writer.write(video_frames[3])
    writer.release()
    with _launched("demo.launch.py", f"source:={one}", "rviz:=false", log_dir=tmp_path,
                   probe_name="launch_one_frame_probe") as (launch, probe):
        probe.subscribe(PoseStamped, "/head_pose")
        assert _count(probe, "/head_pose", 5) >= 5, launch.output()[-3000:]


# ------------------------------------------------------------------------------- shutdown
SHUTDOWN_VARIANTS = {
    "SIGINT to launch": (signal.SIGINT, False),
    "SIGINT to the group (terminal Ctrl-C)": (signal.SIGINT, True),
    "SIGTERM to launch": (signal.SIGTERM, False),
    "SIGTERM to the group": (signal.SIGTERM, True),
}


@pytest.mark.slow
@pytest.mark.parametrize("variant", list(SHUTDOWN_VARIANTS))
def test_shutdown_is_clean_every_time(variant, tmp_path) -> None:
    """Each variant SHUTDOWN_RUNS times, the signal landing at a random moment while frames
    flow: every node exits 0, nothing is left running, no traceback, no error."""
    sig, group = SHUTDOWN_VARIANTS[variant]
    rng = random.Random(sig * 10 + group)
    failures = []
    probe = Probe(f"shutdown_probe_{int(group)}_{sig}")
    probe.subscribe(PoseStamped, "/head_pose")
    try:
        for run in range(SHUTDOWN_RUNS):
            probe.clear()
            started = time.time()
            launch = Launch("demo.launch.py", f"source:={VIDEO}", "rviz:=false",
                            log_dir=tmp_path)
            try:
                assert _count(probe, "/head_pose", 1, 40, since=started) >= 1, \
                    launch.output()[-3000:]
                time.sleep(rng.uniform(0.0, 0.4))
                try:
                    _finish_clean(launch, sig, group)
                except AssertionError as exc:
                    failures.append(f"run {run}: {exc}")
            finally:
                launch.kill()
    finally:
        probe.destroy()
    assert not failures, f"{len(failures)}/{SHUTDOWN_RUNS} unclean:\n" + "\n".join(failures)


# ---------------------------------------------------------------- attention and engagement
def _still_folder(tmp_path: Path, image: np.ndarray) -> Path:
    """A folder the demo's image source loops: the image, shifted a little per frame."""
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(4):
        cv2.imwrite(str(folder / f"{i:03d}.jpg"), np.roll(image, 4 * i, axis=1))
    return folder


def _engagement_of_the_face(folder: Path, tmp_path: Path, until: str) -> dict:
    """Play ``folder`` with the demo; the face's anonymous person, their levels until
    ``until`` is reached (or a generous deadline), and the gazes seen meanwhile."""
    from hri_msgs.msg import EngagementLevel, Gaze, IdsList

    from dense_head_pose.attention.engagement import LEVEL_NAMES
    from dense_head_pose.attention.person_ids import anonymous_person_id

    with _launched("demo.launch.py", f"source:={folder}", "rviz:=false", "hri:=on",
                   log_dir=tmp_path, probe_name="engagement_probe") as (launch, probe):
        probe.subscribe(IdsList, "/humans/faces/tracked")
        probe.subscribe(Gaze, "/humans/interactions/gazing")
        assert probe.spin_until(lambda: any(m.ids for m in probe.received[
            "/humans/faces/tracked"]), 60), launch.output()[-3000:]
        face = next(m.ids[0] for m in probe.received["/humans/faces/tracked"] if m.ids)
        person = anonymous_person_id(face)
        topic = f"/humans/persons/{person}/engagement_status"
        probe.subscribe(EngagementLevel, topic)
        probe.spin_until(lambda: any(LEVEL_NAMES[m.level] == until
                                     for m in probe.received[topic]), 60)
        probe.spin_for(1.0)
        levels = [LEVEL_NAMES[m.level] for m in probe.received[topic]]
        gazes = [(m.sender, m.receiver) for m in probe.received["/humans/interactions/gazing"]]
        return {"person": person, "levels": levels, "gazes": gazes,
                "output": launch.output()[-3000:]}


def test_demo_rates_a_face_looking_at_the_camera_engaged(tmp_path) -> None:
    """A frontal face in front of the camera: it gazes at the robot, and its anonymous
    person (named as hri_person_manager would) goes DISENGAGED -> ENGAGING -> ENGAGED."""
    folder = _still_folder(tmp_path, cv2.imread(str(TESTDATA / "one_face.jpg")))
    seen = _engagement_of_the_face(folder, tmp_path, "ENGAGED")
    levels = [name for i, name in enumerate(seen["levels"])
              if i == 0 or name != seen["levels"][i - 1]]
    assert "ENGAGED" in levels, seen
    assert levels[levels.index("ENGAGED") - 1] == "ENGAGING", seen
    assert (seen["person"], "") in seen["gazes"], seen


def test_demo_rates_a_face_turned_away_disengaged(tmp_path) -> None:
    """A face in profile (AFLW2000-3D image00170, turned about 60 degrees) never gazes at
    the robot and stays DISENGAGED."""
    from helpers import SHARED

    image = cv2.imread(str(SHARED / "benchmarks" / "AFLW2000" / "image00170.jpg"))
    assert image is not None
    canvas = np.zeros((480, 640, 3), np.uint8)
    canvas[15:465, 95:545] = image  # 450x450 in a VGA frame
    seen = _engagement_of_the_face(_still_folder(tmp_path, canvas), tmp_path, "DISENGAGED")
    assert "DISENGAGED" in seen["levels"], seen
    assert not {"ENGAGING", "ENGAGED"} & set(seen["levels"]), seen
    assert (seen["person"], "") not in seen["gazes"], seen


def test_demo_rates_the_person_managers_persons(tmp_path) -> None:
    """With a person manager publishing /humans/persons/tracked and each person's face_id,
    the levels go to its person (here "alice", matched to the node's face), not to an
    anonymous one."""
    from hri_msgs.msg import EngagementLevel, IdsList
    from rclpy.qos import DurabilityPolicy
    from std_msgs.msg import String

    from dense_head_pose.attention.person_ids import anonymous_person_id

    folder = _still_folder(tmp_path, cv2.imread(str(TESTDATA / "one_face.jpg")))
    with _launched("demo.launch.py", f"source:={folder}", "rviz:=false", "hri:=on",
                   log_dir=tmp_path, probe_name="person_manager_probe") as (launch, probe):
        probe.subscribe(IdsList, "/humans/faces/tracked")
        assert probe.spin_until(lambda: any(m.ids for m in probe.received[
            "/humans/faces/tracked"]), 60), launch.output()[-3000:]
        face = next(m.ids[0] for m in probe.received["/humans/faces/tracked"] if m.ids)
        persons = probe.publisher(IdsList, "/humans/persons/tracked")
        latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                             durability=DurabilityPolicy.TRANSIENT_LOCAL)
        face_id = probe.publisher(String, "/humans/persons/alice/face_id", latched)
        face_id.publish(String(data=face))
        probe.subscribe(EngagementLevel, "/humans/persons/alice/engagement_status")

        def alice_engaged() -> bool:
            persons.publish(IdsList(ids=["alice"]))  # as a person manager does, repeatedly
            return any(m.level == EngagementLevel.ENGAGED for m in probe.received[
                "/humans/persons/alice/engagement_status"])

        assert probe.spin_until(alice_engaged, 60), launch.output()[-3000:]
        anonymous = f"/humans/persons/{anonymous_person_id(face)}/engagement_status"
        # the anonymous person is retired once the manager's persons are heard
        topics = dict(probe.node.get_topic_names_and_types())
        assert anonymous not in topics or not probe.node.count_publishers(anonymous), topics
