#!/usr/bin/env bash
# Install what the libvirt compute driver needs on Debian 12, idempotently: QEMU, qemu-img,
# the libvirt daemon and clients, the ssh client (tests log in to guests), the headers
# libvirt-python builds against, and the binding itself in the virtualenv (the `libvirt` extra
# of pyproject.toml). Daemons are not started here: scripts/start-libvirt.sh does that, at
# every boot, because nothing here uses systemd.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
export DEBIAN_FRONTEND=noninteractive
PACKAGES=(qemu-system-x86 qemu-utils libvirt-daemon-system libvirt-clients libvirt-dev pkg-config
          gcc dnsmasq-base openssh-client tini)

missing=()
for pkg in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing system packages for libvirt: ${missing[*]}"
    if [ ! -f /tmp/.cloudd-apt-updated ]; then
        apt-get -o DPkg::Lock::Timeout=600 update -qq && touch /tmp/.cloudd-apt-updated
    fi
    apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}"
fi

if [ -x "$VENV/bin/python" ] && ! "$VENV/bin/python" -c 'import libvirt' 2>/dev/null; then
    # Builds from the sdist against Debian's libvirt-dev (10-12 s); pip's cache makes reruns fast.
    "$VENV/bin/pip" install -q --disable-pip-version-check "libvirt-python>=9.0"
fi
