#!/usr/bin/env bash
# Set up (venv, dependencies, native renderer, models) and run the main job: the test video
# through the pipeline, drawn as a lit mesh, with one JSON line of poses per frame.
set -euo pipefail
source "$(dirname "$0")/env.sh"
setup_venv
install_core
build_models
mkdir -p "$REPO/out"
log "talking_head.mp4 -> out/talking_head_mesh.mp4 and out/talking_head.jsonl"
dense-head-pose video "$SHARED/testdata/talking_head.mp4" --mode mesh \
    --out "$REPO/out/talking_head_mesh.mp4" --json > "$REPO/out/talking_head.jsonl"
dense-head-pose benchmark "$SHARED/testdata/talking_head.mp4"
say_how_to_use
