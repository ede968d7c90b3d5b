"""``python -m dense_head_pose`` runs the CLI."""

import sys

from .cli import main

sys.exit(main())
