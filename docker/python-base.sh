#!/usr/bin/env bash
# Builds a stand-in for python:3.11-slim-bookworm from Debian's own packages, for hosts that
# reach Debian's mirrors and PyPI but no container registry (the image tier's CI host):
# debootstrap a minimal bookworm with python3 (3.11) and python3-venv, then import it as
# an image. Pass it to the Dockerfiles as their PYTHON_IMAGE build argument.
#
#   docker/python-base.sh [IMAGE]        (default: localhost/recops-python-base:3.11-bookworm)
#
# Idempotent: an existing IMAGE is kept (remove it to rebuild). Needs root and debootstrap.
# IMAGE_BUILDER picks podman or docker (default: podman when installed, else docker);
# DEBIAN_MIRROR overrides the mirror.
set -euo pipefail

image=${1:-localhost/recops-python-base:3.11-bookworm}
builder=${IMAGE_BUILDER:-$(command -v podman >/dev/null && echo podman || echo docker)}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

if "$builder" image inspect "$image" >/dev/null 2>&1; then
  echo "$image: already built"
  exit 0
fi

root=$(mktemp -d)
# --one-file-system: should debootstrap stop half-way, the host's /proc or /sys that it
# mounted inside are left alone.
trap 'rm -rf --one-file-system "$root"' EXIT
# python:3.11-slim-bookworm also carries passwd (the Dockerfiles add a user), CA
# certificates and netbase; the Dockerfiles call `python`, which Debian names python3.
debootstrap --variant=minbase --include=python3,python3-venv,passwd,ca-certificates,netbase \
  bookworm "$root" "$mirror" >/dev/null
ln -s python3 "$root/usr/bin/python"
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/log/*.log
tar -C "$root" --numeric-owner -c . | "$builder" import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change 'CMD ["python3"]' \
  - "$image" >/dev/null
echo "$image: built"
