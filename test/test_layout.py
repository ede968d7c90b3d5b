"""The house rules, measured: small modules and functions, imports that only go down the
layers and never in a circle, stop signals handled in one module, nothing in the package
that only the tests use, one place for each default, docs whose links resolve, one version
everywhere."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import yaml
from helpers import REPO, USER_DOCS

PACKAGE = REPO / "dense_head_pose"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60

#: Each part of the package and the parts it may import. The core (everything but cli, ros,
#: evaluation and the model builder) never imports ROS, the CLI, the builder or the
#: evaluation.
BASE = {"errors", "options", "images", "runtime", "native", "output_files", "lifetime", "msg"}
ENTRY = {"__main__"}  # python -m dense_head_pose: the CLI
ALLOWED = {
    "api": {"base", "model_pack", "pipeline", "video"},
    "base": {"base"},
    "model_pack": {"base", "model_pack"},
    "pipeline": {"base", "model_pack", "pipeline"},
    "video": {"base", "model_pack", "pipeline", "video"},
    "attention": {"base", "pipeline", "attention"},
    "interfaces": {"base", "pipeline", "attention", "interfaces"},
    "recordings": {"base", "model_pack", "pipeline", "video", "interfaces", "attention",
                   "recordings"},
    "model_build": {"base", "model_pack", "pipeline", "video", "model_build"},
    "evaluation": {"base", "model_pack", "pipeline", "video", "evaluation"},
    "dataset": {"base", "model_pack", "pipeline", "video", "interfaces", "attention",
                "recordings", "dataset"},
    "cli": {"base", "model_pack", "pipeline", "video", "interfaces", "attention", "recordings",
            "model_build", "evaluation", "dataset", "cli"},
    "ros": {"base", "model_pack", "pipeline", "video", "interfaces", "attention", "ros"},
}
ROS_MODULES = ("rclpy", "rcl_interfaces", "sensor_msgs", "std_msgs", "geometry_msgs",
               "visualization_msgs", "diagnostic_msgs", "lifecycle_msgs", "launch",
               "launch_ros", "hri_msgs", "tf2_ros", "tf2_msgs", "builtin_interfaces",
               "ament_index_python")


def modules() -> dict[str, Path]:
    """``dense_head_pose.x.y`` -> its file, for every module of the package."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(REPO).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def part(module: str) -> str:
    """The layer a module belongs to (see ALLOWED)."""
    parts = module.split(".")[1:]
    if not parts:
        return "api"
    if parts[0] in ENTRY:
        return "cli"
    if not parts or parts[0] in BASE:
        return "base"
    return parts[0]


def imports(module: str, path: Path, top_level_only: bool = False) -> set[str]:
    """The absolute names ``module`` imports (every import, or those run at import time)."""
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                stem = ".".join([*base, node.module] if node.module else base)
            else:
                stem = node.module or ""
            found.add(stem)
            found |= {f"{stem}.{alias.name}" for alias in node.names}
    return found


def internal(names: set[str], known: dict[str, Path]) -> set[str]:
    """The package's own modules among ``names``, but for the package itself (which every
    module's import loads first anyway)."""
    return {n for n in names if n in known and n != "dense_head_pose"}


def test_no_module_is_over_400_lines_and_no_function_over_60() -> None:
    too_long = []
    for name, path in modules().items():
        text = path.read_text()
        if text.count("\n") > MAX_MODULE_LINES:
            too_long.append(f"{name}: {text.count(chr(10))} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    too_long.append(f"{name}.{node.name}: {length} lines")
    assert not too_long


def test_imports_only_go_down_the_layers() -> None:
    known = modules()
    wrong = []
    for name, path in known.items():
        own = part(name)
        for target in internal(imports(name, path), known):
            if part(target) not in ALLOWED[own]:
                wrong.append(f"{name} -> {target}")
        if own != "ros":
            ros = [n for n in imports(name, path) if n.split(".")[0] in ROS_MODULES]
            wrong += [f"{name} -> {n} (ROS)" for n in ros]
    assert not wrong


def test_no_import_cycle() -> None:
    """Between modules, counting the imports that run when a module is imported."""
    known = modules()
    graph = {name: internal(imports(name, path, top_level_only=True), known) - {name}
             for name, path in known.items()}
    for name, targets in graph.items():  # a package's import of its submodule is fine
        graph[name] = {t for t in targets if not t.startswith(name + ".")}
    state: dict[str, int] = {}
    cycles = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append([*stack[stack.index(nxt):], nxt])
            elif nxt not in state:
                visit(nxt, [*stack, nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert not cycles


def test_stop_signals_are_handled_in_one_module() -> None:
    """How a stop is recorded and acted on lives in ``lifetime``: no other module of the
    package installs a signal handler or blocks a signal."""
    found = {name for name, path in modules().items()
             if re.search(r"signal\.(signal|pthread_sigmask)\(", path.read_text())}
    assert found == {"dense_head_pose.lifetime"}


#: What runs the package's code from outside it: the CLI, the nodes' executables (bin/),
#: the launch files' helpers, the public API (the package's own names).
ENTRY_POINTS = {"dense_head_pose", "dense_head_pose.__main__", "dense_head_pose.cli",
                "dense_head_pose.ros.head_pose_node", "dense_head_pose.ros.image_source",
                "dense_head_pose.ros.tracked_merger", "dense_head_pose.ros.launching",
                "dense_head_pose.ros.process", "dense_head_pose.lifetime"}


def test_nothing_in_the_package_is_only_used_by_the_tests() -> None:
    """Every module is an entry point or imported (at any depth) by one, or by the
    package's benchmark and measurement scripts: test support lives in test_support/,
    outside the installed package."""
    known = modules()
    graph = {name: internal(imports(name, path), known) for name, path in known.items()}
    init = (REPO / "dense_head_pose" / "__init__.py").read_text()
    public = {f"dense_head_pose.{m}" for m in re.findall(r'": "([\w.]+)"', init)}
    scripts = {name for path in (REPO / "scripts").glob("*.py")
               for name in internal(imports("scripts", path), known)}
    reached, todo = set(), [*ENTRY_POINTS, *public, *scripts]
    while todo:
        name = todo.pop()
        if name in reached or name not in known:
            continue
        reached.add(name)
        parts = name.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts))]  # its packages
        todo += graph[name]
    assert set(known) - reached == set()


def test_one_version_everywhere() -> None:
    from dense_head_pose import __version__

    package_xml = re.search(r"<version>([^<]+)</version>", (REPO / "package.xml").read_text())
    changelog = re.search(r"^(\d+\.\d+\.\d+) \(\d{4}-\d\d-\d\d\)$",
                          (REPO / "CHANGELOG.rst").read_text(), re.M)
    assert package_xml and changelog
    assert __version__ == package_xml[1] == changelog[1]


def test_the_readme_is_a_front_page_whose_links_resolve() -> None:
    readme = (REPO / "README.md").read_text()
    assert readme.count("\n") <= 250
    for page in USER_DOCS:
        text = page.read_text()
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
            if target.startswith(("http://", "https://")):
                continue
            assert (page.parent / target).exists(), f"{page.name} links {target}"
        for history in ("this round", "last round", "the last release", "the seed"):
            assert history not in text, f"{page.name} says {history!r} (history: CHANGELOG)"


def test_every_docs_page_is_reachable_from_the_readme() -> None:
    readme = (REPO / "README.md").read_text()
    for page in (REPO / "docs").glob("*.md"):
        assert f"(docs/{page.name})" in readme, page.name


def test_defaults_and_ranges_come_from_the_library() -> None:
    """The node's parameters, its YAML file, the CLI and the documented parameter table
    take one default and one range for each option: the library's."""
    pytest.importorskip("rcl_interfaces")
    from dense_head_pose import EstimatorOptions, MotionParams, TrackerOptions
    from dense_head_pose.cli import build_parser
    from dense_head_pose.ros.parameters import SPECS

    estimator, tracker = EstimatorOptions(), TrackerOptions()
    for options, names in ((estimator, ("num_threads", "score_threshold", "max_faces",
                                        "retry_mirrored", "refine", "mirror", "accurate",
                                        "precision", "pose_method", "detector_input",
                                        "detector_model")),
                           (tracker, ("smooth", "detect_every", "forget_after"))):
        for name in names:
            spec = SPECS[name]
            assert spec.default == getattr(options, name), name
            limits = type(options).LIMITS.get(name)
            assert limits is None or (spec.int_range or spec.float_range) == tuple(
                type(v)(x) for v, x in zip(spec.int_range or spec.float_range, limits)), name
    from dense_head_pose.video.smoothing import QUANTITIES, SmoothingOptions

    assert SPECS["smoothing.switch_rate"].default == tracker.smoothing.switch_rate
    assert SPECS["smoothing.switch_rate"].float_range == SmoothingOptions.LIMITS["switch_rate"]
    for quantity in QUANTITIES:
        for field, (low, high) in MotionParams.LIMITS.items():
            spec = SPECS[f"smoothing.{quantity}.{field}"]
            assert spec.default == getattr(getattr(tracker.smoothing, quantity), field)
            assert spec.float_range == (low, high)
    yaml_file = yaml.safe_load((REPO / "config" / "head_pose.yaml").read_text())
    flat = _flatten(next(iter(yaml_file.values()))["ros__parameters"])
    assert flat == {name: spec.default for name, spec in SPECS.items()}
    args = build_parser().parse_args(["video", "x.mp4"])
    assert (args.threads, args.threshold, args.max_faces, args.detect_every, args.smooth,
            args.switch_rate) == (
        estimator.num_threads, estimator.score_threshold, estimator.max_faces,
        tracker.detect_every, tracker.smooth, tracker.smoothing.switch_rate)


def _flatten(tree: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out
