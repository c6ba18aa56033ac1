#!/usr/bin/env bash
# Installs the Debian packages strata's tests and demo need, when they are missing.
# runc/crun run containers; skopeo/umoci check image outputs; docker-registry is the
# real registry for registry tests; busybox-static is the base of test images;
# openssh-client provides ssh-agent for RUN --mount=type=ssh with key files; slirp4netns
# gives each RUN step its own network namespace with outbound access; podman pulls and runs
# what strata pushes. docker.io (dockerd 20.10 with BuildKit 0.8) is installed best effort
# (its tests skip with their reason without it): it pulls and runs what strata pushes and
# reads strata's caches, on a private socket the tests start.
set -euo pipefail
packages=(runc crun skopeo umoci docker-registry busybox-static git ca-certificates openssh-client time slirp4netns podman)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "$(id -u)" -eq 0 ] && ! command -v dockerd >/dev/null 2>&1; then
    bash "$(dirname "$0")/install-docker.sh" \
        || echo "install-deps: docker.io could not be installed; the Docker interop tests will skip" >&2
fi
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: missing Debian packages (${missing[*]}); run as root to install them" >&2
    exit 0
fi
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
