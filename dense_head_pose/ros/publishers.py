"""What the node publishes for a frame: every output topic, created at ``configure``.

* **Primary** outputs, published by the estimation thread as soon as a frame is estimated:
  ``faces``, ``head_pose``, ``head_poses``, TF, the ROS4HRI topics and the gazes;
* **heavy** outputs, built by the output thread only if someone subscribes (and their
  switch is on): ``face_landmarks``, ``face_points``, ``face_mesh``, ``mesh_image``.

The topic publishers are lifecycle publishers: they send nothing while the node is
inactive. A frame's primary messages are
:func:`~dense_head_pose.interfaces.frame_messages.frame_messages`, the definition the bag
writer uses too, built with rclpy's classes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from geometry_msgs.msg import PoseArray, PoseStamped
from rclpy.qos import QoSProfile
from sensor_msgs.msg import Image, PointCloud2
from std_msgs.msg import Header
from visualization_msgs.msg import Marker, MarkerArray

from dense_head_pose.msg import FaceArray as FaceArrayMsg

from ..interfaces.face_ids import tf_name
from ..interfaces.frame_messages import camera_messages, tf_messages
from ..pipeline.drawing import draw
from ..pipeline.results import Face
from . import conversions
from .conversions import rclpy_types
from .diagnostics import NodeStats
from .markers import MeshMarkerBuilder, landmark_markers
from .parameters import OutputOptions
from .tf_output import TfOutput


class Publishers:
    """The node's publishers and how a frame's results become messages (see module)."""

    def __init__(self, node: Any, options: OutputOptions, stats: NodeStats,
                 mesh_marker: MeshMarkerBuilder | None, renderer: Any, hri: Any,
                 engagement: Any = None) -> None:
        self._node = node
        self.options = options
        """What to publish (the node replaces it when its parameters change)."""
        self.stats = stats
        self.mesh_marker = mesh_marker
        self.renderer = renderer
        self.hri = hri
        self.engagement = engagement
        """Attention and engagement (:mod:`.engagement_output`), or None."""
        out_qos = QoSProfile(depth=5)
        create = node.create_lifecycle_publisher
        self.faces = create(FaceArrayMsg, "faces", out_qos)
        self.pose = create(PoseStamped, "head_pose", out_qos)
        self.poses = create(PoseArray, "head_poses", out_qos)
        self.landmarks = create(MarkerArray, "face_landmarks", out_qos)
        self.points = create(PointCloud2, "face_points", QoSProfile(depth=2))
        self.mesh = create(Marker, "face_mesh", QoSProfile(depth=2))
        self.image = create(Image, "mesh_image", QoSProfile(depth=2))
        self._lifecycle = [self.faces, self.pose, self.poses, self.landmarks, self.points,
                           self.mesh, self.image]
        self._by_topic = {"faces": self.faces, "head_pose": self.pose,
                          "head_poses": self.poses}
        self.tf = TfOutput(node)
        if not self.tf.available:
            node.get_logger().warning("neither tf2_ros nor tf2_msgs is installed: no TF output")

    def face_name(self, track_id: int | None) -> str:
        """The name of a face in TF: its ROS4HRI id when that interface is on, else its
        track number; either way after ``face_id_prefix``."""
        return tf_name(self.hri.ids if self.hri is not None else None,
                       self.options.face_id_prefix, track_id)

    # --------------------------------------------------------------- estimation thread
    def publish_unusable(self, header: Header) -> None:
        """An unusable frame: an empty FaceArray with its header, no tracked faces."""
        self.publish_primary([], header, None)

    def publish_primary(self, faces: Sequence[Face], header: Header,
                        image: np.ndarray | None) -> None:
        """A frame's messages (``frame_messages``): faces, head_pose, head_poses, TF, ROS4HRI;
        ``image`` None: the frame was unusable."""
        stage = self.stats.stage
        size = None if image is None else (image.shape[1], image.shape[0])
        names = [self.face_name(f.id) for f in faces]
        with stage("faces"):
            for message in camera_messages(rclpy_types, header, size, faces):
                self._by_topic[message.topic].publish(message.message)
        if size is not None and faces:
            with stage("tf"):
                for message in tf_messages(rclpy_types, header, faces, names,
                                           self.options.frame):
                    self.tf.send(message.message.transforms)
        if self.hri is not None:
            with stage("hri"):
                self.hri.publish(faces, names, header, image)
        if self.engagement is not None:
            with stage("engagement"):
                self.engagement.on_frame(faces if size is not None else [], names, header)

    def heavy_wanted(self) -> bool:
        """Whether any heavy output is switched on and subscribed."""
        o = self.options
        return bool(
            (o.publish_landmarks and self.landmarks.get_subscription_count())
            or (o.publish_points and self.points.get_subscription_count())
            or (o.publish_mesh and self.mesh.get_subscription_count())
            or (o.publish_mesh_image and self.image.get_subscription_count()))

    # ------------------------------------------------------------------- output thread
    def publish_heavy(self, faces: Sequence[Face], header: Header, image: np.ndarray) -> None:
        """Markers, point cloud, mesh marker and mesh image, each only if subscribed."""
        stage = self.stats.stage
        o = self.options
        if o.publish_landmarks and self.landmarks.get_subscription_count():
            with stage("landmarks"):
                self.landmarks.publish(landmark_markers(faces, header))
        if o.publish_points and self.points.get_subscription_count():
            with stage("points"):
                step = o.points_step
                clouds = [f.vertices_in_camera()[::step] for f in faces]
                points = np.concatenate(clouds) if clouds else np.empty((0, 3), np.float32)
                self.points.publish(conversions.point_cloud(points, header))
        if o.publish_mesh and self.mesh_marker and self.mesh.get_subscription_count():
            with stage("mesh"):
                self.mesh.publish(self.mesh_marker(faces, header))
        if o.publish_mesh_image and self.image.get_subscription_count():
            with stage("image_draw"):
                drawn = self._draw(image, faces)
            with stage("image_publish"):
                self.image.publish(conversions.bgr_to_image(drawn, header))

    def _draw(self, image: np.ndarray, faces: Sequence[Face]) -> np.ndarray:
        canvas = image.copy()
        mode = self.options.draw_mode
        if mode == "mesh" and self.renderer is not None:
            return self.renderer.render_faces(canvas, faces)
        return draw(canvas, faces, "dense" if mode == "mesh" else mode)

    # ------------------------------------------------------------------ executor thread
    def destroy(self, destroy_publisher: Callable[[Any], Any]) -> None:
        """Destroy every publisher (``cleanup``; the workers are stopped)."""
        for publisher in self._lifecycle:
            self._node.destroy_lifecycle_publisher(publisher)
        self._lifecycle.clear()
        self.tf.destroy(destroy_publisher)
        if self.hri is not None:
            self.hri.close()
        if self.engagement is not None:
            self.engagement.destroy()
