"""The model pack: manifest, location, verification and fetching.

Weights are third-party data and never live in the repository. ``models/manifest.json`` lists
each file with its size, SHA-256, origin and licence (:mod:`.manifest`); :func:`fetch` copies
or downloads the pack into a directory and verifies it (:mod:`.fetching`); :func:`locate` finds
an installed pack (:mod:`.location`); :func:`verify` checks one (:mod:`.verification`). A
missing or corrupt file produces a single :class:`~dense_head_pose.errors.ModelError` naming
the file and the command that repairs it. The builder of the pack from its upstream files is
:mod:`dense_head_pose.model_build`.
"""

from .fetching import (
    DOWNLOAD_TIMEOUT_S,
    copy_checked,
    copy_manifest,
    download,
    fetch,
    prepare_dest,
    write_verified,
    write_with_hash,
)
from .location import default_fetch_dest, describe, locate, search_path, user_data_dir
from .manifest import (
    ENV_VAR,
    FETCH_HINT,
    FULL_BFM,
    HASH_SUFFIX,
    INT8_REGRESSOR,
    LOCAL_FILES,
    MANIFEST_NAME,
    PACKAGE_NAME,
    ModelFile,
    Pinned,
    load_manifest,
    manifest_path,
)
from .verification import check_file, recorded_hash_problem, require_recorded, sha256, verify

__all__ = [
    "DOWNLOAD_TIMEOUT_S", "ENV_VAR", "FETCH_HINT", "FULL_BFM", "HASH_SUFFIX", "INT8_REGRESSOR",
    "LOCAL_FILES", "MANIFEST_NAME", "PACKAGE_NAME", "ModelFile", "Pinned", "check_file",
    "copy_checked", "copy_manifest", "default_fetch_dest", "describe", "download", "fetch",
    "load_manifest", "locate", "manifest_path", "prepare_dest", "recorded_hash_problem",
    "require_recorded", "search_path", "sha256", "user_data_dir", "verify", "write_verified",
    "write_with_hash",
]
