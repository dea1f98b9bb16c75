#!/usr/bin/env bash
# System packages the network agent (and its tests) need, installed only when missing:
# dnsmasq-base (DHCP per network), dnsmasq-utils (dhcp_release), iptables (nf_tables backend,
# SNAT/DNAT and security groups), iproute2 (ip netns for the tests), busybox-static (udhcpc and
# ping inside the namespaces that act as guests in the tests), nftables (nft: the per-port
# anti-spoofing table in the bridge family, loaded as JSON).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
command -v apt-get >/dev/null || exit 0

missing=()
for pkg in dnsmasq-base dnsmasq-utils iptables iproute2 busybox-static nftables; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing network packages: ${missing[*]}"
    if [ ! -f /tmp/.cloudd-apt-updated ]; then
        apt-get -o DPkg::Lock::Timeout=600 update -qq && touch /tmp/.cloudd-apt-updated
    fi
    apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}"
fi
