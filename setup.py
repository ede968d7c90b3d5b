"""pip build of dense_head_pose: the ROS-free core, its CLI and its native code.

(colcon builds the ROS 2 package from CMakeLists.txt instead; both build the same C library.)
The model manifests are copied into the package so a pip install can build, find and fetch
the pack, and the message definitions so it can write bags.
"""

import shutil
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent


class BuildPyWithManifest(build_py):
    """Copy models/manifest.json and models/upstream.json into the built package, and the
    message definitions (msg/) the bag processor writes bags with."""

    def run(self) -> None:
        super().run()
        package = Path(self.build_lib) / "dense_head_pose"
        package.mkdir(parents=True, exist_ok=True)
        for name in ("manifest.json", "upstream.json"):
            shutil.copyfile(HERE / "models" / name, package / name)
        (package / "msg_definitions").mkdir(exist_ok=True)
        for msg in sorted((HERE / "msg").glob("*.msg")):
            shutil.copyfile(msg, package / "msg_definitions" / msg.name)


# The native code is plain C loaded with ctypes (no Python C API), built as extensions so that
# pip compiles it for the target machine and ships it inside the package.
# -fno-wrapv undoes Python's default -fwrapv, which costs this loop-heavy code ~10 %.
C_FLAGS = ["-O3", "-std=c99", "-fno-math-errno", "-fno-wrapv"]
RENDERER = Extension("dense_head_pose._dhp_render", sources=["native/dhp_render.c"],
                     include_dirs=["native"], extra_compile_args=C_FLAGS, libraries=["m"])
DENSE = Extension("dense_head_pose._dhp_dense", sources=["native/dhp_dense.c"],
                  include_dirs=["native"], extra_compile_args=C_FLAGS)

setup(cmdclass={"build_py": BuildPyWithManifest}, ext_modules=[RENDERER, DENSE])
