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
# libvirt counts a guest as stopped only once its QEMU process is gone, and QEMU (daemonized by
# libvirtd) is reaped by PID 1. An init that is not systemd may reap orphans late: this machine's
# takes 1-1.5 s, which every stop, reboot and delete waited out. tini as a child subreaper
# (-s) adopts and reaps libvirtd's orphans at once; libvirtd stays in the foreground under it.
if ! running /run/libvirtd.pid; then
    if command -v tini >/dev/null; then
        setsid tini -s -- /usr/sbin/libvirtd </dev/null >/dev/null 2>&1 &
    else
        /usr/sbin/libvirtd -d
    fi
fi

for _ in $(seq 1 100); do
    if [ -S "$SOCKET" ] && virsh -q -c qemu:///system version >/dev/null 2>&1; then
        exit 0
    fi
    sleep 0.1
done
echo "libvirtd did not answer on $SOCKET within 10 s; see /var/log/libvirt/libvirtd.log" >&2
exit 1
