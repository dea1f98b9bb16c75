#!/bin/busybox sh
# /init of the cloudd test guest (a busybox initramfs in the spirit of CirrOS): load the virtio
# modules, configure eth* by DHCP, ask the metadata service for a hostname and SSH key, print the
# ready line on the serial and VGA consoles, then offer logins on both.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /tmp /root/.ssh /run && mount -t devpts devpts /dev/pts

say() {  # to the serial console and the VGA console, whatever /dev/console is
    echo "$*" > /dev/ttyS0
    echo "$*" > /dev/tty1
}

# No kmod in here: insmod in dependency order (see the hypervisor reference, section 6).
for module in $(cat /lib/modules/order); do
    insmod "/lib/modules/$module.ko" 2>/dev/null
done

hostname cloudd-guest
for disk in /sys/block/vd*; do
    [ -e "$disk" ] || continue
    name=${disk##*/}
    header=$(dd if=/dev/$name bs=64 count=1 2>/dev/null | tr -cd 'A-Za-z0-9 =._:-' | head -c 60)
    say "cloudd-guest disk $name sectors=$(cat $disk/size) header=$header"
done

address=none
for link in /sys/class/net/eth*; do
    [ -e "$link" ] || continue
    nic=${link##*/}
    ip link set "$nic" up
    if udhcpc -i "$nic" -n -q -t 4 -T 1 -s /etc/udhcpc.script >/dev/null 2>&1; then
        address=$(ip -4 -o addr show dev "$nic" | awk '{print $4}' | head -n 1)
    fi
done

if [ "$address" != none ]; then
    # (busybox 1.35 wget -T segfaults: the timeout applet bounds it instead)
    metadata=http://169.254.169.254/latest/meta-data
    name=$(timeout 3 wget -q -O - "$metadata/hostname" 2>/dev/null | head -n 1 | cut -d. -f1)
    [ -n "$name" ] && hostname "$name"
    if timeout 3 wget -q -O /root/.ssh/authorized_keys "$metadata/public-keys/0/openssh-key" 2>/dev/null; then
        say "cloudd-guest ssh key installed: $(cut -d' ' -f3 /root/.ssh/authorized_keys)"
    else
        rm -f /root/.ssh/authorized_keys
    fi
fi

# The ACPI power button (a soft reboot or stop from libvirt) powers the guest off cleanly.
acpid -c /etc/acpi -l /tmp/acpid.log -p /run/acpid.pid 2>/dev/null

say "cloudd-guest ready: hostname=$(hostname) ip=$address uptime=$(cut -d' ' -f1 /proc/uptime)"

(while true; do getty -L 115200 ttyS0 vt100; done) &
(while true; do getty 38400 tty1 linux; done) &
while true; do sleep 3600; done
