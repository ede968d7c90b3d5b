"""Attacks on the node as a process over DDS: bombs, bad start-up parameters, a foreign
renderer library, a corrupt imported model. The node must answer each with a clear message
and a defined result, and keep serving."""

from __future__ import annotations

import shutil
import signal
import subprocess

import numpy as np
import pytest
from helpers import PACK
from ros_harness import NodeProcess, Probe, image_msg, require_ros

pytestmark = pytest.mark.ros
require_ros()

from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from helpers import pack_with_full_bfm, png_bomb, system_library  # noqa: E402
from node_rig import FRAME, Rig, next_stamp, set_parameters  # noqa: E402
from sensor_msgs.msg import CompressedImage, Image  # noqa: E402
from std_msgs.msg import Header  # noqa: E402

from dense_head_pose.model_pack import FULL_BFM as FULL_BFM_NAME  # noqa: E402


def _compressed(data: bytes, t, fmt: str = "png") -> CompressedImage:
    msg = CompressedImage(header=Header(stamp=t, frame_id=FRAME), format=fmt)
    msg.data = data
    return msg


def test_compressed_decompression_bomb(rclpy_context, tmp_path, video_frames) -> None:
    """0.2 MB of PNG declaring 13000 x 13000 pixels: refused from its header, no memory
    spike, the next frame served."""
    import cv2

    rig = Rig({"input_transport": "compressed", "image_qos": "reliable"}, tmp_path,
              compressed=True, tf=False)
    try:
        # a first real frame plans the models (near and far looks, regressor), which takes
        # memory of its own: the peak is measured after it, so only the bomb can raise it
        jpeg = cv2.imencode(".jpg", video_frames[5])[1].tobytes()
        assert len(rig.send(_compressed(jpeg, next_stamp(), "jpeg")).faces) == 1
        before = rig.node.peak_rss_mb()
        bomb = png_bomb(13000, 13000)
        assert len(bomb) < 1_000_000
        assert rig.send(_compressed(bomb, next_stamp())).faces == []
        assert "exceeds" in rig.node.output()
        assert len(rig.send(_compressed(jpeg, next_stamp(), "jpeg")).faces) == 1
        # decoding it would have taken 169 MB more at least (507 MB as BGR)
        assert rig.node.peak_rss_mb() - before < 100, (before, rig.node.peak_rss_mb())
    finally:
        rig.close()


def test_bad_start_up_parameters_fall_back_and_say_so(rclpy_context, tmp_path,
                                                      video_frames) -> None:
    rig = Rig({"image_qos": "reliable", "score_threshold": 5.0, "num_threads": 0,
               "max_faces": 1.5, "draw_mode": "cartoon", "hri.enable": "maybe"}, tmp_path,
              tf=False)
    try:
        assert len(rig.send(image_msg(video_frames[0], FRAME, next_stamp())).faces) == 1
        out = rig.node.output()
        for name in ("score_threshold", "num_threads", "max_faces", "draw_mode", "hri.enable"):
            assert f"parameter {name}:" in out and "using the default" in out, name
        rig.probe.received["/diagnostics"].clear()
        assert rig.probe.spin_until(lambda: rig.probe.received["/diagnostics"], 5)
        status = rig.probe.received["/diagnostics"][-1].status[0]
        assert status.level == status.WARN and "refused or ignored at start-up" in status.message
    finally:
        rig.close()


def test_foreign_renderer_library_falls_back_to_plain_drawing(rclpy_context, tmp_path,
                                                              video_frames) -> None:
    env = {"DENSE_HEAD_POSE_RENDER_LIB": str(system_library("libm.so.6"))}
    node = NodeProcess("head_pose_node", params={"image_qos": "reliable"}, log_dir=tmp_path,
                       env=env)
    probe = Probe("probe_foreign_renderer")
    try:
        probe.subscribe(Image, "mesh_image")
        pub = probe.publisher(Image, "image")
        probe.wait_for_subscribers(pub)
        probe.wait_for_publishers(["mesh_image"])
        frame = video_frames[8]
        pub.publish(image_msg(frame, FRAME, next_stamp()))
        assert probe.spin_until(lambda: probe.received["mesh_image"], 20), node.output()
        drawn = np.frombuffer(probe.received["mesh_image"][0].data, np.uint8).reshape(720,
                                                                                     1280, 3)
        assert np.abs(drawn.astype(int) - frame).mean() > 0.01  # something was drawn
        assert "not the dense_head_pose renderer" in node.output()
        assert node.alive()
    finally:
        probe.destroy()
        assert node.stop() == 0
    assert "Traceback" not in node.output()


def test_corrupt_imported_model_keeps_the_node_up(rclpy_context, tmp_path) -> None:
    pack = pack_with_full_bfm(tmp_path)
    full = pack / FULL_BFM_NAME
    full.write_bytes(full.read_bytes()[:3000])  # truncated
    assert not (pack / "face_3dmm_mb05.tflite").is_symlink()
    node = NodeProcess("head_pose_node", params={"models_dir": str(pack)}, log_dir=tmp_path)
    probe = Probe("probe_corrupt_full_bfm")
    try:
        probe.subscribe(DiagnosticArray, "/diagnostics")
        assert probe.spin_until(lambda: any(
            s.level == s.ERROR and FULL_BFM_NAME in s.message
            for m in probe.received["/diagnostics"] for s in m.status), 15), node.output()
        assert node.alive()
    finally:
        probe.destroy()
        assert node.stop() == 0
    assert "Traceback" not in node.output()
    shutil.rmtree(pack)
    assert PACK.is_dir()


def test_shared_memory_profile_loads_and_interoperates(rclpy_context, tmp_path,
                                                       video_frames) -> None:
    """config/fastdds_shm.xml is a valid Fast DDS profile: a node started with it serves a
    participant started without it (UDP stays on), with no profile error in its log."""
    from pathlib import Path

    profile = str(Path(__file__).resolve().parents[1] / "config" / "fastdds_shm.xml")
    rig = Rig({"image_qos": "reliable"}, tmp_path, tf=False, namespace="shm",
              env={"FASTDDS_DEFAULT_PROFILES_FILE": profile,
                   "FASTRTPS_DEFAULT_PROFILES_FILE": profile})
    try:
        assert len(rig.send(image_msg(video_frames[4], FRAME, next_stamp())).faces) == 1
        out = rig.node.output()
        assert "XML" not in out and "rror" not in out, out[-2000:]
    finally:
        rig.close()


# ------------------------------------------------------------- start-up parameters and names
def _start(tmp_path, *ros_args: str) -> subprocess.CompletedProcess:
    """Start the installed node with ``ros_args``; it must end by itself."""
    from ros_harness import executable

    return subprocess.run([str(executable("head_pose_node")), "--ros-args", *ros_args],
                          capture_output=True, text=True, timeout=60, check=False,
                          cwd=tmp_path)


@pytest.mark.parametrize("content", [
    "head_pose_node:\n  ros__parameters:\n    max_faces: [1, 2\n",   # YAML syntax error
    "a: &a [*a, *a]\nb: &b [*a, *a, *a]\n",                             # alias bomb
    None,                                                                # missing file
])
def test_a_params_file_rcl_refuses_ends_the_node_with_its_reason(tmp_path, content) -> None:
    params = tmp_path / "params.yaml"
    if content is not None:
        params.write_text(content)
    result = _start(tmp_path, "--params-file", str(params))
    assert result.returncode == 1, result.stderr
    assert f"head_pose_node: cannot start: Couldn't parse params file: '--params-file " \
           f"{params}'" in result.stderr
    assert "/project/src" not in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("content, expected", [
    ("head_pose_node:\n  ros__parameters:\n    unknown_key: 3\n    max_face: 2\n"
     "    smoothing:\n      bogus:\n        beta: 2.0\n",
     ["unknown parameter 'max_face' ignored (did you mean max_faces?)",
      "unknown parameter 'smoothing.bogus.beta' ignored", "unknown parameter 'unknown_key'"]),
    ("head_pose_nod:\n  ros__parameters:\n    max_faces: 2\n",
     ["has no ros__parameters for /head_pose_node (it names: head_pose_nod)"]),
    ("just some text\n", ["is not a mapping of node names"]),
])
def test_ignored_parameters_are_named(rclpy_context, tmp_path, content, expected) -> None:
    params = tmp_path / "params.yaml"
    params.write_text(content)
    from ros_harness import executable

    log = (tmp_path / "ignored.log").open("w")
    proc = subprocess.Popen([str(executable("head_pose_node")), "--ros-args", "--params-file",
                             str(params)], stdout=log, stderr=subprocess.STDOUT)
    probe = Probe("probe_ignored_parameters")
    try:
        probe.subscribe(DiagnosticArray, "/diagnostics")
        assert probe.spin_until(lambda: any(
            s.level == s.WARN and "ignored" in s.message
            for m in probe.received["/diagnostics"] for s in m.status), 15)
        out = (tmp_path / "ignored.log").read_text()
        for text in expected:
            assert text in out, out
    finally:
        probe.destroy()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=15) == 0
        log.close()


def test_frame_names_are_checked(rclpy_context, tmp_path, video_frames) -> None:
    rig = Rig({"image_qos": "reliable", "camera_frame": "/bad frame"}, tmp_path, tf=False,
              namespace="frames")
    try:
        assert "parameter camera_frame:" in rig.node.output()  # refused at start-up
        refused = {"camera_frame": "x" * 100_000, "face_frame_prefix": "/face_",
                   "gaze_frame_prefix": "face_"}  # the gaze frame its own parent
        for name, value in refused.items():
            result = set_parameters(rig.probe, {name: value}, node="frames/head_pose_node")[0]
            assert not result.successful and name in result.reason, (name, result.reason)
            assert len(result.reason) < 400
        assert set_parameters(rig.probe, {"face_frame_prefix": "head_"},
                              node="frames/head_pose_node")[0].successful
        assert len(rig.send(image_msg(video_frames[0], FRAME, next_stamp())).faces) == 1
    finally:
        rig.close()
