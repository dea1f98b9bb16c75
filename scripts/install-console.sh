#!/usr/bin/env bash
# Install what the browser VNC console needs on Debian 12, idempotently: the noVNC web client
# that the console proxy serves (/usr/share/novnc), QEMU (its VNC server is the real peer of the
# relay tests) and headless Chromium with chromedriver (the console tests drive the real browser
# over plain W3C WebDriver; no browser download, which this machine's network would refuse).
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive
PACKAGES=(novnc qemu-system-x86 chromium chromium-driver)

missing=()
for pkg in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing system packages for consoles: ${missing[*]}"
    if [ ! -f /tmp/.cloudd-apt-updated ]; then
        apt-get -o DPkg::Lock::Timeout=600 update -qq && touch /tmp/.cloudd-apt-updated
    fi
    apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}"
fi
