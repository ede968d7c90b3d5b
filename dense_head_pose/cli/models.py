"""``dense-head-pose models fetch|build|check|import-bfm``: the model pack."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .. import model_pack
from ..errors import ModelError
from ..output_files import refuse_inputs
from . import common


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="fetch, check or extend the model pack")
    msub = p.add_subparsers(dest="models_command", required=True, parser_class=common.Parser)
    where = ("target directory (default: $DENSE_HEAD_POSE_MODELS if set, else the pack the "
             "commands find (models check says which), else the source checkout's models/ "
             "when writable, else ~/.local/share/dense_head_pose/models)")
    f = msub.add_parser("fetch", help="copy or download the pack, verifying SHA-256")
    src = f.add_mutually_exclusive_group(required=True)
    src.add_argument("--from", dest="from_dir", metavar="DIR", help="a directory holding the pack")
    src.add_argument("--url", metavar="BASE_URL", help="base URL the files are under")
    f.add_argument("--dest", metavar="DIR", help=where)
    f.add_argument("--timeout", type=common.number(0.001, 3600),
                   default=model_pack.DOWNLOAD_TIMEOUT_S, metavar="S",
                   help="give up on a server silent for S seconds (default 60)")
    f.set_defaults(run=fetch)
    b = msub.add_parser("build", help="make the pack from its upstream public files "
                        "(downloaded from their pinned commits, or --from DIR), verified")
    src = b.add_mutually_exclusive_group()
    src.add_argument("--from", dest="from_dir", metavar="DIR",
                     help="a directory holding the upstream files (models/upstream.json)")
    src.add_argument("--url", metavar="BASE_URL", help="a mirror holding them by name "
                     "(default: each file's pinned raw.githubusercontent.com URL)")
    b.add_argument("--dest", metavar="DIR", help=where)
    b.add_argument("--precision", choices=("float32", "int8"), default="float32",
                   help="int8: also the post-training-quantised regressor "
                        f"({model_pack.INT8_REGRESSOR}; needs pip install "
                        "'dense_head_pose[quantize]' and --calibration)")
    b.add_argument("--calibration", nargs="+", default=[], metavar="PATH",
                   help="videos, images or folders whose faces calibrate the int8 model (the "
                        "kind of images it will see; never a benchmark)")
    b.add_argument("--keep-upstream", metavar="DIR",
                   help="keep the verified upstream files there (default: discarded)")
    b.add_argument("--timeout", type=common.number(0.001, 3600),
                   default=model_pack.DOWNLOAD_TIMEOUT_S, metavar="S",
                   help="give up on a server silent for S seconds (default 60)")
    b.set_defaults(run=build)
    c = msub.add_parser("check", help="verify an installed pack")
    c.add_argument("--models", metavar="DIR", help="pack directory (default: search path)")
    c.set_defaults(run=check)
    i = msub.add_parser("import-bfm", help="convert 3DDFA_V2's bfm_noneck_v3.pkl to .npz")
    i.add_argument("pkl", metavar="FILE.pkl")
    i.add_argument("--models", metavar="DIR", help="pack directory to add it to")
    i.set_defaults(run=import_bfm)


def _log(message: str) -> None:
    print(message, file=sys.stderr)


def _dest(args: argparse.Namespace) -> Path:
    return Path(args.dest) if args.dest else model_pack.default_fetch_dest()


def fetch(args: argparse.Namespace) -> int:
    dest = _dest(args)
    if args.from_dir:  # the pack is never written into its own sources
        refuse_inputs("--dest", dest, [args.from_dir])
    model_pack.fetch(dest, Path(args.from_dir) if args.from_dir else None, args.url,
                     log=_log, timeout=args.timeout)
    _log(f"model pack ready in {dest} ({model_pack.describe(dest)})")
    return 0


def build(args: argparse.Namespace) -> int:
    from ..model_build import builder

    dest = _dest(args)
    if args.from_dir:  # the pack is never written into its own sources
        refuse_inputs("--dest", dest, [args.from_dir])
    keep = Path(args.keep_upstream) if args.keep_upstream else None
    if args.precision == "int8" and not args.calibration:
        raise ValueError("--precision int8 needs --calibration PATH... (videos, images or "
                         "folders with faces)")
    builder.build(dest, Path(args.from_dir) if args.from_dir else None, args.url, log=_log,
                  timeout=args.timeout, keep_upstream=keep,
                  calibration=args.calibration if args.precision == "int8" else None)
    _log(f"model pack built in {dest} ({model_pack.describe(dest)})")
    return 0


def check(args: argparse.Namespace) -> int:
    directory = model_pack.locate(args.models)
    problems = model_pack.verify(directory)
    for name, problem in problems.items():
        _log(f"{'ok' if problem is None else 'BAD':4} {directory / name}"
             f"{'' if problem is None else ': ' + problem}")
    bad = [name for name, problem in problems.items() if problem]
    if bad:
        raise ModelError(
            f"model pack in {directory} ({model_pack.describe(directory)}): "
            f"{', '.join(bad)} bad; "
            + "; ".join(model_pack.LOCAL_FILES.get(n, model_pack.FETCH_HINT) for n in bad))
    _log(f"model pack in {directory} ({model_pack.describe(directory)}) is complete")
    return 0


def import_bfm(args: argparse.Namespace) -> int:
    from ..model_build.bfm_import import import_full_bfm

    directory = model_pack.locate(args.models)
    _log(f"importing {args.pkl}: pickles can run code when loaded, so this reads only numpy "
         "arrays (anything else is refused) and you are trusting the file's contents as a "
         "Basel Face Model.")
    out = import_full_bfm(Path(args.pkl), directory, directory / "bfm_dense_mean.npz")
    _log(f"wrote {out}; dense reconstruction now uses its exact bases")
    return 0
