#!/usr/bin/env bash
# Saves the image (built by ./test.sh, or here when it is missing) as the gzipped tarball the
# challenge's upload takes.
set -euo pipefail
cd "$(dirname "$0")"
IMAGE=${IMAGE:-@IMAGE@}

docker image inspect "$IMAGE" >/dev/null 2>&1 || docker build --tag "$IMAGE" .
docker save "$IMAGE" | gzip -c > "$IMAGE.tar.gz"
echo "wrote $PWD/$IMAGE.tar.gz"
