"""Recordings processed offline: one way to process a recording, whatever it is.

A source gives frames (:mod:`.bag_frames`: a rosbag2's cameras; a video, in :mod:`.process`);
:mod:`.frame_loop` estimates them with a tracker per camera and hands each result to its
sinks (:mod:`.sinks`: an output bag of the node's messages, a CSV of :mod:`.rows`, the
rows kept, a drawn video, JSON lines); :mod:`.process` puts them together for a bag or a
video, :mod:`.summary` says what happened. rosbag2 (and ROS 1) files are read by
:mod:`.bag_input` (damaged ones included) and written by :mod:`.bag_output`, with the
message types of :mod:`.bag_types`; :mod:`.plot` draws a recording's angles;
:mod:`.from_video` makes a recording of a video. Many recordings: :mod:`dense_head_pose.dataset`.
"""
