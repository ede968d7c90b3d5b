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
from dataclasses import dataclass
from typing import Any

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseArray, PoseStamped
from rcl_interfaces.msg import (
    FloatingPointRange,
    IntegerRange,
    ParameterDescriptor,
    ParameterType,
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
from ..drawing import DRAW_MODES, draw
from ..errors import DenseHeadPoseError, ModelError, RendererUnavailableError
from ..estimator import POSE_METHODS, EstimatorOptions, HeadPoseEstimator
from ..one_euro import OneEuroParams
from ..pose import CameraIntrinsics, quaternion_from_matrix
from ..render import MeshRenderer
from ..tracking import QUANTITIES, FaceTracker, SmoothingOptions, TrackerOptions
from . import conversions
from .camera_info import CameraInfoCache, stamp_ns
from .diagnostics import NodeStats
from .markers import MeshMarkerBuilder, landmark_markers
from .runner import run_node
from .tf_output import TfOutput

NODE_NAME = "head_pose_node"
MESH_IMAGE_MODES = (*DRAW_MODES, "mesh")
#: Rotation of the gaze frame (optical axes, z along the gaze) in the head frame.
GAZE_IN_HEAD = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])
GAZE_QUATERNION = quaternion_from_matrix(GAZE_IN_HEAD)
_THROTTLE_S = 5.0


@dataclass(frozen=True)
class ParamSpec:
    """A declared parameter: default, description, range or choices, run-time changeable."""

    name: str
    default: Any
    description: str
    read_only: bool = False
    int_range: tuple[int, int] | None = None
    float_range: tuple[float, float] | None = None
    choices: tuple[str, ...] | None = None
    on_off: bool = False
    """Choices that include on/off: YAML (``-p x:=off``, launch, parameter files) reads those
    as booleans, so a boolean is accepted too and means on or off."""

    def descriptor(self) -> ParameterDescriptor:
        """The rcl descriptor (rclpy enforces ranges; choices are checked by the node)."""
        ptype = {bool: ParameterType.PARAMETER_BOOL, int: ParameterType.PARAMETER_INTEGER,
                 float: ParameterType.PARAMETER_DOUBLE,
                 str: ParameterType.PARAMETER_STRING}[type(self.default)]
        text = self.description
        if self.choices:
            text += f" One of: {', '.join(self.choices)}."
        d = ParameterDescriptor(name=self.name, type=ptype, description=text,
                                read_only=self.read_only, dynamic_typing=self.on_off)
        if self.on_off:
            d.type = ParameterType.PARAMETER_NOT_SET
        if self.int_range:
            d.integer_range = [IntegerRange(from_value=self.int_range[0],
                                            to_value=self.int_range[1], step=1)]
        if self.float_range:
            d.floating_point_range = [FloatingPointRange(from_value=self.float_range[0],
                                                         to_value=self.float_range[1], step=0.0)]
        return d


PARAMETERS: tuple[ParamSpec, ...] = (
    ParamSpec("models_dir", "", "Model pack directory; empty: $DENSE_HEAD_POSE_MODELS, then "
              "the package's share/dense_head_pose/models, then the source tree.", read_only=True),
    ParamSpec("num_threads", 1, "LiteRT threads per model.", read_only=True, int_range=(1, 16)),
    ParamSpec("input_transport", "raw", "raw: sensor_msgs/Image on 'image'; compressed: "
              "sensor_msgs/CompressedImage on 'image/compressed'.", read_only=True,
              choices=("raw", "compressed")),
    ParamSpec("image_qos", "sensor_data", "Image subscription QoS: sensor_data (best effort, "
              "newest frame only) or reliable (for bag playback or reliable publishers that "
              "must not lose frames).", read_only=True, choices=("sensor_data", "reliable")),
    ParamSpec("score_threshold", 0.6, "Minimum detector confidence of a face.",
              float_range=(0.05, 0.99)),
    ParamSpec("max_faces", 8, "Largest N faces processed per frame (0 disables processing).",
              int_range=(0, 64)),
    ParamSpec("refine", True, "Second alignment pass from the first pass's landmarks "
              "(steadier, one more inference per face)."),
    ParamSpec("pose_method", "affine", "Metric pose from the 3DMM camera (affine) or "
              "refined by solvePnP (pnp).", choices=POSE_METHODS),
    ParamSpec("camera_frame", "", "frame_id of the outputs; empty: the image header's "
              "frame_id (the camera optical frame)."),
    ParamSpec("face_frame_prefix", "face_", "TF frame of face <id>: <prefix><id> (REP-155)."),
    ParamSpec("gaze_frame_prefix", "gaze_", "TF frame of the gaze of face <id>: <prefix><id>."),
    ParamSpec("publish_tf", True, "Broadcast face_<id> and gaze_<id> frames."),
    ParamSpec("publish_landmarks", True, "Publish face_landmarks (MarkerArray)."),
    ParamSpec("publish_points", True, "Publish face_points (PointCloud2 of dense vertices)."),
    ParamSpec("publish_mesh", True, "Publish face_mesh (decimated TRIANGLE_LIST Marker)."),
    ParamSpec("publish_mesh_image", True, "Publish mesh_image (overlay on the input image)."),
    ParamSpec("draw_mode", "mesh", "What mesh_image shows.", choices=MESH_IMAGE_MODES),
    ParamSpec("points_step", 1, "face_points keeps every N-th dense vertex.",
              int_range=(1, 64)),
    ParamSpec("mesh_marker_cell_m", 0.01, "Vertex clustering cell of the face_mesh marker, "
              "metres (smaller: finer and slower).", read_only=True,
              float_range=(0.002, 0.05)),
    ParamSpec("diagnostics_period", 1.0, "Seconds between /diagnostics reports.",
              read_only=True, float_range=(0.1, 60.0)),
    ParamSpec("smooth", TrackerOptions.smooth, "One-Euro smoothing of each tracked face (pose, "
              "TF, landmarks, mesh)."),
    ParamSpec("detect_every", TrackerOptions.detect_every, "Run the face detector every N "
              "frames; faces are tracked by their landmarks in between, and it runs at once "
              "when one is lost. 1: every frame, no landmark tracking.", int_range=(1, 1000)),
    ParamSpec("forget_after", TrackerOptions.forget_after, "Seconds a lost face's id is kept "
              "for it, should it come back where it was lost.", float_range=(0.0, 3600.0)),
    *(ParamSpec(f"smoothing.{quantity}.{field}", float(getattr(getattr(SmoothingOptions(),
                                                                       quantity), field)),
                f"One-Euro {field} of the {quantity} filter ({doc}).", float_range=bounds)
      for quantity in QUANTITIES
      for field, doc, bounds in (
          ("min_cutoff", "Hz, cutoff at rest", (0.001, 1000.0)),
          ("beta", "cutoff rise per unit of speed", (0.0, 100000.0)),
          ("d_cutoff", "Hz, cutoff of the speed estimate", (0.001, 1000.0)),
          ("min_speed", "speeds up to it count as rest", (0.0, 1000.0)))),
    ParamSpec("hri.enable", "auto", "ROS4HRI interface (/humans/faces/...): auto (on when "
              "hri_msgs is installed), on, off.", read_only=True, choices=("auto", "on", "off"),
              on_off=True),
    ParamSpec("hri.deterministic_ids", False, "ROS4HRI face ids f00001, f00002, ... instead "
              "of random 5-letter ones.", read_only=True),
    ParamSpec("hri.face_width", 128, "Width of /humans/faces/<id>/cropped and aligned, pixels.",
              int_range=(16, 1024)),
    ParamSpec("hri.face_height", 128, "Height of /humans/faces/<id>/cropped and aligned.",
              int_range=(16, 1024)),
)
TRACKER_KEYS = frozenset({"smooth", "detect_every", "forget_after"}
                         | {spec.name for spec in PARAMETERS
                            if spec.name.startswith("smoothing.")})
SPECS = {spec.name: spec for spec in PARAMETERS}


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
    """Warnings throttled per kind of problem, not per call site: a flood of truncated frames
    prints once every few seconds, yet a different problem in between still shows at once."""

    def __init__(self, logger: Any, period_s: float = _THROTTLE_S) -> None:
        self._logger = logger
        self._period = period_s
        self._last: dict[str, float] = {}

    def warning(self, text: str) -> None:
        """Log ``text`` unless the same kind of message (digits ignored) was just logged."""
        key = re.sub(r"\d+", "#", text)[:80]
        now = time.monotonic()
        if now - self._last.get(key, -1e9) >= self._period:
            self._last[key] = now
            self._logger.warning(text)


class HeadPoseNode(Node):
    """See the module docstring; topics and parameters are tabled in the README."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(NODE_NAME, **kwargs)
        self.rejected_parameters: list[str] = []
        self.p = {spec.name: self._declare(spec) for spec in PARAMETERS}
        self.add_on_set_parameters_callback(self._on_set_parameters)

        self.stats = NodeStats()
        self.problems = ProblemLog(self.get_logger())
        self.estimator: HeadPoseEstimator | None = None
        self.model_error: str | None = None
        self.renderer = None
        self.mesh_marker: MeshMarkerBuilder | None = None
        self.tracker: FaceTracker | None = None
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
        self.create_subscription(CameraInfo, "camera_info", self._on_camera_info,
                                 qos_profile_sensor_data)
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
                pose_method=str(self.p["pose_method"]))
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
        self.tracker = FaceTracker(estimator, tracker_options(self.p))
        self.estimator = estimator
        self.get_logger().info(f"models loaded from {directory}; face_mesh marker: "
                               f"{self.mesh_marker.n_triangles} triangles per face")

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
                         (int(self.p["hri.face_width"]), int(self.p["hri.face_height"])))

    def _retry_models(self) -> None:
        if self.estimator is None:
            self._load_models()

    def _declare(self, spec: ParamSpec) -> Any:
        """Declare a parameter; its value, or its default if the one given at start-up is of
        the wrong type, out of range or not a choice: one error line naming it, the node
        runs on (the same rule as a refused change at run time, which leaves it unchanged)."""
        try:
            value = self.declare_parameter(spec.name, spec.default, spec.descriptor()).value
            problem = _check_choice(spec.name, value)
        except (InvalidParameterTypeException, InvalidParameterValueException) as exc:
            value, problem = None, str(exc).splitlines()[0]
        if problem is None:
            return _normalise(spec.name, value)
        if not self.has_parameter(spec.name):
            self.declare_parameter(spec.name, spec.default, spec.descriptor(),
                                   ignore_override=True)
        else:
            self.set_parameters([Parameter(spec.name, value=spec.default)])
        self.rejected_parameters.append(spec.name)
        self.get_logger().error(f"parameter {spec.name}: {problem}; using the default "
                                f"{spec.default!r}")
        return spec.default

    def _on_set_parameters(self, params: list[Parameter]) -> SetParametersResult:
        for param in params:
            problem = _check_choice(param.name, param.value)
            if problem:
                return SetParametersResult(successful=False, reason=problem)
        changes = {p.name: _normalise(p.name, p.value) for p in params}
        estimator_keys = {"score_threshold", "max_faces", "refine", "pose_method"}
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
                self.stats.on_error(f"unexpected: {exc!r}")
                self.get_logger().error(f"{threading.current_thread().name} failed: {exc!r}",
                                        throttle_duration_sec=_THROTTLE_S)

    def stop(self) -> None:
        """Stop both threads (before destroying the node); waits 3 s at most, well within
        the 5 s ``ros2 launch`` grants before it escalates to SIGTERM."""
        self._frames.close()
        self._outputs.close()
        deadline = time.monotonic() + 3.0
        for thread in self._threads:
            thread.join(timeout=max(deadline - time.monotonic(), 0.0))

    # ------------------------------------------------------------------------ processing
    def _intrinsics(self, header: Header, width: int, height: int) -> CameraIntrinsics:
        """The intrinsics of the CameraInfo that belongs to this image (see camera_info.py),
        else default ones (f = width, centred)."""
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
            self.problems.warning(problem if intrinsics else
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
            self.stats.on_error(str(exc))
            self.problems.warning(f"unusable frame: {exc}")
            self.pub_faces.publish(FaceArrayMsg(header=header))
            if self.hri is not None:
                self.hri.publish([], header, None)
            return
        height, width = image.shape[:2]
        intrinsics = self._intrinsics(msg.header, width, height)
        # the frame's own time drives the filters: a replayed bag filters as it was recorded
        stamp = stamp_ns(msg.header.stamp) * 1e-9 or time.monotonic()
        with self.stats.stage("estimate"), self._lock:
            assert self.tracker is not None
            result = self.tracker(image, stamp, intrinsics, stream=msg.header.frame_id)
        faces = result.faces
        self._publish(faces, header, image)
        done = time.monotonic()
        stamp_nanoseconds = stamp_ns(msg.header.stamp)
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
                self.hri.face_size = (int(self.p["hri.face_width"]),
                                      int(self.p["hri.face_height"]))
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
        self.pub_diag.publish(self.stats.status(
            f"{self.get_name()}: head pose", self.get_fully_qualified_name(),
            self.model_error, header, self.rejected_parameters))


def tracker_options(p: dict[str, Any]) -> TrackerOptions:
    """The tracker's options from the node's parameters (raises on invalid ones)."""
    smoothing = SmoothingOptions(**{
        quantity: OneEuroParams(**{field: p[f"smoothing.{quantity}.{field}"] for field in (
            "min_cutoff", "beta", "d_cutoff", "min_speed")})
        for quantity in QUANTITIES})
    return TrackerOptions(detect_every=p["detect_every"], smooth=p["smooth"],
                          forget_after=p["forget_after"], smoothing=smoothing)


def _normalise(name: str, value: Any) -> Any:
    """A parameter value as the node uses it (on/off choices given as booleans)."""
    spec = SPECS.get(name)
    if spec is not None and spec.on_off and isinstance(value, bool):
        return "on" if value else "off"
    return value


def _check_choice(name: str, value: Any) -> str | None:
    spec = SPECS.get(name)
    value = _normalise(name, value)
    if spec and spec.choices and value not in spec.choices:
        return f"parameter {name} must be one of {spec.choices}, got {value!r}"
    return None


def main(args: list[str] | None = None) -> int:
    """Run the node until shutdown (Ctrl-C or SIGTERM); see :mod:`.runner`."""
    return run_node(HeadPoseNode, args, close=HeadPoseNode.stop)


if __name__ == "__main__":
    sys.exit(main())
