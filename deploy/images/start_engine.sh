#!/usr/bin/env bash
# Make a Docker engine available for the container tests (.ci/run; as root): install Debian's
# docker.io and debootstrap when they are missing, cap BuildKit's cache, start dockerd when
# it is not running. Exits 1 with a one-line reason when that is not possible here; the
# container tests then skip with that reason.
set -euo pipefail
docker=/usr/bin/docker

if [ ! -x /usr/sbin/dockerd ] || [ ! -x "$docker" ] || ! command -v debootstrap >/dev/null; then
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "no Docker engine, and no way to install one here (needs root and apt)" >&2
    exit 1
  fi
  echo "installing docker.io and debootstrap (apt)"
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    docker.io debootstrap containerd runc iptables >/dev/null
fi

# Two full builds once grew BuildKit's cache to 25 GB: keep at most 10 GB of it.
mkdir -p /etc/docker
[ -f /etc/docker/daemon.json ] \
  || echo '{"builder": {"gc": {"enabled": true, "defaultKeepStorage": "10GB"}}}' >/etc/docker/daemon.json

if ! "$docker" info >/dev/null 2>&1; then
  [ "$(id -u)" = 0 ] || { echo "the Docker engine is not running and this is not root" >&2; exit 1; }
  echo "starting dockerd (log: /var/log/dockerd.log)"
  nohup /usr/sbin/dockerd >/var/log/dockerd.log 2>&1 &
  for _ in $(seq 60); do
    "$docker" info >/dev/null 2>&1 && break
    sleep 1
  done
  "$docker" info >/dev/null 2>&1 || { echo "dockerd did not start: $(tail -n 3 /var/log/dockerd.log)" >&2; exit 1; }
fi
echo "Docker engine: $("$docker" version -f '{{.Server.Version}}')"
