"""ROS 2 node ``head_pose_node``: camera images in; head pose, faces, TF, markers and mesh out.

A thin layer over :class:`~dense_head_pose.HeadPoseEstimator`, in a two-stage pipeline:

* subscription callbacks only park the newest frame in a one-slot :class:`Mailbox`, so a slow
  frame never builds a backlog (a frame replaced before it was processed counts as dropped)
  and the executor stays free for camera_info, parameters and diagnostics;
* the *estimation* thread takes it, estimates, and publishes the primary outputs at once
  (faces, head_pose, head_poses, TF);
* the *output* thread builds the heavy, optional outputs of that frame (markers, point cloud,
  mesh marker, mesh image) while the next frame is estimated. LiteRT, OpenCV, numpy and the
  renderer release the GIL, so the two stages overlap on two cores. If the output thread is
  still busy, a newer frame's heavy outputs replace the waiting ones: they may skip frames,
  the primary outputs never do.

Work is done lazily: dense vertices, the point cloud, the mesh marker and the mesh image are
computed only when someone subscribes to them (and their switch is on).
"""

from __future__ import annotations

import re
import sys
import threading
import time
from typing import Any

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseArray, PoseStamped
from rcl_interfaces.msg import (
    SetParametersResult,
)
from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2
from std_msgs.msg import Header
from visualization_msgs.msg import Marker, MarkerArray

from dense_head_pose.msg import Face as FaceMsg
from dense_head_pose.msg import FaceArray as FaceArrayMsg

from .. import model_pack
from ..drawing import draw
from ..errors import DenseHeadPoseError, ModelError, RendererUnavailableError
from ..estimator import EstimatorOptions, HeadPoseEstimator
from ..pose import CameraIntrinsics, quaternion_from_matrix
from ..render import MeshRenderer
from ..streams import TrackerPool
from . import conversions
from .camera_info import CameraInfoCache, stamp_ns
from .diagnostics import NodeStats
from .markers import MeshMarkerBuilder, landmark_markers
from .parameters import (
    PARAMETERS,
    TRACKER_KEYS,
    ParamSpec,
    check_value,
    normalise,
    params_file_problems,
    tracker_options,
    unknown_parameters,
)
from .runner import run_node
from .tf_output import TfOutput

NODE_NAME = "head_pose_node"
#: Rotation of the gaze frame (optical axes, z along the gaze) in the head frame.
GAZE_IN_HEAD = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])
GAZE_QUATERNION = quaternion_from_matrix(GAZE_IN_HEAD)
_THROTTLE_S = 5.0
_FIRST_CAMERA_INFO_WAIT_S = 0.5  # see camera_info.py; once, and only if someone publishes it


class Mailbox:
    """A one-slot, newest-wins hand-over between threads."""

    def __init__(self) -> None:
        self._item: Any = None
        self._cv = threading.Condition()
        self._closed = False

    def put(self, item: Any) -> bool:
        """Leave ``item``; returns True if it replaced one nobody had taken."""
        with self._cv:
            replaced = self._item is not None
            self._item = item
            self._cv.notify()
        return replaced

    def take(self) -> Any:
        """Wait for an item and take it; None once closed."""
        with self._cv:
            while self._item is None and not self._closed:
                self._cv.wait()
            item, self._item = self._item, None
            return None if self._closed else item

    def close(self) -> None:
        """Wake and stop every taker."""
        with self._cv:
            self._closed = True
            self._cv.notify_all()


class ProblemLog:
    """Warnings throttled per kind of problem, not per call site: a flood of truncated
    frames prints once every few seconds, yet a different problem in between still shows at
    once. The kind is the message with what the input put in it (quoted text, numbers)
    blanked out, so 3,000 made-up encodings are one kind; at most ``max_kinds`` are told
    apart, the rest share one throttle, so the state is bounded whatever the input says.
    The text is clipped (it may quote the input)."""

    def __init__(self, logger: Any, period_s: float = _THROTTLE_S, max_kinds: int = 64) -> None:
        self._logger = logger
        self._period = period_s
        self._max_kinds = max_kinds
        self._last: dict[str, float] = {}

    def warning(self, kind: str, text: str) -> None:
        """Log ``text`` unless the same kind of problem was logged less than a period ago."""
        key = f"{kind}: {_QUOTED_OR_NUMBER.sub('#', text)[:80]}"
        if key not in self._last and len(self._last) >= self._max_kinds:
            key = "other"
        now = time.monotonic()
        if now - self._last.get(key, -1e9) >= self._period:
            self._last[key] = now
            self._logger.warning(clip(text))


_QUOTED_OR_NUMBER = re.compile(r"'[^']*'|\"[^\"]*\"|\d+")


def clip(text: str, limit: int = 300) -> str:
    """``text`` cut to ``limit`` characters: messages may quote what a sender put in a
    message (an encoding name of 10 kB), and logs and diagnostics must stay readable."""
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


class HeadPoseNode(Node):
    """See the module docstring; topics and parameters are tabled in the README."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(NODE_NAME, **kwargs)
        self.rejected_parameters: list[str] = []
        self.p: dict[str, Any] = {}
        for spec in PARAMETERS:  # in order: a check may look at one declared before
            self.p[spec.name] = self._declare(spec)
        self._report_ignored_parameters()
        self.add_on_set_parameters_callback(self._on_set_parameters)

        self.stats = NodeStats()
        self.problems = ProblemLog(self.get_logger())
        self.estimator: HeadPoseEstimator | None = None
        self.model_error: str | None = None
        self.renderer = None
        self.mesh_marker: MeshMarkerBuilder | None = None
        self.tracker: TrackerPool | None = None
        self._lock = threading.Lock()  # the estimation thread vs parameter changes
        try:  # needs no model: whether it loads is not the model pack's business
            self.renderer = MeshRenderer()
        except RendererUnavailableError as exc:
            self.renderer = None
            self.get_logger().warning(f"{exc}; mesh_image falls back to plain drawing")
        self.camera_infos = CameraInfoCache()
        self._warned_default_intrinsics = False
        self._load_models()

        out_qos = QoSProfile(depth=5)
        self.pub_faces = self.create_publisher(FaceArrayMsg, "faces", out_qos)
        self.pub_pose = self.create_publisher(PoseStamped, "head_pose", out_qos)
        self.pub_poses = self.create_publisher(PoseArray, "head_poses", out_qos)
        self.pub_landmarks = self.create_publisher(MarkerArray, "face_landmarks", out_qos)
        self.pub_points = self.create_publisher(PointCloud2, "face_points", QoSProfile(depth=2))
        self.pub_mesh = self.create_publisher(Marker, "face_mesh", QoSProfile(depth=2))
        self.pub_image = self.create_publisher(Image, "mesh_image", QoSProfile(depth=2))
        self.pub_diag = self.create_publisher(DiagnosticArray, "/diagnostics", QoSProfile(depth=10))
        self.tf = TfOutput(self)
        if not self.tf.available:
            self.get_logger().warning("neither tf2_ros nor tf2_msgs is installed: no TF output")
        self.hri = self._hri_output()
        # TF frame names: the ROS4HRI ids when that interface is on, else the track numbers
        self.face_name = self.hri.ids if self.hri is not None else (lambda i: str(i))

        image_qos = qos_profile_sensor_data
        if self.p["image_qos"] == "reliable":
            image_qos = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE)
        if self.p["input_transport"] == "compressed":
            self.create_subscription(CompressedImage, "image/compressed", self._on_image,
                                     image_qos)
        else:
            self.create_subscription(Image, "image", self._on_image, image_qos)
        self._camera_info_sub = self.create_subscription(
            CameraInfo, "camera_info", self._on_camera_info, qos_profile_sensor_data)
        self.create_timer(float(self.p["diagnostics_period"]), self._publish_diagnostics)
        self.create_timer(5.0, self._retry_models)

        self._frames = Mailbox()
        self._outputs = Mailbox()
        self._threads = [
            threading.Thread(target=self._run, args=(self._frames, self._process),
                             name="estimation", daemon=True),
            threading.Thread(target=self._run, args=(self._outputs, self._publish_heavy),
                             name="outputs", daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        self.get_logger().info(
            f"ready: input '{self.p['input_transport']}', TF via {self.tf.backend}, ROS4HRI "
            f"{'on' if self.hri else 'off'}, renderer "
            f"{'native' if self.renderer else 'unavailable'}")

    # ---------------------------------------------------------------- set-up and parameters
    def _load_models(self) -> None:
        """Load the pack; on failure keep running and report ERROR until it loads."""
        try:
            options = EstimatorOptions(
                num_threads=int(self.p["num_threads"]),
                score_threshold=float(self.p["score_threshold"]),
                max_faces=int(self.p["max_faces"]), refine=bool(self.p["refine"]),
                mirror=bool(self.p["mirror"]), accurate=bool(self.p["accurate"]),
                precision=str(self.p["precision"]), pose_method=str(self.p["pose_method"]))
            directory = model_pack.locate(self.p["models_dir"] or None)
            estimator = HeadPoseEstimator.from_model_dir(directory, options)
        except (ModelError, ValueError) as exc:
            self.model_error = str(exc)
            self.get_logger().error(f"cannot load the model pack: {exc}",
                                    throttle_duration_sec=60.0)
            return
        self.mesh_marker = MeshMarkerBuilder(estimator.model.dense_mean,
                                             estimator.model.triangles,
                                             self.p["mesh_marker_cell_m"] * 1e6)
        self.model_error = None
        # a tracker per camera (frame_id): one topic may carry several
        self.tracker = TrackerPool(estimator, tracker_options(self.p))
        self.estimator = estimator
        self.get_logger().info(f"models loaded from {directory}; face_mesh marker: "
                               f"{self.mesh_marker.n_triangles} triangles per face; dense "
                               f"vertices: {estimator.model.dense_path}")

    def _hri_output(self) -> Any:
        """The ROS4HRI output if ``hri.enable`` and the installed packages allow it."""
        mode = self.p["hri.enable"]
        if mode == "off":
            return None
        try:
            from .hri_output import FaceIds, HriOutput
        except ImportError as exc:
            if mode == "on":
                self.get_logger().error(f"hri.enable is 'on' but hri_msgs cannot be imported "
                                        f"({exc}): install ros-$ROS_DISTRO-hri-msgs; "
                                        "running without the ROS4HRI interface")
            return None
        return HriOutput(self, FaceIds(bool(self.p["hri.deterministic_ids"])),
                         (int(self.p["hri.face_width"]), int(self.p["hri.face_height"])),
                         linger=float(self.p["forget_after"]))

    def _retry_models(self) -> None:
        if self.estimator is None:
            self._load_models()

    def _declare(self, spec: ParamSpec) -> Any:
        """Declare a parameter; its value, or its default if the one given at start-up is of
        the wrong type, out of range or not a choice: one error line naming it, the node
        runs on (the same rule as a refused change at run time, which leaves it unchanged)."""
        try:
            value = self.declare_parameter(spec.name, spec.default, spec.descriptor()).value
            problem = check_value(spec.name, value, self.p)
        except (InvalidParameterTypeException, InvalidParameterValueException) as exc:
            value, problem = None, str(exc).splitlines()[0]
        if problem is None:
            return normalise(spec.name, value)
        if not self.has_parameter(spec.name):
            self.declare_parameter(spec.name, spec.default, spec.descriptor(),
                                   ignore_override=True)
        else:
            self.set_parameters([Parameter(spec.name, value=spec.default)])
        self.rejected_parameters.append(spec.name)
        self.get_logger().error(f"parameter {spec.name}: {problem}; using the default "
                                f"{spec.default!r}")
        return spec.default

    def _report_ignored_parameters(self) -> None:
        """Say which given parameters will be ignored: names this node does not have (a
        typo), params files with nothing for this node. One error line each; WARN."""
        given = getattr(self, "_parameter_overrides", {})  # rclpy keeps no public copy
        for line in (unknown_parameters(given)
                     + params_file_problems(sys.argv, self.get_fully_qualified_name())):
            self.get_logger().error(line)
            self.rejected_parameters.append(clip(line, 120))

    def _on_set_parameters(self, params: list[Parameter]) -> SetParametersResult:
        proposed = {**self.p, **{p.name: p.value for p in params}}
        for param in params:
            problem = check_value(param.name, param.value, proposed)
            if problem:
                return SetParametersResult(successful=False, reason=problem)
        changes = {p.name: normalise(p.name, p.value) for p in params}
        estimator_keys = {"score_threshold", "max_faces", "refine", "mirror", "accurate",
                          "pose_method"}
        try:
            options = tracker_options({**self.p, **changes})
            with self._lock:
                if self.estimator is not None and estimator_keys & changes.keys():
                    self.estimator.configure(**{k: v for k, v in changes.items()
                                                if k in estimator_keys})
                if self.tracker is not None and TRACKER_KEYS & changes.keys():
                    self.tracker.configure(**{f: getattr(options, f) for f in (
                        "smooth", "detect_every", "forget_after", "smoothing")})
        except (TypeError, ValueError) as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        self.p.update(changes)
        if self.hri is not None:
            self.hri.face_size = (int(self.p["hri.face_width"]), int(self.p["hri.face_height"]))
            self.hri.linger = float(self.p["forget_after"])
        return SetParametersResult(successful=True)

    # ------------------------------------------------------------------------- callbacks
    def _on_camera_info(self, msg: CameraInfo) -> None:
        self.camera_infos.add(msg)

    def _on_image(self, msg: Image | CompressedImage) -> None:
        self.stats.on_received(self._frames.put((msg, time.monotonic())))

    def _run(self, mailbox: Mailbox, handle: Any) -> None:
        """Thread body: handle each item taken from ``mailbox`` until it is closed."""
        while (item := mailbox.take()) is not None:
            try:
                handle(*item)
            except Exception as exc:  # the node must outlive any frame, whatever went wrong
                if not self.context.ok():  # shutting down: publishers are gone, nothing lost
                    return
                self.stats.on_error(clip(f"unexpected: {exc!r}"))
                self.get_logger().error(f"{threading.current_thread().name} failed: {exc!r}",
                                        throttle_duration_sec=_THROTTLE_S)

    def stop(self) -> None:
        """Stop both threads (before destroying the node); waits 3 s at most, well within
        the 5 s ``ros2 launch`` grants before it escalates to SIGTERM."""
        self._frames.close()
        self._outputs.close()
        if self.hri is not None:  # frees a thread waiting for per-face publishers
            self.hri.close()
        deadline = time.monotonic() + 3.0
        for thread in self._threads:
            thread.join(timeout=max(deadline - time.monotonic(), 0.0))

    # ------------------------------------------------------------------------ processing
    def _intrinsics(self, header: Header, width: int, height: int) -> CameraIntrinsics:
        """The intrinsics of the CameraInfo that belongs to this image (see camera_info.py),
        else default ones (f = width, centred)."""
        if self.camera_infos.empty and self.count_publishers(self._camera_info_sub.topic_name):
            self.camera_infos.wait_for_first(_FIRST_CAMERA_INFO_WAIT_S)
        if self.camera_infos.empty:
            if not self._warned_default_intrinsics:
                self._warned_default_intrinsics = True
                self.get_logger().warning("no camera_info yet: metric poses use default "
                                          "intrinsics (f = image width, centred) until one "
                                          "arrives")
            return CameraIntrinsics.default(width, height)
        intrinsics, problem = self.camera_infos.match(header.frame_id, header.stamp, width,
                                                      height)
        if problem:
            self.problems.warning("camera_info", problem if intrinsics else
                                  f"{problem}; using default intrinsics (f = image width)")
        return intrinsics or CameraIntrinsics.default(width, height)

    def _process(self, msg: Image | CompressedImage, received: float) -> None:
        estimator = self.estimator
        if estimator is None:
            self.stats.on_dropped()
            self.get_logger().error(f"dropping frames: {self.model_error}",
                                    throttle_duration_sec=_THROTTLE_S)
            return
        header = Header(stamp=msg.header.stamp,
                        frame_id=self.p["camera_frame"] or msg.header.frame_id)
        try:
            image = (conversions.compressed_to_bgr(msg) if isinstance(msg, CompressedImage)
                     else conversions.image_to_bgr(msg))
        except DenseHeadPoseError as exc:
            self.stats.on_error(clip(str(exc)))
            self.problems.warning("frame", f"unusable frame: {exc}")
            self.pub_faces.publish(FaceArrayMsg(header=header))
            if self.hri is not None:
                self.hri.publish([], header, None)
            return
        height, width = image.shape[:2]
        intrinsics = self._intrinsics(msg.header, width, height)
        # the frame's own time drives the filters: a replayed bag filters as it was recorded
        stamp_nanoseconds = stamp_ns(msg.header.stamp)
        stamp = stamp_nanoseconds * 1e-9 or time.monotonic()
        with self.stats.stage("estimate"), self._lock:
            assert self.tracker is not None
            result = self.tracker(image, stamp, intrinsics, stream=msg.header.frame_id)
        faces = result.faces
        self._publish(faces, header, image)
        done = time.monotonic()
        latency = None
        if stamp_nanoseconds:
            latency = (self.get_clock().now().nanoseconds - stamp_nanoseconds) / 1e6
        self.stats.on_processed((done - received) * 1e3, latency, len(faces))

    def _publish(self, faces: list, header: Header, image: np.ndarray) -> None:
        """Primary outputs, at once; heavy ones handed to the output thread if wanted."""
        stage = self.stats.stage
        with stage("faces"):
            self.pub_faces.publish(FaceArrayMsg(
                header=header, image_width=image.shape[1], image_height=image.shape[0],
                faces=[conversions.face_msg(f, FaceMsg) for f in faces]))
            poses = [conversions.pose_msg(f.pose) for f in faces]
            if poses:
                self.pub_pose.publish(PoseStamped(header=header, pose=poses[0]))
            self.pub_poses.publish(PoseArray(header=header, poses=poses))
        if self.p["publish_tf"] and faces:
            with stage("tf"):
                self.tf.send(self._transforms(faces, header))
        if self.hri is not None:
            with stage("hri"):
                self.hri.publish(faces, header, image)
        # put() is True when a waiting frame's heavy outputs were replaced (skipped)
        if self._heavy_outputs_wanted() and self._outputs.put((faces, header, image)):
            self.stats.on_outputs_skipped()

    def _heavy_outputs_wanted(self) -> bool:
        p = self.p
        return bool(
            (p["publish_landmarks"] and self.pub_landmarks.get_subscription_count())
            or (p["publish_points"] and self.pub_points.get_subscription_count())
            or (p["publish_mesh"] and self.pub_mesh.get_subscription_count())
            or (p["publish_mesh_image"] and self.pub_image.get_subscription_count()))

    def _publish_heavy(self, faces: list, header: Header, image: np.ndarray) -> None:
        """Markers, point cloud, mesh marker and mesh image, each only if subscribed."""
        stage = self.stats.stage
        p = self.p
        if p["publish_landmarks"] and self.pub_landmarks.get_subscription_count():
            with stage("landmarks"):
                self.pub_landmarks.publish(landmark_markers(faces, header))
        if p["publish_points"] and self.pub_points.get_subscription_count():
            with stage("points"):
                step = int(p["points_step"])
                clouds = [f.vertices_in_camera()[::step] for f in faces]
                points = np.concatenate(clouds) if clouds else np.empty((0, 3), np.float32)
                self.pub_points.publish(conversions.point_cloud(points, header))
        if p["publish_mesh"] and self.mesh_marker and self.pub_mesh.get_subscription_count():
            with stage("mesh"):
                self.pub_mesh.publish(self.mesh_marker(faces, header))
        if p["publish_mesh_image"] and self.pub_image.get_subscription_count():
            with stage("image_draw"):
                drawn = self._draw(image, faces)
            with stage("image_publish"):
                self.pub_image.publish(conversions.bgr_to_image(drawn, header))

    def _draw(self, image: np.ndarray, faces: list) -> np.ndarray:
        canvas = image.copy()
        mode = self.p["draw_mode"]
        if mode == "mesh" and self.renderer is not None:
            return self.renderer.render_faces(canvas, faces)
        return draw(canvas, faces, "dense" if mode == "mesh" else mode)

    def _transforms(self, faces: list, header: Header) -> list:
        out = []
        for face in faces:
            name = self.face_name(face.id)
            face_frame = f"{self.p['face_frame_prefix']}{name}"
            out.append(conversions.transform_msg(header, face_frame, face.pose.translation,
                                                 face.pose.quaternion_xyzw))
            out.append(conversions.transform_msg(
                Header(stamp=header.stamp, frame_id=face_frame),
                f"{self.p['gaze_frame_prefix']}{name}", np.zeros(3), GAZE_QUATERNION))
        return out

    def _publish_diagnostics(self) -> None:
        header = Header(stamp=self.get_clock().now().to_msg())
        extra = {}
        if self.hri is not None:  # churn of people shows here
            extra = {"hri_face_topic_sets": str(self.hri.live),
                     "hri_face_topic_sets_created": str(self.hri.created)}
        self.pub_diag.publish(self.stats.status(
            f"{self.get_name()}: head pose", self.get_fully_qualified_name(),
            self.model_error, header, self.rejected_parameters, extra))


def main(args: list[str] | None = None) -> int:
    """Run the node until shutdown (Ctrl-C or SIGTERM); see :mod:`.runner`."""
    return run_node(HeadPoseNode, args, close=HeadPoseNode.stop)


if __name__ == "__main__":
    sys.exit(main())
