#!/usr/bin/env bash
# Build every MusicSpace image (make images), from the public base images or, where no
# registry answers, from local stand-ins (make base-images). The choice is written to
# var/images.env, which `make compose-up` passes to compose.
#
#   BASES=auto|public|local deploy/images/build.sh        (default auto: public if it pulls)
#
# Idempotent: BuildKit's layer cache makes a rebuild with nothing changed take seconds; the
# images the previous build tagged and this one replaced (dangling) are removed at the end,
# and the build cache is trimmed to its most recently used 10 GB (BUILD_CACHE_KEEP).
set -euo pipefail
cd "$(dirname "$0")/../.."
docker="${DOCKER:-docker}"
export DOCKER_BUILDKIT=1
env_file="${IMAGES_ENV:-var/images.env}"
bases="${BASES:-auto}"
public_python=python:3.11-slim-bookworm

if [ "$bases" = auto ]; then
  if "$docker" image inspect "$public_python" >/dev/null 2>&1 \
     || timeout 120 "$docker" pull -q "$public_python" >/dev/null 2>&1; then
    bases=public
  else
    echo "no registry answers: building from local base images"
    bases=local
  fi
fi

mkdir -p "$(dirname "$env_file")"
if [ "$bases" = local ]; then
  deploy/images/build_bases.sh
  cp deploy/images/local.env "$env_file"
else
  echo "# public base images: compose.yaml's defaults" >"$env_file"
fi
set -a
# shellcheck disable=SC1090
. "$env_file"
set +a

build_args=()
[ -z "${PYTHON_IMAGE:-}" ] || build_args+=(--build-arg "PYTHON_IMAGE=$PYTHON_IMAGE")
[ -z "${UV_IMAGE:-}" ] || build_args+=(--build-arg "UV_IMAGE=$UV_IMAGE")

# The CLI image (bootstrap job) and one image per registered service, each with only its own
# packages (the registry is standard library only: any python3 reads it).
services=$(python3 shared/src/musicspace_shared/registry.py)
for package in cli $(printf 'services/%s ' $services); do
  name="${package#services/}"
  started=$SECONDS
  "$docker" build -q -f deploy/Dockerfile "${build_args[@]}" \
    --build-arg "PACKAGE=$package" --build-arg "SERVICE=$name" \
    -t "musicspace/$name:latest" . >/dev/null
  size=$("$docker" image inspect -f '{{.Size}}' "musicspace/$name:latest")
  printf 'musicspace/%-12s %5d MB  (%ds)\n' "$name" $((size / 1000000)) $((SECONDS - started))
done
"$docker" image prune -f >/dev/null
# BuildKit's cache grew to 58 GB over a day of rebuilds when dockerd ran without the cap
# start_engine.sh writes: keep the most recently used 10 GB whatever the daemon's settings.
"$docker" builder prune -f --keep-storage "${BUILD_CACHE_KEEP:-10GB}" >/dev/null
