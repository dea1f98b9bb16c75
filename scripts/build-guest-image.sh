#!/usr/bin/env bash
# Build the tiny cloudd test guest offline, from Debian packages only (apt-get download; nothing
# is installed system-wide), into a cache directory that later runs reuse at once:
#   vmlinuz     kernel, bzImage (its console shows on VGA/VNC)       - an AKI ("kernel_id")
#   vmlinux     the same kernel uncompressed (boots ~2x faster, TCG) - an AKI too
#   initrd.img  busybox initramfs with the virtio modules and /init  - an ARI ("ramdisk_id")
#   disk.qcow2  a small root disk (64 MiB, a readable header) for the AMI with those properties
# Usage: scripts/build-guest-image.sh [OUT_DIR]   (default /var/cache/cloudd/guest)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=${1:-${CLOUDD_GUEST_DIR:-/var/cache/cloudd/guest}}
# Bump when the guest's contents change, so cached builds are rebuilt.
VERSION=9
STAMP="$OUT/.built-v$VERSION"

if [ -f "$STAMP" ]; then
    exit 0
fi
for tool in apt-get dpkg-deb qemu-img; do
    command -v "$tool" >/dev/null || { echo "build-guest-image: $tool is missing" >&2; exit 1; }
done
PYTHON=${PYTHON:-$HERE/../.venv/bin/python}
[ -x "$PYTHON" ] || PYTHON=python3

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
chmod 0755 "$WORK"   # apt's _apt user downloads into it

# linux-image-amd64 is a meta package; the real image package is its dependency.
kernel_package=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-/ {print $2; exit}')
if [ -z "$kernel_package" ]; then
    apt-get -o DPkg::Lock::Timeout=600 update -qq
    kernel_package=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-/ {print $2; exit}')
fi
# Dropbear and the packages of the libraries it links (dropbear-bin's and libtomcrypt1's Depends);
# build_guest.py copies in only the files its ELF headers name.
USERLAND_PACKAGES=(dropbear-bin libc6 libcrypt1 zlib1g libtomcrypt1 libtommath1 libgmp10)
(cd "$WORK" && apt-get download -qq "$kernel_package" busybox-static "${USERLAND_PACKAGES[@]}")

# Only the kernel and the few modules the guest loads: the full tree would be 400 MB.
mkdir "$WORK/kernel" "$WORK/busybox"
dpkg-deb --fsys-tarfile "$WORK"/linux-image-*.deb | tar -x -C "$WORK/kernel" --wildcards \
    './boot/vmlinuz-*' '*/virtio*.ko' '*/failover.ko' '*/net_failover.ko' '*/evdev.ko' '*/button.ko'
dpkg-deb -x "$WORK"/busybox-static_*.deb "$WORK/busybox"
mkdir "$WORK/userland"
for package in "${USERLAND_PACKAGES[@]}"; do
    dpkg-deb -x "$WORK/$package"_*.deb "$WORK/userland"
done

mkdir -p "$OUT.tmp"
"$PYTHON" "$HERE/guest/build_guest.py" --kernel-tree "$WORK/kernel" \
    --busybox "$WORK/busybox/bin/busybox" --userland "$WORK/userland" --out "$OUT.tmp"

# The root disk: blank but for a header line the guest prints at boot, so a test can tell
# which disk a guest got (and that a snapshot carried the disk's contents).
printf 'CLOUDD-DISK base=%s\n' "$kernel_package" > "$WORK/disk.raw"
truncate -s 64M "$WORK/disk.raw"
qemu-img convert -q -f raw -O qcow2 "$WORK/disk.raw" "$OUT.tmp/disk.qcow2"

# Publish whole: a concurrent or interrupted build never leaves a half-made cache.
chmod 0755 "$OUT.tmp" && chmod 0644 "$OUT.tmp"/*
rm -rf "$OUT" && mkdir -p "$(dirname "$OUT")" && mv "$OUT.tmp" "$OUT"
touch "$STAMP"
echo "guest image built in $OUT"
