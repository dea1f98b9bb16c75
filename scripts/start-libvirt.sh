#!/usr/bin/env bash
# Start libvirt on a machine without systemd, idempotently (run it at every boot, before the
# agent): what udev would do for /dev/kvm, then virtlogd, then libvirtd, then wait for the socket.
# Without the /dev/kvm fix libvirt re-probes QEMU on every defineXML (~48 s each), and without
# virtlogd every domain start fails (see docs in the hypervisor reference, sections 4 and 15).
set -euo pipefail

SOCKET=/run/libvirt/libvirt-sock

if [ -e /dev/kvm ] && getent group kvm >/dev/null; then
    chown root:kvm /dev/kvm
    chmod 0660 /dev/kvm
fi

running() {  # running PIDFILE: the daemon whose pid is in PIDFILE is alive
    [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null
}

if ! running /run/virtlogd.pid; then
    /usr/sbin/virtlogd -d
fi
if ! running /run/libvirtd.pid; then
    /usr/sbin/libvirtd -d
fi

for _ in $(seq 1 100); do
    if [ -S "$SOCKET" ] && virsh -q -c qemu:///system version >/dev/null 2>&1; then
        exit 0
    fi
    sleep 0.1
done
echo "libvirtd did not answer on $SOCKET within 10 s; see /var/log/libvirt/libvirtd.log" >&2
exit 1
