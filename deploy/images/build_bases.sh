#!/usr/bin/env bash
# Build the local base image and the stand-ins for the public images (make base-images), for
# a machine that reaches no container registry. Names: deploy/images/local.env.
# Idempotent: the Debian base is kept once imported; the stand-ins come from BuildKit's cache.
set -euo pipefail
cd "$(dirname "$0")/../.."
docker="${DOCKER:-docker}"
export DOCKER_BUILDKIT=1
DOCKER="$docker" deploy/images/build_base.sh musicspace-local/bookworm
for target in python uv mariadb prometheus traefik chroma; do
  "$docker" build -q -f deploy/images/local.Dockerfile --target "$target" \
    -t "musicspace-local/$target" . >/dev/null
  echo "musicspace-local/$target built"
done
