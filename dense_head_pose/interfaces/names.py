"""The rules for names this package takes from users: topics, TF frames, name tokens.

One place for each rule, so the node's parameters, the launch files and the bag processor
accept and refuse the same names. The rules are ROS 2's own (a topic is slash-separated
tokens of letters, digits and ``_`` not starting with a digit; tf2 refuses a frame with a
leading ``/``), kept to lengths that fit in topic and frame names.
"""

from __future__ import annotations

import re

#: An absolute topic name: ``/`` and tokens, at most 16 of them.
ABSOLUTE_TOPIC = re.compile(r"(/[A-Za-z_][A-Za-z0-9_]*){1,16}")
#: A TF frame name (no leading ``/``, no spaces or control characters, at most 200).
FRAME_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_./-]{0,199}")
#: A prefix of TF frame names (may be empty).
FRAME_PREFIX = re.compile(r"([A-Za-z0-9_][A-Za-z0-9_./-]{0,99})?")
#: A name token (a namespace, a camera's name, a face id prefix's stem): a letter, then
#: letters, digits and ``_``, at most 32.
TOKEN = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,31}")
