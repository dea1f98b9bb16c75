"""dnsmasq's ``--dhcp-script`` (Nova's nova-dhcpbridge): report a lease event to the agent.

Run by dnsmasq as ``dhcpbridge.py SOCKET add|old|del MAC IP [HOSTNAME]``. Standard library only
and run with ``python -I``: it must start fast and never import cloudd's dependencies.
"""

import json
import socket
import sys


def main(argv: list[str]) -> int:
    if len(argv) < 5 or argv[2] not in ("add", "old", "del"):
        return 0  # "init" and "tftp" events: nothing to report
    sock_path, action, mac, ip = argv[1:5]
    event = {"action": action, "mac": mac, "ip": ip, "hostname": argv[5] if len(argv) > 5 else None}
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        try:
            sock.sendto(json.dumps(event).encode(), sock_path)
        except OSError as exc:  # the agent is down: the lease is reported again as "old" later
            print(f"dhcpbridge: cannot reach the agent at {sock_path}: {exc}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
