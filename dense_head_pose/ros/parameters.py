"""The parameters of ``head_pose_node``: declarations, checks and what they configure.

Each parameter is declared once here, with its default, description, range or choices and
whether it can change at run time; ``config/head_pose.yaml`` lists the same (a test keeps the
two equal), and the README tables them. Values are validated the same way at start-up and at
run time: rclpy enforces the declared type and range, the choices are checked here.
"""

from __future__ import annotations

import difflib
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import yaml
from rcl_interfaces.msg import (
    FloatingPointRange,
    IntegerRange,
    ParameterDescriptor,
    ParameterType,
)
from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException
from rclpy.parameter import Parameter

from ..attention.engagement import EngagementOptions
from ..interfaces.face_ids import id_prefix_problem
from ..interfaces.frame_messages import FrameOptions
from ..interfaces.names import ABSOLUTE_TOPIC, FRAME_NAME, FRAME_PREFIX
from ..pipeline.drawing import DRAW_MODES
from ..pipeline.estimator import EstimatorOptions
from ..video.motion_filter import MotionParams
from ..video.smoothing import QUANTITIES, SmoothingOptions
from ..video.tracking import TrackerOptions
from .problem_log import clip

MESH_IMAGE_MODES = (*DRAW_MODES, "mesh")


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


def _option(options: Any, name: str, description: str, read_only: bool = False,
            parameter: str | None = None) -> ParamSpec:
    """The parameter (named ``parameter``, default the option's name) of a library option
    (``EstimatorOptions``, ``TrackerOptions``, ``SmoothingOptions``): its default, range and
    choices are the option's own, so the node, the CLI and the library cannot disagree."""
    default = getattr(options(), name)
    limits = options.LIMITS.get(name)
    choices = getattr(options, "CHOICES", {}).get(name)
    kind = options.KINDS[name]
    return ParamSpec(
        parameter or name, kind(default), description, read_only=read_only,
        int_range=tuple(map(int, limits)) if limits and kind is int else None,
        float_range=tuple(map(float, limits)) if limits and kind is float else None,
        choices=choices)


PARAMETERS: tuple[ParamSpec, ...] = (
    ParamSpec("managed", False, "Lifecycle: false (a plain start) configures and activates at "
              "once; true waits in 'unconfigured' for a lifecycle manager or ros2 lifecycle "
              "set.", read_only=True),
    ParamSpec("models_dir", "", "Model pack directory; empty: $DENSE_HEAD_POSE_MODELS, then "
              "the package's share/dense_head_pose/models, then the source tree.", read_only=True),
    _option(EstimatorOptions, "num_threads", "LiteRT threads per model.", read_only=True),
    ParamSpec("input_transport", "raw", "raw: sensor_msgs/Image on 'image'; compressed: "
              "sensor_msgs/CompressedImage on 'image/compressed'.", read_only=True,
              choices=("raw", "compressed")),
    ParamSpec("image_qos", "auto", "Image subscription QoS: auto (reliable when every "
              "publisher of the image topic is reliable, else best effort; looked at again "
              "as publishers come and go), sensor_data (best effort, newest frame only) or "
              "reliable.", read_only=True, choices=("auto", "sensor_data", "reliable")),
    _option(EstimatorOptions, "score_threshold", "Minimum detector confidence of a face."),
    _option(EstimatorOptions, "detector_input", "Detector input: auto (320x240 for people "
            "close by, and a close look at the few places where it scores small faces "
            "likeliest for people across the room) or WxH, one look at that size (320x240: "
            "the fastest)."),
    _option(EstimatorOptions, "detector_model", "Detector weights: rfb320 (trained at "
            "320x240) or rfb640 (trained at 640x480).", read_only=True),
    _option(EstimatorOptions, "max_faces", "Largest N faces processed per frame (0 disables "
            "processing)."),
    _option(EstimatorOptions, "retry_mirrored", "When the detector finds no face, look again "
            "in the mirrored frame (finds more profiles; one more detector inference on "
            "frames without a face)."),
    _option(EstimatorOptions, "refine", "Second alignment pass from the first pass's "
            "landmarks (one more inference, or two with mirror, per face)."),
    _option(EstimatorOptions, "mirror", "Average each fit with its mirrored crop's (one more "
            "inference per face; more accurate, see docs/accuracy.md)."),
    _option(EstimatorOptions, "accurate", "Accuracy mode: five shifted crops and their "
            "mirrors averaged (ten inferences per face)."),
    _option(EstimatorOptions, "precision", "Regressor: float32, or int8 (built by models "
            "build --precision int8).", read_only=True),
    _option(EstimatorOptions, "pose_method", "Metric pose from the 3DMM camera (affine) or "
            "refined by solvePnP (pnp)."),
    ParamSpec("camera_frame", "", "frame_id of the outputs; empty: the image header's "
              "frame_id (the camera optical frame)."),
    ParamSpec("face_frame_prefix", "face_", "TF frame of face <id>: <prefix><id> (REP-155)."),
    ParamSpec("gaze_frame_prefix", "gaze_", "TF frame of the gaze of face <id>: <prefix><id>."),
    ParamSpec("face_id_prefix", "", "Prefix of this node's face ids (ROS4HRI ids and TF "
              "frames face_<id>, gaze_<id>), e.g. front_: with one node per camera, no two "
              "faces on the robot share an id.", read_only=True),
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
    _option(TrackerOptions, "smooth", "Smoothing of each tracked face (pose, TF, landmarks, "
            "mesh)."),
    _option(TrackerOptions, "detect_every", "Run the face detector every N frames; faces are "
            "tracked by their landmarks in between, and it runs at once when one is lost. 1: "
            "every frame, no landmark tracking."),
    _option(TrackerOptions, "forget_after", "Seconds a lost face's id is kept for it, should "
            "it come back where it was lost."),
    *(ParamSpec(f"smoothing.{quantity}.{field}",
                float(getattr(getattr(SmoothingOptions(), quantity), field)),
                f"The {quantity} filter's {field} ({doc}).",
                float_range=tuple(map(float, MotionParams.LIMITS[field])))
      for quantity in QUANTITIES
      for field, doc in (
          ("noise", "standard deviation of one estimate"),
          ("drift", "how far a still head wanders, per sqrt(s)"),
          ("acceleration", "how abruptly a moving head changes speed, per sqrt(s)"))),
    _option(SmoothingOptions, "switch_rate", "How often per second a head is expected to "
            "start or stop moving.", parameter="smoothing.switch_rate"),
    ParamSpec("hri.enable", "auto", "ROS4HRI interface (/humans/faces/...): auto (on when "
              "hri_msgs is installed), on, off.", read_only=True, choices=("auto", "on", "off"),
              on_off=True),
    ParamSpec("hri.deterministic_ids", False, "ROS4HRI face ids f00001, f00002, ... instead "
              "of random 5-letter ones.", read_only=True),
    ParamSpec("hri.tracked_topic", "/humans/faces/tracked", "Where the list of tracked face "
              "ids goes; with several cameras each node lists its own faces and "
              "hri_tracked_merger publishes the union on /humans/faces/tracked.",
              read_only=True),
    ParamSpec("hri.face_width", 128, "Width of /humans/faces/<id>/cropped and aligned, pixels.",
              int_range=(16, 1024)),
    ParamSpec("hri.face_height", 128, "Height of /humans/faces/<id>/cropped and aligned.",
              int_range=(16, 1024)),
    ParamSpec("engagement.enable", "auto", "Attention (/humans/interactions/gazing) and "
              "engagement (/humans/persons/<id>/engagement_status), as hri_engagement "
              "publishes them: auto and on follow the ROS4HRI interface, off.",
              read_only=True, choices=("auto", "on", "off"), on_off=True),
    *(_option(EngagementOptions, name, description, read_only=True,
              parameter=f"engagement.{name}") for name, description in (
        ("reference_frame", "The robot's TF frame (x forward, z up) mutual gaze is measured "
         "in; empty: the camera frame."),
        ("max_distance", "Metres beyond which a person is not engaged."),
        ("field_of_view", "Half-field of attention of people and robot, degrees."),
        ("engagement_threshold", "Mutual-gaze score above which a person looks at the robot."),
        ("observation_window", "Seconds of mutual gaze the engagement level is decided on."),
        ("rate", "Engagement decisions per second."),
        ("definition", "default (majority thresholds) or reference (hri_engagement's)."),
        ("decide_after", "default definition: seconds of samples before the first decision."))),
)
SPECS = {spec.name: spec for spec in PARAMETERS}
#: Parameters that are the estimator's options, and those it takes at run time.
ESTIMATOR_FIELDS = frozenset(EstimatorOptions.KINDS) & frozenset(SPECS)
ESTIMATOR_KEYS = frozenset(n for n in ESTIMATOR_FIELDS if not SPECS[n].read_only)
#: Parameters of the tracker (its options and the smoothing's).
TRACKER_KEYS = frozenset({n for n in TrackerOptions.KINDS if n in SPECS}
                         | {n for n in SPECS if n.startswith("smoothing.")})


@dataclass(frozen=True)
class OutputOptions:
    """What the node publishes, from its parameters."""

    frame: FrameOptions
    """Its TF frames (``publish_tf``, the frame prefixes)."""
    face_id_prefix: str = ""
    publish_landmarks: bool = True
    publish_points: bool = True
    publish_mesh: bool = True
    publish_mesh_image: bool = True
    draw_mode: str = "mesh"
    points_step: int = 1


def estimator_options(p: dict[str, Any]) -> EstimatorOptions:
    """The estimator's options from the node's parameters (raises on invalid ones)."""
    return EstimatorOptions(**{name: p[name] for name in ESTIMATOR_FIELDS})


def tracker_options(p: dict[str, Any]) -> TrackerOptions:
    """The tracker's options from the node's parameters (raises on invalid ones)."""
    smoothing = SmoothingOptions(switch_rate=p["smoothing.switch_rate"], **{
        quantity: MotionParams(**{field: p[f"smoothing.{quantity}.{field}"] for field in (
            "noise", "drift", "acceleration")})
        for quantity in QUANTITIES})
    return TrackerOptions(**{n: p[n] for n in TrackerOptions.KINDS if n in SPECS},
                          smoothing=smoothing)


def engagement_options(p: dict[str, Any]) -> EngagementOptions:
    """The engagement's options from the node's parameters."""
    return EngagementOptions(**{n: p[f"engagement.{n}"] for n in EngagementOptions.KINDS})


def output_options(p: dict[str, Any]) -> OutputOptions:
    """What to publish, from the node's parameters."""
    frame = FrameOptions(face_frame_prefix=p["face_frame_prefix"],
                         gaze_frame_prefix=p["gaze_frame_prefix"], tf=bool(p["publish_tf"]))
    return OutputOptions(frame, p["face_id_prefix"], bool(p["publish_landmarks"]),
                         bool(p["publish_points"]), bool(p["publish_mesh"]),
                         bool(p["publish_mesh_image"]), str(p["draw_mode"]),
                         int(p["points_step"]))


def normalise(name: str, value: Any) -> Any:
    """A parameter value as the node uses it (on/off choices given as booleans)."""
    spec = SPECS.get(name)
    if spec is not None and spec.on_off and isinstance(value, bool):
        return "on" if value else "off"
    return value


_FACE_GAZE = ("face_frame_prefix", "gaze_frame_prefix")


def check_value(name: str, value: Any, current: dict[str, Any]) -> str | None:
    """What is wrong with ``value`` for parameter ``name`` beyond its type and range (which
    rclpy checks), given the ``current`` values of the others; None if nothing."""
    spec = SPECS.get(name)
    value = normalise(name, value)
    if spec and spec.choices and value not in spec.choices:
        return f"parameter {name} must be one of {spec.choices}, got {_short(value)}"
    if name == "camera_frame" and value and not FRAME_NAME.fullmatch(value):
        return (f"parameter camera_frame must be empty or a TF frame name (letters, digits, "
                f"'_', '.', '/', '-'; no leading '/'; at most 200), got {_short(value)}")
    if name == "face_id_prefix" and id_prefix_problem(value):
        return f"parameter face_id_prefix {id_prefix_problem(value)}"
    if name == "engagement.reference_frame" and value and not FRAME_NAME.fullmatch(value):
        return (f"parameter engagement.reference_frame must be empty or a TF frame name, got "
                f"{_short(value)}")
    if name == "hri.tracked_topic" and not ABSOLUTE_TOPIC.fullmatch(str(value)):
        return f"parameter hri.tracked_topic must be an absolute topic name, got {_short(value)}"
    if name in _FACE_GAZE:
        if not isinstance(value, str) or not FRAME_PREFIX.fullmatch(value):
            return (f"parameter {name} must be a TF frame name prefix (letters, digits, '_', "
                    f"'.', '/', '-'; no leading '/'; at most 100), got {_short(value)}")
        other = _FACE_GAZE[1 - _FACE_GAZE.index(name)]
        if value == current.get(other):
            return (f"parameter {name} must differ from {other} ({value!r}): the gaze frame "
                    "would be its own parent")
    return None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:60]}... ({len(text)} characters)"


#: Parameters rclpy itself declares or reads (not this node's business to flag).
_FRAMEWORK_PARAMETERS = ("use_sim_time", "start_type_description_service")


def unknown_parameters(overrides: Iterable[str]) -> list[str]:
    """One line per given parameter this node does not have (a typo in a params file or a
    ``-p``), with the nearest real name when there is one."""
    lines = []
    for name in sorted(overrides):
        if name in SPECS or name in _FRAMEWORK_PARAMETERS or name.startswith("qos_overrides."):
            continue
        near = difflib.get_close_matches(name, SPECS, n=1, cutoff=0.6)
        lines.append(f"unknown parameter {_short(name)} ignored"
                     + (f" (did you mean {near[0]}?)" if near else ""))
    return lines


def params_file_problems(argv: Sequence[str], node_name: str) -> list[str]:
    """What is wrong with the ``--params-file`` files of ``argv`` for the node of fully
    qualified name ``node_name``, beyond what rcl refuses (it parses them before the node
    exists): a file that parses but is not a mapping of node names, or that has nothing for
    this node (a misspelt node name, a file meant for another node): its parameters would
    be ignored without a word."""
    problems = []
    files = [argv[i + 1] for i, arg in enumerate(argv[:-1]) if arg == "--params-file"]
    for path in files:
        try:
            with open(path, "rb") as fh:
                data = yaml.safe_load(fh.read(1 << 20))
        except (OSError, yaml.YAMLError, UnicodeDecodeError) as exc:
            problems.append(f"params file {path}: cannot read it ({_short(str(exc))})")
            continue
        if not isinstance(data, dict) or not all(isinstance(k, str) for k in data):
            problems.append(f"params file {path} is not a mapping of node names to "
                            "ros__parameters: nothing in it applies")
            continue
        if not any(_node_pattern_matches(key, node_name) and isinstance(value, dict)
                   and "ros__parameters" in value for key, value in data.items()):
            names = ", ".join(map(str, data))
            names = names if len(names) <= 100 else names[:100] + "..."
            problems.append(f"params file {path} has no ros__parameters for {node_name} "
                            f"(it names: {names}): nothing in it applies")
    return problems


def _node_pattern_matches(pattern: str, node_name: str) -> bool:
    """rcl's node name patterns of params files: ``/**`` any node, ``*`` one name token,
    ``**`` any number; a name without leading slash matches that name in any namespace
    only when rcl would (relative names are taken from the root)."""
    want = [t for t in pattern.strip("/").split("/") if t]
    have = [t for t in node_name.strip("/").split("/") if t]

    def match(i: int, j: int) -> bool:
        if i == len(want):
            return j == len(have)
        if want[i] == "**":
            return any(match(i + 1, k) for k in range(j, len(have) + 1))
        return j < len(have) and (want[i] == "*" or want[i] == have[j]) and match(i + 1, j + 1)

    return match(0, 0)


def declare(node: Any, spec: ParamSpec, current: dict[str, Any], rejected: list[str]) -> Any:
    """Declare a parameter on ``node``; its value, or its default if the one given at
    start-up is of the wrong type, out of range or not a choice: one error line naming it
    (and its name in ``rejected``), the node runs on (the same rule as a refused change at
    run time, which leaves it unchanged)."""
    try:
        value = node.declare_parameter(spec.name, spec.default, spec.descriptor()).value
        problem = check_value(spec.name, value, current)
    except (InvalidParameterTypeException, InvalidParameterValueException) as exc:
        value, problem = None, str(exc).splitlines()[0]
    if problem is None:
        return normalise(spec.name, value)
    if not node.has_parameter(spec.name):
        node.declare_parameter(spec.name, spec.default, spec.descriptor(),
                               ignore_override=True)
    else:
        node.set_parameters([Parameter(spec.name, value=spec.default)])
    rejected.append(spec.name)
    node.get_logger().error(f"parameter {spec.name}: {problem}; using the default "
                            f"{spec.default!r}")
    return spec.default


def report_ignored_parameters(node: Any, rejected: list[str]) -> None:
    """Say which given parameters will be ignored: names the node does not have (a typo),
    params files with nothing for it. One error line each (and in ``rejected``)."""
    given = getattr(node, "_parameter_overrides", {})  # rclpy keeps no public copy
    for line in (unknown_parameters(given)
                 + params_file_problems(sys.argv, node.get_fully_qualified_name())):
        node.get_logger().error(line)
        rejected.append(clip(line, 120))
