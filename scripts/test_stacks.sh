#!/usr/bin/env bash
# The core tests (everything that does not need rclpy) on the Python stacks a robot has:
# Ubuntu 22.04 (Python 3.10, Humble) and 24.04 (Python 3.12, Jazzy and Kilted), each the
# distribution's package versions (test/stacks/*.txt) plus what the README's install step
# adds (requirements-ros.txt), in a venv of its own. Needs the model pack built (make test
# does that first) and pyenv's Python 3.10 and 3.12 (or python3.10 / python3.12 on PATH).
# --setup-only makes the venvs and installs; --no-setup runs the tests in venvs made before
# (nothing is installed or built into the checkout meanwhile: .ci/run runs them beside the
# Jazzy leg's tests).
set -euo pipefail
source "$(dirname "$0")/env.sh"
phase=all
case "${1:-}" in
    --setup-only) phase=setup ;;
    --no-setup) phase=run ;;
esac

python_for() {  # the interpreter of a Python version: pyenv's, else one on PATH
    local found
    found=$(ls -d "${PYENV_ROOT:-$HOME/.pyenv}"/versions/"$1".*/bin/python 2>/dev/null | tail -1)
    if [ -z "$found" ]; then found=$(command -v "python$1" || true); fi
    [ -n "$found" ] || { echo "no Python $1 (pyenv install $1 or apt install python$1)" >&2; exit 2; }
    echo "$found"
}

numpy_of() {
    "$1/bin/python" -c 'import numpy; print(numpy.__version__)'
}

stack_venv() {  # one venv per checkout and stack, renewed when its pins or install step change
    local pins=$1 key
    key=$( { printf '%s' "$REPO"; cat "$pins" "$REPO/requirements-ros.txt"; } | sha1sum | cut -c1-12)
    echo "${XDG_CACHE_HOME:-$HOME/.cache}/dense_head_pose/stack-$key-$(basename "$pins" .txt)"
}

setup_stack() {
    local version=$1 pins=$2 venv
    venv=$(stack_venv "$pins")
    log "setting up $(basename "$pins" .txt): Python $version, $(grep -v '^#' "$pins" | tr '\n' ' ')"
    if [ ! -x "$venv/bin/python" ]; then
        "$(python_for "$version")" -m venv "$venv"
        # PyYAML 5.4.1 (22.04's) builds only with Cython < 3
        printf 'cython<3\n' > "$venv/constraints.txt"
        PIP_CONSTRAINT=$venv/constraints.txt "$venv/bin/pip" install --quiet -r "$pins"
        # the README's install step on top of the distribution's packages
        "$venv/bin/pip" install --quiet -r "$REPO/requirements-ros.txt"
        # test tools that leave the stack alone (scipy and matplotlib for the accuracy tests),
        # on the numpy in place: the newest contourpy (matplotlib's) wants numpy 2, which
        # breaks the distribution's OpenCV
        "$venv/bin/pip" install --quiet "numpy==$(numpy_of "$venv")" pytest setuptools wheel \
            imageio-ffmpeg "scipy<1.16" "matplotlib<3.11"
    fi
    # every run, not only when the venv is made: the native code is built into the source tree
    # for this interpreter (_dhp_*.cpython-3XX-*.so), and a fresh clone beside a venv kept from
    # an earlier run of the same path has none for it (how a CI run failed: the renderer and
    # the dense library "not built" on 22.04's Python 3.10)
    "$venv/bin/pip" install --quiet --no-deps --no-build-isolation -e "$REPO"
    # dense-head-pose bag's (pip install 'dense_head_pose[bag]'), numpy held as above (the
    # newest rosbags wants numpy 2 too)
    "$venv/bin/pip" install --quiet "numpy==$(numpy_of "$venv")" "rosbags>=0.10" "mcap>=1.1"
    "$venv/bin/python" - "$pins" <<'PY'
import sys, importlib.metadata as md
pins = [l.strip().split("==") for l in open(sys.argv[1]) if "==" in l and not l.startswith("#")]
print("installed:", ", ".join(f"{n} {md.version(n)}" for n, _ in pins))
# numpy alone moves: LiteRT needs >= 1.23.2, so the README's install step takes 22.04's
# 1.21.5 to the newest numpy 1
wrong = [f"{n} {md.version(n)} (pinned {v})" for n, v in pins
         if md.version(n) != v and not (n == "numpy" and md.version(n).startswith("1."))]
if wrong:
    sys.exit("the stack is not the distribution's any more: " + ", ".join(wrong))
PY
}

test_stack() {
    local pins=$1 venv
    venv=$(stack_venv "$pins")
    [ -x "$venv/bin/python" ] || { echo "--no-setup: no venv $venv (run without it)" >&2; exit 2; }
    log "core tests on $(basename "$pins" .txt)"
    (cd "$REPO" && DENSE_HEAD_POSE_MODELS=$REPO/models "$venv/bin/python" -m pytest -q -m "not ros" \
        -p no:cacheprovider)
}

PYTHONS=(3.10 3.12)
PINS=("$REPO/test/stacks/ubuntu-22.04-humble.txt" "$REPO/test/stacks/ubuntu-24.04-jazzy-kilted.txt")
if [ "$phase" != run ]; then
    for i in "${!PINS[@]}"; do setup_stack "${PYTHONS[$i]}" "${PINS[$i]}"; done
fi
if [ "$phase" != setup ]; then
    status=0  # both stacks run, whatever the first gives
    for pins in "${PINS[@]}"; do test_stack "$pins" || status=1; done
    exit $status
fi
