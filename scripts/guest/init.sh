#!/bin/busybox sh
# /init of the cloudd test guest (a busybox initramfs in the spirit of CirrOS): listen to the ACPI
# power button first, load the virtio modules, configure eth* by DHCP, read the metadata service
# (hostname, SSH keys, user_data), start Dropbear, print the ready line on the serial and VGA
# consoles, then offer logins on both. The metadata functions: metadata.sh.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /tmp /root/.ssh /run && mount -t devpts devpts /dev/pts

# No kmod in here: insmod in dependency order (see the hypervisor reference, section 6).
load_modules() {
    for module in $(cat "/lib/modules/$1"); do
        insmod "/lib/modules/$module.ko" 2>/dev/null
    done
}

# The ACPI power button (a soft reboot or stop from libvirt) powers the guest off cleanly. Started
# before anything slow: a press before acpid listens is lost (the driver presses again).
load_modules early
acpid -c /etc/acpi -l /tmp/acpid.log -p /run/acpid.pid 2>/dev/null
load_modules order

. /lib/cloudd/metadata.sh

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
ip link set lo up

[ "$address" != none ] && read_metadata
# SSH as the login user with the key pair's key: no passwords, no root; host keys made at the
# first connection (-R).
dropbear -R -s -w -E -P /run/dropbear.pid 2>> /var/log/dropbear.log \
    || say "cloudd-guest dropbear failed: $(tail -n 1 /var/log/dropbear.log)"
[ "$address" != none ] && run_user_data

# From here the consoles belong to the login prompts: kernel messages that come late (the clock
# source watchdog of a loaded host, the random pool's "crng init done") stay in dmesg instead
# of landing in the middle of a prompt, as a cloud image's quiet console does.
dmesg -n 1
say "cloudd-guest ready: hostname=$(hostname) ip=$address uptime=$(cut -d' ' -f1 /proc/uptime)"

(while true; do getty -L 115200 ttyS0 vt100; done) &
(while true; do getty 38400 tty1 linux; done) &
while true; do sleep 3600; done
