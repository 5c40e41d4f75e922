#!/usr/bin/env bash
# Build the distsec target image for podman from Debian's archive (no registry needed).
#
#   tools/images/build.sh [IMAGE_DIR]      default IMAGE_DIR: tools/images/debian12
#
# The image is tagged localhost/distsec-<name>:<hash>, where <hash> covers what shapes the
# image: the package list, setup-rootfs.sh, the suite and mirror, and IMAGE_FORMAT below
# (bump it when a change to this script changes the image). It is also tagged :latest.
# When an image with that hash exists nothing is built, so the one-minute debootstrap only
# runs when one of those changes. Prints the image reference on stdout.
set -euo pipefail
IMAGE_FORMAT=1

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/../.." && pwd)
image_dir=${1:-$here/debian12}
image_dir=$(cd "$image_dir" && pwd)
name=$(basename "$image_dir")
suite=${DISTSEC_DEBIAN_SUITE:-bookworm}
mirror=${DISTSEC_DEBIAN_MIRROR:-http://deb.debian.org/debian}
export CONTAINERS_CONF=${CONTAINERS_CONF:-$top/tools/podman/containers.conf}

log() { printf '%s\n' "images: $*" >&2; }

"$top/tools/host-packages.sh" podman runc debootstrap >&2

packages=$(grep -v '^[[:space:]]*\(#\|$\)' "$image_dir/packages.txt" | tr -s ' \n' ',' | sed 's/,$//')
hash=$( { cat "$image_dir/packages.txt" "$image_dir/setup-rootfs.sh"
          echo "format=$IMAGE_FORMAT suite=$suite mirror=$mirror"; } | sha256sum | cut -c1-12)
ref="localhost/distsec-$name:$hash"

if podman image exists "$ref"; then
  podman tag "$ref" "localhost/distsec-$name:latest"
  log "$ref is up to date"
  echo "$ref"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  log "building $ref needs root (debootstrap and chroot); run 'make image' as root once, then the cached image is used"
  exit 1
fi
cache="$top/.cache/images"
mkdir -p "$cache"
exec 9>"$cache/$name.lock"
flock 9
rootfs=$(mktemp -d "$cache/$name-rootfs.XXXXXX")
trap 'rm -rf "$rootfs"' EXIT

log "building $ref: debootstrap $suite ($packages)"
start=$(date +%s)
if ! debootstrap --variant=minbase --include="$packages" "$suite" "$rootfs" "$mirror" \
      > "$cache/$name-debootstrap.log" 2>&1; then
  tail -n 30 "$cache/$name-debootstrap.log" >&2
  log "debootstrap failed; full log: $cache/$name-debootstrap.log"
  exit 1
fi
cp "$image_dir/setup-rootfs.sh" "$rootfs/tmp/setup-rootfs.sh"
chroot "$rootfs" /bin/sh /tmp/setup-rootfs.sh "$suite" "$mirror" >&2
rm -f "$rootfs/tmp/setup-rootfs.sh"

tar --numeric-owner -C "$rootfs" -c . | podman import \
  --change 'CMD ["/sbin/init"]' \
  --change 'STOPSIGNAL SIGRTMIN+3' \
  --change "LABEL org.distsec.image.hash=$hash" \
  - "$ref" >/dev/null
podman tag "$ref" "localhost/distsec-$name:latest"
# keep storage small: drop older builds of the same image, but never one a container still uses
# (no -f: `podman rmi -f` would remove those containers too, e.g. a scenario running right now)
podman images --format '{{.Repository}}:{{.Tag}}' "localhost/distsec-$name" \
  | grep -v -e ":$hash\$" -e ':latest$' | xargs -r -n1 podman rmi >/dev/null 2>&1 || true
log "built $ref in $(( $(date +%s) - start )) s"
echo "$ref"
