# Sourced by /init of the cloudd test guest (and by the tests, in a chroot of the initramfs): what
# the guest takes from the metadata service, as CirrOS does. Everything from there is untrusted:
# it is size-bounded and filtered to a safe alphabet before it reaches a command line or a file.
# METADATA may be set before sourcing (the tests point it at a hostile server).

say() {  # to the serial console and the VGA console, whatever /dev/console is
    echo "$*" > /dev/ttyS0
    echo "$*" > /dev/tty1
}

LOGIN_USER=cloudd
METADATA=${METADATA:-http://169.254.169.254}
# fetch PATH FILE: at most 64 KiB of the answer (busybox 1.35 wget -T segfaults: timeout bounds it)
fetch() {
    rm -f "$2"
    timeout 5 wget -q -O - "$METADATA/$1" 2>/dev/null | head -c 65536 > "$2.part"
    [ -s "$2.part" ] && mv "$2.part" "$2"
    rm -f "$2.part"
    [ -f "$2" ]
}

# A host name label: letters, digits and '-', at most 63 characters.
safe_hostname() {
    head -n 1 | cut -d. -f1 | tr -cd 'A-Za-z0-9-' | head -c 63
}

# Only lines that are an OpenSSH public key (type, base64 blob, a plain comment); nothing else.
safe_keys() {
    tr -d '\r' | grep -E '^(ssh-[a-z0-9]+|ecdsa-sha2-nistp[0-9]+|sk-[a-z0-9@.-]+) [A-Za-z0-9+/]+={0,3}( [A-Za-z0-9@._+:-]+)*$' | head -n 16
}

read_metadata() {
    if fetch openstack/latest/meta_data.json /run/meta_data.json; then
        # JSON escapes every '"' inside a string, so these patterns only match real keys; the
        # first "hostname" is the top-level one (the tenant's "meta" comes after it).
        grep -o '"hostname": *"[^"]*"' /run/meta_data.json | head -n 1 | cut -d'"' -f4 \
            | safe_hostname > /run/hostname
        sed -n 's/.*"public_keys": *{\([^}]*\)}.*/\1/p' /run/meta_data.json \
            | grep -o ': *"[^"]*"' | cut -d'"' -f2 | safe_keys > /run/keys
    else  # the EC2 paths, as CirrOS falls back to them
        fetch latest/meta-data/hostname /run/ec2-hostname && safe_hostname < /run/ec2-hostname > /run/hostname
        fetch latest/meta-data/public-keys/0/openssh-key /run/ec2-key && safe_keys < /run/ec2-key > /run/keys
    fi
    name=$(cat /run/hostname 2>/dev/null)
    [ -n "$name" ] && hostname "$name"
    if [ -s /run/keys ]; then
        home=/home/$LOGIN_USER
        mkdir -p "$home/.ssh"
        cp /run/keys "$home/.ssh/authorized_keys"
        chown -R "$LOGIN_USER:$LOGIN_USER" "$home"
        chmod 700 "$home" "$home/.ssh" && chmod 600 "$home/.ssh/authorized_keys"
        say "cloudd-guest ssh key installed for $LOGIN_USER: $(wc -l < /run/keys) key(s)"
    fi
}

# user_data runs (as root, output on the serial console) only if it is a script: "#!" first.
run_user_data() {
    fetch openstack/latest/user_data /run/user_data || fetch latest/user-data /run/user_data || return 0
    if [ "$(head -c 2 /run/user_data)" != '#!' ]; then
        say "cloudd-guest user_data is not a script (no #!): not run"
        return 0
    fi
    chmod 700 /run/user_data
    (cd /root && HOME=/root timeout 120 /run/user_data) > /dev/ttyS0 2>&1 < /dev/null
    say "cloudd-guest user_data exit=$?"
}
