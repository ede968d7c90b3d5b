"""head_pose_node as its own process, driven over DDS with real video frames.

Each test publishes frames with distinct stamps and waits for the outputs carrying the same
stamp, so nothing depends on timing. The node's image QoS is ``reliable`` here (loopback
best-effort loses most 1280x720 frames on this machine, see docs/ros2.md); one test checks the
default sensor-data QoS with small frames.
"""

from __future__ import annotations

import time

import cv2
import numpy as np
import pytest
from ros_harness import NodeProcess, Probe, camera_info_msg, image_msg, require_ros, stamp

pytestmark = pytest.mark.ros
require_ros()

from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from node_rig import (  # noqa: E402
    FRAME,
    STAMPS,
    K,
    Rig,
    next_stamp,
    same_stamp,
    set_parameters,
)
from sensor_msgs.msg import CompressedImage, Image  # noqa: E402
from visualization_msgs.msg import Marker  # noqa: E402

from dense_head_pose import HeadPoseEstimator  # noqa: E402
from dense_head_pose.msg import FaceArray  # noqa: E402
from dense_head_pose.pipeline.pose import CameraIntrinsics  # noqa: E402
from dense_head_pose.ros.conversions import cloud_to_numpy  # noqa: E402


@pytest.fixture(scope="module")
def rig(rclpy_context, tmp_path_factory):
    # per-frame estimates, not tracked and smoothed: every output must equal the core's for
    # the same frame (tracking and smoothing in the node have their own tests)
    # (ROS4HRI off: TF frames named by the track numbers; test_ros_hri covers the other way)
    r = Rig({"image_qos": "reliable", "detect_every": 1, "smooth": False,
             "hri.enable": "off"}, tmp_path_factory.mktemp("node"))
    yield r
    r.close()


@pytest.fixture(scope="module")
def estimator_local():
    return HeadPoseEstimator.from_model_dir()


def test_pose_faces_and_landmarks_match_the_core(rig, video_frames, estimator_local) -> None:
    frames = [video_frames[i] for i in (0, 20, 40, 54)]
    ids = set()
    for frame in frames:
        t = next_stamp()
        faces = rig.send(image_msg(frame, FRAME, t))
        assert faces.header.frame_id == FRAME
        assert (faces.image_width, faces.image_height) == (1280, 720)
        assert len(faces.faces) == 1
        face = faces.faces[0]
        ids.add(face.id)
        expected = estimator_local(frame, CameraIntrinsics(*K)).faces[0]
        # the node's numbers are the core's numbers for the same frame and intrinsics
        assert np.allclose(np.array(face.landmarks_image).reshape(68, 3), expected.landmarks,
                           atol=1e-3)
        assert face.yaw == pytest.approx(expected.yaw, abs=1e-3)
        assert np.allclose([face.head_pose.position.x, face.head_pose.position.y,
                            face.head_pose.position.z], expected.pose.translation, atol=1e-5)
        assert np.allclose(face.shape_coefficients, expected.shape_coefficients, atol=1e-4)
        lm3d = np.array(face.landmarks_camera).reshape(68, 3)
        assert np.allclose(lm3d[27], expected.pose.translation, atol=1e-5)  # sellion = origin
        x1, y1, x2, y2 = face.bbox
        assert x1 < face.landmarks_image[27 * 3] < x2 and y1 < face.landmarks_image[27 * 3 + 1] < y2

        pose = rig.wait(t, "head_pose")
        assert pose is not None and pose.header.frame_id == FRAME
        p = pose.pose.position
        assert 0.3 < p.z < 3.0 and abs(p.x) < p.z and abs(p.y) < p.z
        assert p.z == pytest.approx(face.head_pose.position.z)
        q = pose.pose.orientation
        assert np.isclose(q.x**2 + q.y**2 + q.z**2 + q.w**2, 1.0)
        poses = rig.wait(t, "head_poses")
        assert poses is not None and len(poses.poses) == 1
    assert len(ids) == 1  # one person, one tracking id through the clip


def test_camera_info_scales_depth(rig, video_frames) -> None:
    frame = video_frames[10]
    t1 = next_stamp()
    with_k = rig.send(image_msg(frame, FRAME, t1)).faces[0]
    t2 = next_stamp()
    info = camera_info_msg(2 * K[0], 2 * K[1], K[2], K[3], 1280, 720, FRAME, t2)
    rig.pub_info.publish(info)
    rig.probe.spin_for(0.2)
    double_f = rig.send(image_msg(frame, FRAME, t2), with_info=False).faces[0]

    def centroid_depth(face) -> float:  # the depth the affine scale measures
        return float(np.array(face.landmarks_camera).reshape(68, 3)[:, 2].mean())

    # twice the focal length, same pixels: the face is twice as far
    assert centroid_depth(double_f) == pytest.approx(2 * centroid_depth(with_k), rel=1e-4)
    assert double_f.head_pose.position.z == pytest.approx(2 * with_k.head_pose.position.z,
                                                          rel=0.05)


def test_first_image_waits_for_its_late_camera_info(rclpy_context, tmp_path, video_frames,
                                                    estimator_local) -> None:
    """A fresh node whose first image overtakes the first CameraInfo: the pose uses that
    CameraInfo (not f = width), so the tracker's filters do not start from a wrong depth."""
    late = Rig({"image_qos": "reliable", "detect_every": 1, "smooth": False}, tmp_path,
               namespace="late_info", prime_camera_info=False)
    try:
        late.probe.spin_for(0.5)  # let discovery settle both ways, as a running driver has
        frame, t = video_frames[12], next_stamp()
        late.pub_image.publish(image_msg(frame, FRAME, t))
        late.probe.spin_for(0.1)
        late.pub_info.publish(camera_info_msg(*K, 1280, 720, FRAME, t))
        assert late.probe.spin_until(lambda: late.result(t) is not None, 20)
        face = late.result(t).faces[0]
        expected = estimator_local(frame, CameraIntrinsics(*K)).faces[0]
        position = [face.head_pose.position.x, face.head_pose.position.y,
                    face.head_pose.position.z]
        assert np.allclose(position, expected.pose.translation, atol=1e-5), position
        assert "no camera_info yet" not in late.node.output()
    finally:
        late.close()


def test_markers_cloud_mesh_and_image(rig, video_frames) -> None:
    frame = video_frames[5]
    t = next_stamp()
    face = rig.send(image_msg(frame, FRAME, t)).faces[0]
    for topic in ("face_landmarks", "face_points", "face_mesh", "mesh_image"):
        assert rig.wait(t, topic) is not None, f"no {topic}"
    centre = np.array([face.head_pose.position.x, face.head_pose.position.y,
                       face.head_pose.position.z])

    markers = rig.result(t, "face_landmarks").markers
    assert markers[0].action == Marker.DELETEALL
    spheres = [m for m in markers if m.ns == "landmarks"]
    lines = [m for m in markers if m.ns == "outline"]
    assert len(spheres) == 1 and len(spheres[0].points) == 68 and spheres[0].id == face.id
    assert spheres[0].header.frame_id == FRAME
    pts = np.array([[p.x, p.y, p.z] for p in spheres[0].points])
    assert np.linalg.norm(pts - centre, axis=1).max() < 0.2
    assert len(lines) == 1 and len(lines[0].points) % 2 == 0 and len(lines[0].points) > 100

    cloud = rig.result(t, "face_points")
    xyz = cloud_to_numpy(cloud)
    assert cloud.header.frame_id == FRAME and xyz.shape == (38365, 3)
    assert np.all(np.isfinite(xyz)) and np.all(xyz[:, 2] > 0)
    assert np.linalg.norm(xyz - centre, axis=1).max() < 0.25

    mesh = rig.result(t, "face_mesh")
    assert mesh.type == Marker.TRIANGLE_LIST and len(mesh.points) % 3 == 0
    assert 1000 * 3 < len(mesh.points) < 5000 * 3
    mesh_pts = np.array([[p.x, p.y, p.z] for p in mesh.points])
    assert np.linalg.norm(mesh_pts - centre, axis=1).max() < 0.25

    image = rig.result(t, "mesh_image")
    assert (image.width, image.height, image.encoding) == (1280, 720, "bgr8")
    drawn = np.frombuffer(image.data, np.uint8).reshape(720, image.step)[:, :1280 * 3]
    drawn = drawn.reshape(720, 1280, 3)
    changed = np.any(drawn != frame, axis=2)
    x1, y1, x2, y2 = (int(v) for v in face.bbox)
    assert changed[y1:y2, x1:x2].mean() > 0.4  # the mesh covers the face
    assert changed.mean() < 0.2  # and little else


def test_tf_frames(rig, video_frames) -> None:
    t = next_stamp()
    face = rig.send(image_msg(video_frames[30], FRAME, t)).faces[0]
    found = {}

    def collect() -> bool:
        for msg in rig.probe.received["/tf"]:
            for tr in msg.transforms:
                if same_stamp(tr.header.stamp, t):
                    found[tr.child_frame_id] = tr
        return len(found) >= 2

    assert rig.probe.spin_until(collect, 10), "no TF for the frame"
    face_tf = found[f"face_{face.id}"]
    gaze_tf = found[f"gaze_{face.id}"]
    assert face_tf.header.frame_id == FRAME
    assert gaze_tf.header.frame_id == f"face_{face.id}"
    tr = face_tf.transform.translation
    assert np.allclose([tr.x, tr.y, tr.z], [face.head_pose.position.x, face.head_pose.position.y,
                                            face.head_pose.position.z])
    # gaze: optical axes at the face origin, z along the face's x (forward)
    g = gaze_tf.transform
    assert np.allclose([g.translation.x, g.translation.y, g.translation.z], 0.0)
    x, y, z, w = g.rotation.x, g.rotation.y, g.rotation.z, g.rotation.w
    z_axis = np.array([2 * (x * z + y * w), 2 * (y * z - x * w), 1 - 2 * (x * x + y * y)])
    assert np.allclose(z_axis, [1.0, 0.0, 0.0], atol=1e-6)


def test_diagnostics(rig, video_frames) -> None:
    rig.send(image_msg(video_frames[1], FRAME, next_stamp()))
    rig.probe.received["/diagnostics"].clear()
    assert rig.probe.spin_until(lambda: rig.probe.received["/diagnostics"], 5)
    status = rig.probe.received["/diagnostics"][-1].status[0]
    values = {kv.key: kv.value for kv in status.values}
    assert "head_pose_node" in status.name
    for key in ("rate_hz", "processing_ms_median", "latency_ms_median", "faces_last",
                "frames_received", "frames_processed", "frames_dropped"):
        assert key in values
    assert int(values["frames_processed"]) >= 1
    assert 0 < float(values["processing_ms_median"]) < 1000
    # these tests stamp frames at 1000 s and later: not this clock, so no "latency" of
    # decades, a count instead; a frame stamped now gives a real latency
    assert int(values["stamps_not_from_this_clock"]) >= 1
    from builtin_interfaces.msg import Time

    now = time.time()
    rig.send(image_msg(video_frames[2], FRAME, Time(sec=int(now), nanosec=int(now % 1 * 1e9))))
    rig.probe.received["/diagnostics"].clear()
    assert rig.probe.spin_until(lambda: rig.probe.received["/diagnostics"], 5)
    values = {kv.key: kv.value for kv in rig.probe.received["/diagnostics"][-1].status[0].values}
    assert 0 < float(values["latency_ms_median"]) < 60_000


@pytest.mark.parametrize("encoding", ["rgb8", "bgra8", "rgba8", "mono8", "mono16"])
def test_encodings(rig, video_frames, encoding) -> None:
    frame = video_frames[15]
    converted = {
        "rgb8": lambda f: cv2.cvtColor(f, cv2.COLOR_BGR2RGB),
        "bgra8": lambda f: cv2.cvtColor(f, cv2.COLOR_BGR2BGRA),
        "rgba8": lambda f: cv2.cvtColor(f, cv2.COLOR_BGR2RGBA),
        "mono8": lambda f: cv2.cvtColor(f, cv2.COLOR_BGR2GRAY),
        "mono16": lambda f: cv2.cvtColor(f, cv2.COLOR_BGR2GRAY).astype(np.uint16) * 257,
    }[encoding](frame)
    reference = rig.send(image_msg(frame, FRAME, next_stamp())).faces[0]
    faces = rig.send(image_msg(converted, FRAME, next_stamp(), encoding=encoding)).faces
    assert len(faces) == 1
    tolerance = 1e-3 if encoding in ("rgb8", "bgra8", "rgba8") else 4.0
    assert np.abs(np.array(faces[0].landmarks_image) - np.array(reference.landmarks_image)
                  ).max() < tolerance


def test_step_padding_is_honoured(rig, video_frames) -> None:
    frame = video_frames[25]
    packed = rig.send(image_msg(frame, FRAME, next_stamp())).faces[0]
    padded = rig.send(image_msg(frame, FRAME, next_stamp(), step_padding=64)).faces[0]
    assert np.allclose(packed.landmarks_image, padded.landmarks_image, atol=1e-4)


def test_bad_inputs_give_empty_results_and_the_node_survives(rig, video_frames) -> None:
    frame = video_frames[3]
    good = image_msg(frame, FRAME, next_stamp())
    bad = []
    unsupported = image_msg(frame, FRAME, next_stamp())
    unsupported.encoding = "32FC1"
    bad.append(unsupported)
    truncated = image_msg(frame, FRAME, next_stamp())
    truncated.data = truncated.data[: len(truncated.data) // 2]
    bad.append(truncated)
    short_step = image_msg(frame, FRAME, next_stamp())
    short_step.step = 100
    bad.append(short_step)
    empty = image_msg(frame, FRAME, next_stamp())
    empty.height, empty.width, empty.step = 0, 0, 0
    empty.data = empty.data[:0]
    bad.append(empty)
    for msg in bad:
        result = rig.send(msg)
        assert result.faces == [] and result.header.frame_id == FRAME
        assert rig.wait(msg.header.stamp, "head_poses", 0.3) is None  # nothing else published
    # no face at all: an empty, well-formed result
    blank = rig.send(image_msg(np.full((720, 1280, 3), 90, np.uint8), FRAME, next_stamp()))
    assert blank.faces == [] and blank.image_width == 1280
    # a nonsense camera_info is ignored (default intrinsics), the pose still comes
    t = next_stamp()
    rig.pub_info.publish(camera_info_msg(0.0, float("nan"), 0.0, 0.0, 1280, 720, FRAME, t))
    rig.probe.spin_for(0.2)
    after = rig.send(image_msg(frame, FRAME, t), with_info=False)
    assert len(after.faces) == 1 and np.isfinite(after.faces[0].head_pose.position.z)
    # focal lengths no camera has (1e-300, 1e300 px): ignored, never NaN or 1e297 m
    for f in (1e-300, 1e300):
        t = next_stamp()
        rig.pub_info.publish(camera_info_msg(f, f, 640.0, 360.0, 1280, 720, FRAME, t))
        rig.probe.spin_for(0.2)
        after = rig.send(image_msg(frame, FRAME, t), with_info=False)
        z = after.faces[0].head_pose.position.z
        assert np.isfinite(z) and 0.1 < z < 10.0
    assert len(rig.send(good).faces) == 1
    assert rig.node.alive()
    out = rig.node.output()
    assert "unsupported encoding '32FC1'" in out and "truncated image" in out
    assert "ignoring camera_info" in out


def test_camera_info_is_paired_by_frame_size_and_stamp(rig, video_frames, one_face,
                                                       estimator_local) -> None:
    """Each image uses its own CameraInfo: same frame_id and size, nearest stamp, even when
    another camera's or another size's CameraInfo arrived after it."""
    big, small = video_frames[3], one_face
    t1, t2, t3 = next_stamp(), next_stamp(), next_stamp()
    k_big_1, k_big_2 = (900.0, 900.0, 640.0, 360.0), (1500.0, 1500.0, 600.0, 380.0)
    k_small = (520.0, 520.0, 206.0, 275.0)
    infos = [camera_info_msg(*k_big_1, 1280, 720, FRAME, t1),
             camera_info_msg(*k_big_2, 1280, 720, FRAME, t3),
             camera_info_msg(*k_small, 413, 551, FRAME, t2),
             camera_info_msg(3000.0, 3000.0, 640.0, 360.0, 1280, 720, "another_camera", t1)]
    for info in infos:
        rig.pub_info.publish(info)
    rig.probe.spin_for(0.3)
    for image, t, k in ((big, t1, k_big_1), (small, t2, k_small), (big, t3, k_big_2)):
        face = rig.send(image_msg(image, FRAME, t), with_info=False).faces[0]
        expected = estimator_local(image, CameraIntrinsics(*k)).faces[0]
        position = [face.head_pose.position.x, face.head_pose.position.y,
                    face.head_pose.position.z]
        assert np.allclose(position, expected.pose.translation, atol=1e-5), (k, position)


def test_parameters_change_at_run_time(rig, two_faces) -> None:
    big = cv2.resize(two_faces, (1280, 574))
    assert len(rig.send(image_msg(big, FRAME, next_stamp())).faces) == 2
    results = set_parameters(rig.probe, {"max_faces": 1})
    assert results[0].successful
    assert len(rig.send(image_msg(big, FRAME, next_stamp())).faces) == 1
    # refused: out of range, unknown choice, read-only
    assert not set_parameters(rig.probe, {"max_faces": 1001})[0].successful
    assert not set_parameters(rig.probe, {"draw_mode": "cartoon"})[0].successful
    assert not set_parameters(rig.probe, {"num_threads": 2})[0].successful
    assert not set_parameters(rig.probe, {"detector_input": "640x481"})[0].successful
    assert not set_parameters(rig.probe, {"detector_model": "rfb640"})[0].successful
    assert set_parameters(rig.probe, {"detector_input": "640x480"})[0].successful
    assert len(rig.send(image_msg(big, FRAME, next_stamp())).faces) == 1
    assert set_parameters(rig.probe, {"max_faces": 8, "score_threshold": 0.6,
                                      "detector_input": "auto"})[0].successful
    assert len(rig.send(image_msg(big, FRAME, next_stamp())).faces) == 2


def test_flood_then_still_answers(rig, video_frames) -> None:
    for i in range(120):
        rig.pub_image.publish(image_msg(video_frames[i % 55], FRAME, next_stamp()))
    rig.probe.spin_for(1.0)
    final = rig.send(image_msg(video_frames[7], FRAME, next_stamp()), timeout=30)
    assert len(final.faces) == 1
    assert rig.node.alive()
    rig.probe.received["/diagnostics"].clear()
    assert rig.probe.spin_until(lambda: rig.probe.received["/diagnostics"], 5)
    values = {kv.key: kv.value for kv in rig.probe.received["/diagnostics"][-1].status[0].values}
    received, processed = int(values["frames_received"]), int(values["frames_processed"])
    dropped, errors = int(values["frames_dropped"]), int(values["frame_errors"])
    # every frame that reached the node is accounted for: processed, replaced while the node
    # was busy (dropped), or unusable (errors from the bad-input test)
    assert processed + dropped + errors == received


def test_tracking_smooths_the_pose_and_restarts_on_a_bag_loop(rig, rclpy_context, video_frames,
                                                              tmp_path) -> None:
    """Default node (landmark tracking, smoothing) against the per-frame rig on the
    same noisy still frames, 30 Hz stamps: steadier poses, one id; stamps going back (a
    looping bag) restart the tracks; the switches work at run time."""
    from dense_head_pose.evaluation import stability

    clip = stability.still_clip(video_frames[20], n=30)
    tracked = Rig({"image_qos": "reliable"}, tmp_path, namespace="tracked")
    try:
        results = {"raw": [], "tracked": []}
        base = next(STAMPS)
        frames = list(clip.frames())
        for i, frame in enumerate(frames):
            t = stamp(base, i * 33_333_333)
            for name, node in (("raw", rig), ("tracked", tracked)):
                results[name].append(node.send(image_msg(frame, FRAME, t)).faces[0])

        def spread(faces, attr):
            values = np.array([getattr(f, attr) if attr == "yaw" else
                               [f.head_pose.position.x, f.head_pose.position.y,
                                f.head_pose.position.z] for f in faces])
            return float(np.sqrt(np.mean(np.sum((values - values.mean(0)) ** 2, axis=-1))))

        for attr in ("yaw", "position"):
            tracked_spread, raw_spread = (spread(results[k], attr) for k in ("tracked", "raw"))
            assert tracked_spread < 0.6 * raw_spread, (attr, tracked_spread, raw_spread)
        ids = [f.id for f in results["tracked"]]
        assert set(ids) == {ids[0]}, ids
        # the bag starts over: earlier stamps, a new start, a new id
        again = tracked.send(image_msg(frames[0], FRAME, stamp(base, 1)))
        assert again.faces[0].id != ids[0], (again.faces[0].id, ids)
        # run-time switches: per-frame and unsmoothed gives the core's result exactly
        assert all(r.successful for r in set_parameters(
            tracked.probe, {"smooth": False, "detect_every": 1}, "tracked/head_pose_node"))
        frame = video_frames[33]
        face = tracked.send(image_msg(frame, FRAME, next_stamp())).faces[0]
        expected = HeadPoseEstimator.from_model_dir()(frame, CameraIntrinsics(*K)).faces[0]
        assert face.yaw == pytest.approx(expected.yaw, abs=1e-3), tracked.node.output()[-2000:]
        for bad in ({"detect_every": 0}, {"smoothing.rotation.noise": -1.0},
                    {"smooth": "yes"}):
            assert not set_parameters(tracked.probe, bad,
                                       "tracked/head_pose_node")[0].successful
    finally:
        tracked.close()


def test_compressed_transport_and_corrupt_frames(rclpy_context, video_frames, tmp_path) -> None:
    rig = Rig({"input_transport": "compressed", "image_qos": "reliable"}, tmp_path,
              compressed=True, tf=False)
    try:
        frame = video_frames[12]
        ok, jpeg = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 90])
        assert ok

        def compressed(data: bytes, t):
            from std_msgs.msg import Header

            msg = CompressedImage(header=Header(stamp=t, frame_id=FRAME), format="jpeg")
            msg.data = data
            return msg

        assert len(rig.send(compressed(jpeg.tobytes(), next_stamp())).faces) == 1
        for corrupt in (jpeg.tobytes()[:2000], b"", b"\x89PNG not really", bytes(5000)):
            assert rig.send(compressed(corrupt, next_stamp())).faces == []
        assert len(rig.send(compressed(jpeg.tobytes(), next_stamp())).faces) == 1
        assert "does not decode" in rig.node.output() or "empty compressed" in rig.node.output()
    finally:
        rig.close()


def test_default_sensor_data_qos_receives_frames(rclpy_context, video_frames, tmp_path) -> None:
    """Default configuration (best-effort image subscription) with a best-effort publisher."""
    from rclpy.qos import qos_profile_sensor_data

    node = NodeProcess("head_pose_node", log_dir=tmp_path)
    probe = Probe("probe_best_effort")
    try:
        probe.subscribe(FaceArray, "faces")
        pub = probe.publisher(Image, "image", qos_profile_sensor_data)
        probe.wait_for_subscribers(pub)
        probe.wait_for_publishers(["faces"])
        small = cv2.resize(video_frames[20], (320, 180))
        sent = 0
        while not probe.received["faces"] and sent < 200:
            pub.publish(image_msg(small, FRAME, next_stamp()))
            sent += 1
            probe.spin_for(0.1)
        assert probe.received["faces"], "no frame got through best-effort delivery"
        assert len(probe.received["faces"][0].faces) == 1
    finally:
        probe.destroy()
        assert node.stop() == 0
        assert "Traceback" not in node.output()


def test_missing_models_report_error_and_keep_running(rclpy_context, tmp_path, video_frames):
    node = NodeProcess("head_pose_node", params={"models_dir": str(tmp_path / "nowhere"),
                                                 "image_qos": "reliable"}, log_dir=tmp_path)
    probe = Probe("probe_no_models")
    try:
        probe.subscribe(DiagnosticArray, "/diagnostics")
        pub = probe.publisher(Image, "image")
        probe.wait_for_subscribers(pub)
        pub.publish(image_msg(video_frames[0], FRAME, next_stamp()))
        assert probe.spin_until(lambda: any(
            s.level == s.ERROR and "models build" in s.message
            for m in probe.received["/diagnostics"] for s in m.status), 10)
        assert node.alive()
    finally:
        probe.destroy()
        assert node.stop() == 0
    assert "models build" in node.output()
    # the renderer needs no model: its state is reported as it is
    assert "renderer native" in node.output() and "renderer unavailable" not in node.output()


def test_documented_parameter_table_is_the_declared_one() -> None:
    """Every declared parameter is in the table of docs/ros2.md with its default, its range
    and whether it changes at run time, and the table names nothing the node does not
    declare."""
    import re
    from pathlib import Path

    from dense_head_pose.ros.parameters import PARAMETERS

    page = (Path(__file__).parents[1] / "docs" / "ros2.md").read_text()
    section = page.split("## Parameters")[1].split("\n\n")[1]
    documented = {}
    ranges = {}
    for row in section.splitlines()[2:]:
        names, default, run_time, what = (c.strip() for c in row.strip("|").split("|")[:4])
        bounds = re.search(r"\((-?[\d.]+)\.\.(-?[\d.]+)\)", what)
        if bounds:
            ranges.update(dict.fromkeys(names.replace("`", "").split(", "),
                                        (float(bounds[1]), float(bounds[2]))))
        names = names.replace("`", "").split(", ")
        defaults = default.split(", ")  # "face_, gaze_" for a pair, else one for all
        for i, name in enumerate(names):
            documented[name] = (defaults[i] if len(defaults) == len(names) else default,
                                run_time)
    declared = {s.name: s for s in PARAMETERS if not s.name.startswith("smoothing.")}
    assert "smoothing.<q>.noise" in documented
    documented = {k: v for k, v in documented.items() if not k.startswith((".", "smoothing."))}
    assert sorted(documented) == sorted(declared)
    for name, (default, run_time) in documented.items():
        spec = declared[name]
        value = spec.default
        shown = str(value).lower() if isinstance(value, bool) else (
            '""' if value == "" else str(value))
        assert default == shown, (name, default, value)
        assert run_time == ("no" if spec.read_only else "yes"), name
        declared_range = spec.int_range or spec.float_range
        if name in ranges:
            assert ranges[name] == tuple(map(float, declared_range)), name
