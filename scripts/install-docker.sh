#!/usr/bin/env bash
# Installs Debian's docker.io (dockerd with BuildKit 0.8, the docker client, containerd)
# when dockerd is missing: bench/buildkit.py times strata beside it. The daemon is not
# enabled or started here; the benchmark starts a private one under .cache/.
set -euo pipefail
if command -v dockerd >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "install-docker: dockerd is missing; run as root to install Debian's docker.io" >&2
    exit 0
fi
echo "install-docker: installing docker.io" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# policy-rc.d or no systemd may refuse to start the service; the package still installs.
apt-get install -y -qq --no-install-recommends docker.io >/dev/null
