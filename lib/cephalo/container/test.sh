#!/usr/bin/env bash
# Builds the image, runs it on test/input (the first slices of the submission's test stack)
# with the platform's restrictions, and checks its output against expected_output.json, what
# the bundle predicted when it was exported. Extra arguments go to `docker run`, e.g.
# `./test.sh --gpus all` (a GPU's mixed precision may move a landmark by a pixel or two:
# TOLERANCE_PX, default 3, bounds every landmark's distance in pixels).
set -euo pipefail
cd "$(dirname "$0")"
IMAGE=${IMAGE:-@IMAGE@}
TOLERANCE_PX=${TOLERANCE_PX:-3}

docker build --tag "$IMAGE" .

OUTPUT=$(mktemp -d)
trap 'rm -rf "$OUTPUT"' EXIT
chmod 777 "$OUTPUT"
docker run --rm \
    --network=none --memory=8g --memory-swap=8g --cap-drop=ALL \
    --security-opt=no-new-privileges --shm-size=128m --pids-limit=256 \
    --volume "$PWD/test/input:/input:ro" \
    --volume "$OUTPUT:/output" \
    --volume "$PWD/expected_output.json:/expected/orthodontic-landmarks.json:ro" \
    "$@" "$IMAGE" \
    --expected /expected/orthodontic-landmarks.json --tolerance "$TOLERANCE_PX"
echo "$IMAGE: the output matches expected_output.json"
