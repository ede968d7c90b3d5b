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
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

from .. import model_pack
from ..errors import DenseHeadPoseError, ModelError, RendererUnavailableError
from ..interfaces.camera_info import stamp_ns
from ..pipeline.estimator import HeadPoseEstimator
from ..pipeline.render import MeshRenderer
from ..video.streams import TrackerPool
from . import conversions
from .camera_input import CameraInput
from .diagnostics import NodeStats
from .markers import MeshMarkerBuilder
from .parameters import (
    ESTIMATOR_KEYS,
    PARAMETERS,
    TRACKER_KEYS,
    check_value,
    declare,
    engagement_options,
    estimator_options,
    normalise,
    output_options,
    report_ignored_parameters,
    tracker_options,
)
from .problem_log import ProblemLog, clip
from .process import help_text, run_node
from .publishers import Publishers
from .workers import Worker

NODE_NAME = "head_pose_node"
_THROTTLE_S = 5.0
_RETRY_S = 5.0
_DRAIN_S = 2.0  # a deactivation waits this long at most for the frame in hand


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
            self.p[spec.name] = declare(self, spec, self.p, self.rejected_parameters)
        report_ignored_parameters(self, self.rejected_parameters)
        self.add_on_set_parameters_callback(self._on_set_parameters)

        self.stats = NodeStats()
        self.problems = ProblemLog(self.get_logger(), _THROTTLE_S)
        self.model_error: str | None = None
        self.estimator: HeadPoseEstimator | None = None
        self.tracker: TrackerPool | None = None
        self.outputs: Publishers | None = None
        self.hri: Any = None
        self.camera = CameraInput(self, self.p["input_transport"], self.p["image_qos"],
                                  self._on_image, self.problems)
        self._lock = threading.Lock()  # the estimation thread vs parameter changes
        self._workers: list[Worker] = []
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
        self.outputs = Publishers(self, output_options(self.p), self.stats, mesh_marker,
                                  renderer, self.hri, self._engagement_output())
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
        self.camera.subscribe()
        if self.hri is not None:
            self.hri.resume()
        if self.outputs is not None and self.outputs.engagement is not None:
            self.outputs.engagement.resume()
        self.state = "active"
        self.get_logger().info("active")
        return super().on_activate(state)

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
        if self.outputs is not None and self.outputs.engagement is not None:
            self.outputs.engagement.pause()
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
        self.camera.unsubscribe()

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
        directory = model_pack.locate(self.p["models_dir"] or None)
        return HeadPoseEstimator.from_model_dir(directory, estimator_options(self.p)), \
            directory

    def _hri_output(self) -> Any:
        """The ROS4HRI output if ``hri.enable`` and the installed packages allow it."""
        if self.p["hri.enable"] == "off":
            return None
        try:
            from .hri_output import hri_output
        except ImportError as exc:
            if self.p["hri.enable"] == "on":
                self.get_logger().error(f"hri.enable is 'on' but hri_msgs cannot be imported "
                                        f"({exc}): install ros-$ROS_DISTRO-hri-msgs; "
                                        "running without the ROS4HRI interface")
            return None
        return hri_output(self, self.p)

    def _engagement_output(self) -> Any:
        """Attention and engagement when ``engagement.enable`` and ROS4HRI allow it."""
        if self.p["engagement.enable"] == "off" or self.hri is None:
            if self.p["engagement.enable"] == "on" and self.hri is None:
                self.get_logger().error("engagement.enable is 'on' but the ROS4HRI interface "
                                        "is off or hri_msgs is missing: no engagement")
            return None
        from .engagement_output import EngagementOutput

        return EngagementOutput(self, engagement_options(self.p))

    def _on_set_parameters(self, params: list[Parameter]) -> SetParametersResult:
        """Validate and apply parameter changes, in any state: what is loaded takes them at
        once, the rest at the next ``configure``."""
        proposed = {**self.p, **{p.name: p.value for p in params}}
        for param in params:
            problem = check_value(param.name, param.value, proposed)
            if problem:
                return SetParametersResult(successful=False, reason=problem)
        changes = {p.name: normalise(p.name, p.value) for p in params}
        proposed = {**self.p, **changes}
        try:
            tracker = tracker_options(proposed)
            estimator_options(proposed)  # validated even when unconfigured
            with self._lock:
                if self.estimator is not None and ESTIMATOR_KEYS & changes.keys():
                    self.estimator.configure(**{k: v for k, v in changes.items()
                                                if k in ESTIMATOR_KEYS})
                if self.tracker is not None and TRACKER_KEYS & changes.keys():
                    self.tracker.reconfigure(tracker)
        except (TypeError, ValueError) as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        self.p.update(changes)
        if self.outputs is not None:
            self.outputs.options = output_options(self.p)
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
        intrinsics = self.camera.intrinsics(msg.header, width, height)
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
        extra = {"lifecycle_state": self.state,
                 "intrinsics": "from camera_info" if self.camera.intrinsics_given else
                 "guessed (f = image width): no camera_info matched yet"}
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
