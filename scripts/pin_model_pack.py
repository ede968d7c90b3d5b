#!/usr/bin/env python3
"""Maintainers: pin in models/manifest.json the size and SHA-256 of what ``models build``
makes from the upstream files (after a change to the converter or the npz writer).

    python scripts/pin_model_pack.py ../shared/upstream

The build is deterministic, so these are what every user's build must reproduce, and what
``models check`` and the tests verify.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

from dense_head_pose.model_build import builder as model_build

MANIFEST = Path(__file__).resolve().parents[1] / "models" / "manifest.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("upstream", type=Path, help="a directory of the upstream files")
    args = parser.parse_args()
    built = model_build.built_bytes(args.upstream)
    assert built == model_build.built_bytes(args.upstream), "the build is not deterministic"
    manifest = json.loads(MANIFEST.read_text())
    for entry in manifest["files"]:
        data = built[entry["name"]]
        entry["bytes"], entry["sha256"] = len(data), hashlib.sha256(data).hexdigest()
        print(f"{entry['name']}: {entry['bytes']} bytes, {entry['sha256']}")
    MANIFEST.write_text(json.dumps(manifest, indent=2) + "\n")


if __name__ == "__main__":
    main()
