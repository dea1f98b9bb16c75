#!/usr/bin/env bash
# Install what cloudd needs on a Debian 12 machine, idempotently: system packages that are
# missing, then the virtualenv with cloudd and its test tools. Used by `make run` and `make test`.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}
export DEBIAN_FRONTEND=noninteractive

apt_install() {
    # Only touch apt when something is really missing: it is slow and needs the network.
    local missing=()
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        echo "installing system packages: ${missing[*]}"
        if [ ! -f /tmp/.cloudd-apt-updated ]; then
            apt-get -o DPkg::Lock::Timeout=600 update -qq && touch /tmp/.cloudd-apt-updated
        fi
        apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}"
    fi
}

if command -v apt-get >/dev/null; then
    # openssh-client: the README's quick start (and its test) log in to the guest with ssh.
    # openssl: the CA tests check cloudd's certificates with `openssl verify`.
    # procps: the agent answers a hypervisor's uptime with `uptime`, as Nova's libvirt driver.
    base=(gcc pkg-config iproute2 ca-certificates openssh-client openssl procps)
    # A python3 from Debian needs its venv and headers packages; a pyenv one carries its own.
    if [ "$(command -v "$PYTHON")" = /usr/bin/python3 ]; then
        base+=(python3-venv python3-dev)
    fi
    apt_install "${base[@]}"
    scripts/install-network.sh  # dnsmasq, iptables, busybox for the network agent and its tests
    bash scripts/install-console.sh  # noVNC pages, QEMU, chromium + chromedriver for consoles
fi

if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/pip" install -q --disable-pip-version-check -e ".[test]"
VENV="$VENV" bash scripts/install-libvirt.sh  # QEMU, libvirt and libvirt-python (libvirt driver)
