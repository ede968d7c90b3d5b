"""ROS 2 node ``head_pose_node``: camera images in; head pose, faces, TF, markers and mesh out.

A thin layer over :class:`~dense_head_pose.HeadPoseEstimator` and its trackers, as a
**managed (lifecycle) node**, which is how robots' supervisors (Nav2-style lifecycle
managers, ros4hri's stacks) bring perception up and down:

* ``configure``: the parameters are already validated (at start-up and on every change);
  the models are loaded, the output publishers created, the two worker threads started. A
  missing or corrupt model pack fails the transition with the message ``/diagnostics``
  shows; the node stays up, unconfigured, to be configured again;
* ``activate``: the image and camera_info subscriptions are created and the (lifecycle)
  publishers enabled; ``deactivate``: the subscriptions go, the frame in hand is finished
  (within one frame's time), the tracks and their ROS4HRI topics are reset and nothing more
  is published: an inactive node holds its models and uses no CPU;
* ``cleanup``: the workers stop, the publishers go, the models are freed (and the heap
  returned to the system); ``shutdown`` from any state.

Started plainly (``ros2 run``, ``demo.launch.py``: parameter ``managed`` false, the default),
it configures and activates itself, and while the models are missing it retries every 5 s,
as before. With ``managed: true`` (``head_pose.launch.py lifecycle:=true``) it waits, in
``unconfigured``, for a manager (or ``ros2 lifecycle set``).

Inside, the two-stage pipeline of the plain node: subscription callbacks only park the
newest frame in a one-slot mailbox (:mod:`.workers`); the *estimation* thread estimates
and publishes the primary outputs at once; the *output* thread builds the heavy, optional
ones (:mod:`.outputs`), each only if someone subscribes.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import gc
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import SetParametersResult
from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Header

from .. import model_pack
from ..errors import DenseHeadPoseError, ModelError, RendererUnavailableError
from ..interfaces.camera_info import CameraInfoCache, stamp_ns
from ..pipeline.estimator import EstimatorOptions, HeadPoseEstimator
from ..pipeline.pose import CameraIntrinsics
from ..pipeline.render import MeshRenderer
from ..video.streams import TrackerPool
from . import conversions
from .diagnostics import NodeStats
from .markers import MeshMarkerBuilder
from .outputs import Outputs
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
from .problem_log import ProblemLog, clip
from .process import help_text, run_node
from .workers import Worker

NODE_NAME = "head_pose_node"
_THROTTLE_S = 5.0
_FIRST_CAMERA_INFO_WAIT_S = 0.5  # see camera_info.py; once, and only if someone publishes it
_RETRY_S = 5.0
_DRAIN_S = 2.0  # a deactivation waits this long at most for the frame in hand
_QOS_CHECK_S = 2.0  # image_qos auto: how often the publishers' QoS is looked at
ESTIMATOR_KEYS = frozenset({"score_threshold", "max_faces", "retry_mirrored", "refine",
                            "mirror", "accurate", "pose_method", "detector_input"})


def _logged(transition: Callable[..., TransitionCallbackReturn]
            ) -> Callable[..., TransitionCallbackReturn]:
    """A transition callback whose unexpected exception is logged, with its type, before
    rclpy turns it into the error transition (rclpy itself says nothing about it)."""
    @functools.wraps(transition)
    def run(self: HeadPoseNode, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            return transition(self, state)
        except Exception as exc:
            self.get_logger().error(f"{transition.__name__} failed: {clip(repr(exc))}")
            raise
    return run


class HeadPoseNode(LifecycleNode):
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
        self.problems = ProblemLog(self.get_logger(), _THROTTLE_S)
        self.model_error: str | None = None
        self.estimator: HeadPoseEstimator | None = None
        self.tracker: TrackerPool | None = None
        self.outputs: Outputs | None = None
        self.hri: Any = None
        self.camera_infos = CameraInfoCache()
        self._warned_default_intrinsics = False
        self._lock = threading.Lock()  # the estimation thread vs parameter changes
        self._workers: list[Worker] = []
        self._inputs: list[Any] = []
        self._camera_info_sub: Any = None
        self._image_sub: Any = None
        self._image_reliable = self.p["image_qos"] == "reliable"
        self._qos_timer: Any = None
        self.exit_status: int | None = None
        """Set by ``shutdown``; the process runner then ends it with it."""
        self.state = "unconfigured"
        self.renderer: MeshRenderer | None = None
        try:  # needs no model: whether it loads is not the model pack's business
            self.renderer = MeshRenderer()
        except RendererUnavailableError as exc:
            self.get_logger().warning(f"{exc}; mesh_image falls back to plain drawing")
        self.get_logger().info(f"starting: renderer "
                               f"{'native' if self.renderer else 'unavailable'}, "
                               f"{'managed' if self.p['managed'] else 'plain start'}")
        # diagnostics in every state: they say which one, and why it is not active
        self.pub_diag = self.create_publisher(DiagnosticArray, "/diagnostics", QoSProfile(depth=10))
        self.create_timer(float(self.p["diagnostics_period"]), self._publish_diagnostics)
        if not self.p["managed"]:  # a plain start: bring itself up, and retry while it cannot
            self._bring_up()
            self.create_timer(_RETRY_S, self._bring_up)
        else:
            self.get_logger().info("managed: waiting in 'unconfigured' for a lifecycle "
                                   "manager (ros2 lifecycle set ... configure)")

    def _bring_up(self) -> None:
        """Configure (if unconfigured) and activate (if inactive): a plain start."""
        if self.state == "unconfigured":
            self.trigger_configure()
        if self.state == "inactive":
            self.trigger_activate()

    # ---------------------------------------------------------------------- transitions
    @_logged
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Load the models, create the publishers, start the workers."""
        try:
            estimator, directory = self._load_estimator()
        except (ModelError, ValueError) as exc:
            self.model_error = str(exc)
            self.get_logger().error(f"cannot load the model pack: {exc}",
                                    throttle_duration_sec=60.0)
            return TransitionCallbackReturn.FAILURE
        self.model_error = None
        renderer = self.renderer
        mesh_marker = MeshMarkerBuilder(estimator.model.dense_mean, estimator.model.triangles,
                                        self.p["mesh_marker_cell_m"] * 1e6)
        self.hri = self._hri_output()
        self.outputs = Outputs(self, self.p, self.stats, mesh_marker, renderer, self.hri)
        # a tracker per camera (frame_id): one topic may carry several
        self.tracker = TrackerPool(estimator, tracker_options(self.p))
        self.estimator = estimator
        self._workers = [Worker("estimation", self._process, self._worker_error),
                         Worker("outputs", self.outputs.publish_heavy, self._worker_error)]
        self.get_logger().info(
            f"configured: models from {directory} (dense vertices: "
            f"{estimator.model.dense_path}; precision {estimator.options.precision}), "
            f"face_mesh marker {mesh_marker.n_triangles} triangles per face, input "
            f"'{self.p['input_transport']}', TF via {self.outputs.tf.backend}, ROS4HRI "
            f"{'on' if self.hri else 'off'}, renderer {'native' if renderer else 'unavailable'}")
        self.state = "inactive"
        return super().on_configure(state)

    @_logged
    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Subscribe; the lifecycle publishers are enabled by the base class."""
        self._image_sub = self._subscribe_image(self.p["image_qos"] == "reliable")
        self._camera_info_sub = self.create_subscription(
            CameraInfo, "camera_info", self.camera_infos.add, qos_profile_sensor_data)
        self._inputs = [self._image_sub, self._camera_info_sub]
        if self.p["image_qos"] == "auto":
            self._match_image_qos()
            self._qos_timer = self.create_timer(_QOS_CHECK_S, self._match_image_qos)
        if self.hri is not None:
            self.hri.resume()
        self.state = "active"
        self.get_logger().info("active")
        return super().on_activate(state)

    def _subscribe_image(self, reliable: bool) -> Any:
        """The image subscription: reliable (a few frames deep) or best effort."""
        qos = (QoSProfile(depth=3, reliability=ReliabilityPolicy.RELIABLE) if reliable
               else qos_profile_sensor_data)
        if self.p["input_transport"] == "compressed":
            return self.create_subscription(CompressedImage, "image/compressed",
                                            self._on_image, qos)
        return self.create_subscription(Image, "image", self._on_image, qos)

    def _match_image_qos(self) -> None:
        """``image_qos: auto``: subscribe reliably when every publisher of the image topic is
        reliable (large frames then cross DDS without loss), else best effort (which matches
        every publisher). Run at activation and every few seconds, as publishers come and
        go: a reliable subscription would not hear a best-effort publisher at all."""
        sub = self._image_sub
        if sub is None or sub not in self._inputs:
            return
        topic = sub.topic_name
        infos = self.get_publishers_info_by_topic(topic)
        want = bool(infos) and all(i.qos_profile.reliability == ReliabilityPolicy.RELIABLE
                                   for i in infos)
        if want == self._image_reliable:
            return
        self.destroy_subscription(sub)
        self._inputs.remove(sub)
        self._image_sub = self._subscribe_image(want)
        self._inputs.append(self._image_sub)
        self._image_reliable = want
        self.get_logger().info(f"image_qos auto: {len(infos)} publisher(s) of {topic}, "
                               f"subscribed "
                               f"{'reliable' if want else 'best effort'}")

    @_logged
    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Stop taking frames, finish the one in hand, reset the tracks."""
        self._unsubscribe()
        for worker in self._workers:
            if not worker.drain(_DRAIN_S):
                self.get_logger().warning(f"the {worker} thread is still busy after "
                                          f"{_DRAIN_S} s")
        with self._lock:
            if self.tracker is not None:
                self.tracker.reset()
        if self.hri is not None:
            self.hri.retire_all()
        self.state = "inactive"
        self.get_logger().info("inactive: models held, no frames taken")
        return super().on_deactivate(state)

    @_logged
    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Free the models and everything made at configure."""
        self._release()
        self.get_logger().info("cleaned up: models freed")
        return super().on_cleanup(state)

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        """From any state: unsubscribe and release everything."""
        self._unsubscribe()
        self._release()
        self.state = "finalized"
        self.exit_status = 0  # a finalized node can do nothing more: the process ends
        return TransitionCallbackReturn.SUCCESS

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        """An exception in a transition: back to unconfigured, everything released."""
        self._unsubscribe()
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def _unsubscribe(self) -> None:
        if self._qos_timer is not None:
            self.destroy_timer(self._qos_timer)
            self._qos_timer = None
        for sub in self._inputs:
            self.destroy_subscription(sub)
        self._inputs = []
        self._image_sub = None
        self._image_reliable = self.p["image_qos"] == "reliable"

    def _release(self) -> None:
        """Stop the workers, destroy the publishers, free the models (back to
        unconfigured)."""
        if self.hri is not None:
            self.hri.stop()  # frees a worker waiting for per-face publishers
        deadline = time.monotonic() + 3.0
        for worker in self._workers:
            worker.stop(deadline - time.monotonic())
        self._workers = []
        if self.outputs is not None:
            self.outputs.destroy(self.destroy_publisher)
        self.outputs = self.hri = None
        with self._lock:
            self.estimator = self.tracker = None
        self.state = "unconfigured"
        gc.collect()  # the interpreters and the dense weights: about 60 MB
        _return_heap_to_system()

    def stop(self) -> None:
        """The process is ending (Ctrl-C, SIGTERM, its launch gone), whatever the state:
        release everything within 3 s, well within the 5 s ``ros2 launch`` grants."""
        self._unsubscribe()
        self._release()

    # ---------------------------------------------------------------- set-up and parameters
    def _load_estimator(self) -> tuple[HeadPoseEstimator, Any]:
        options = EstimatorOptions(
            num_threads=int(self.p["num_threads"]),
            score_threshold=float(self.p["score_threshold"]),
            max_faces=int(self.p["max_faces"]),
            retry_mirrored=bool(self.p["retry_mirrored"]), refine=bool(self.p["refine"]),
            mirror=bool(self.p["mirror"]), accurate=bool(self.p["accurate"]),
            precision=str(self.p["precision"]), pose_method=str(self.p["pose_method"]),
            detector_input=str(self.p["detector_input"]),
            detector_model=str(self.p["detector_model"]))
        directory = model_pack.locate(self.p["models_dir"] or None)
        return HeadPoseEstimator.from_model_dir(directory, options), directory

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
        ids = FaceIds(bool(self.p["hri.deterministic_ids"]), prefix=self.p["face_id_prefix"])
        return HriOutput(self, ids, (int(self.p["hri.face_width"]),
                                     int(self.p["hri.face_height"])),
                         linger=float(self.p["forget_after"]),
                         tracked_topic=self.p["hri.tracked_topic"])

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
        """Validate and apply parameter changes, in any state: what is loaded takes them at
        once, the rest at the next ``configure``."""
        proposed = {**self.p, **{p.name: p.value for p in params}}
        for param in params:
            problem = check_value(param.name, param.value, proposed)
            if problem:
                return SetParametersResult(successful=False, reason=problem)
        changes = {p.name: normalise(p.name, p.value) for p in params}
        try:
            options = tracker_options({**self.p, **changes})
            EstimatorOptions(**{k: v for k, v in {**self.p, **changes}.items()
                                if k in ESTIMATOR_KEYS})  # validated even when unconfigured
            with self._lock:
                if self.estimator is not None and ESTIMATOR_KEYS & changes.keys():
                    self.estimator.configure(**{k: v for k, v in changes.items()
                                                if k in ESTIMATOR_KEYS})
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

    # ------------------------------------------------------------------------- frames
    def _on_image(self, msg: Image | CompressedImage) -> None:
        workers = self._workers
        if workers:
            self.stats.on_received(workers[0].mailbox.put((msg, time.monotonic())))

    def _worker_error(self, exc: BaseException) -> bool:
        """A worker's handler raised: count and log it; False (stop) when shutting down."""
        if not self.context.ok():  # publishers are gone, nothing is lost
            return False
        self.stats.on_error(clip(f"unexpected: {exc!r}"))
        self.get_logger().error(f"{threading.current_thread().name} failed: {exc!r}",
                                throttle_duration_sec=_THROTTLE_S)
        return True

    def _intrinsics(self, header: Header, width: int, height: int) -> CameraIntrinsics:
        """The intrinsics of the CameraInfo that belongs to this image (see camera_info.py),
        else default ones (f = width, centred)."""
        sub = self._camera_info_sub
        if self.camera_infos.empty and sub is not None and self.count_publishers(
                sub.topic_name):
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
        """The estimation thread's work on one frame."""
        outputs, tracker = self.outputs, self.tracker
        if outputs is None or tracker is None:  # released meanwhile
            return
        header = Header(stamp=msg.header.stamp,
                        frame_id=self.p["camera_frame"] or msg.header.frame_id)
        try:
            image = (conversions.compressed_to_bgr(msg) if isinstance(msg, CompressedImage)
                     else conversions.image_to_bgr(msg))
        except DenseHeadPoseError as exc:
            self.stats.on_error(clip(str(exc)))
            self.problems.warning("frame", f"unusable frame: {exc}")
            outputs.publish_unusable(header)
            return
        height, width = image.shape[:2]
        intrinsics = self._intrinsics(msg.header, width, height)
        # the frame's own time drives the filters: a replayed bag filters as it was recorded
        stamp_nanoseconds = stamp_ns(msg.header.stamp)
        stamp = stamp_nanoseconds * 1e-9 or time.monotonic()
        with self.stats.stage("estimate"), self._lock:
            result = tracker(image, stamp, intrinsics, stream=msg.header.frame_id)
        faces = result.faces
        outputs.publish_primary(faces, header, image)
        # put() is True when a waiting frame's heavy outputs were replaced (skipped)
        if outputs.heavy_wanted() and len(self._workers) > 1 and \
                self._workers[1].mailbox.put((faces, header, image)):
            self.stats.on_outputs_skipped()
        latency = None
        if stamp_nanoseconds:
            latency = (self.get_clock().now().nanoseconds - stamp_nanoseconds) / 1e6
        self.stats.on_processed((time.monotonic() - received) * 1e3, latency, len(faces))

    def _publish_diagnostics(self) -> None:
        header = Header(stamp=self.get_clock().now().to_msg())
        extra = {"lifecycle_state": self.state}
        if self.hri is not None:  # churn of people shows here
            extra.update(hri_face_topic_sets=str(self.hri.live),
                         hri_face_topic_sets_created=str(self.hri.created))
        name = self.get_fully_qualified_name()  # one per camera: /front/head_pose_node
        self.pub_diag.publish(self.stats.status(
            f"{name.lstrip('/')}: head pose", name,
            self.model_error, header, self.rejected_parameters, extra, self.state))


def _return_heap_to_system() -> None:
    """glibc keeps freed memory for reuse; after ``cleanup`` give it back (Linux only)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def main(args: list[str] | None = None) -> int:
    """Run the node until shutdown (Ctrl-C or SIGTERM); see :mod:`.process`."""
    return run_node(HeadPoseNode, args, close=HeadPoseNode.stop, usage=help_text(
        "head_pose_node: camera images in (image, camera_info); head pose, faces, TF, "
        "markers, mesh and ROS4HRI out.",
        [(spec.name, spec.default, spec.description) for spec in PARAMETERS]))


if __name__ == "__main__":
    sys.exit(main())
