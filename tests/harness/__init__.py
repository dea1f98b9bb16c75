"""The test harness: the cloud under test and what drives it, imported by tests as a library
(`from harness.api import ApiCloud`); conftest.py files only define fixtures that use it.

- config: a test CloudConfig (every listener on an ephemeral port), agent enrolment, host TLS
- users: password auth bodies, tokens, users with roles, EC2 credentials
- cloud: an in-process controller + enrolled agent (fake driver), driven through ComputeAPI
- api: the same cloud bootstrapped, over HTTP with an admin token (Compute, Network, Image)
- console: the cloud with its console proxy, and a real QEMU VNC server
- aws: the EC2 and S3 clouds, driven with boto3 and awscli
- identity: a controller slice serving only the Identity API
- netlab: real bridges, namespaces and iptables for the network tests
- processes: `cloudd serve` and `cloudd agent` subprocesses, to break
- fake_conductor: an in-memory conductor double for a compute manager alone
- rows: `Row`, an Instance the tests may also index by column name
- clients: the unmodified openstack CLI
- rpc_link: two RpcPeers over a real websocket on loopback
- quickstart: the README's `make run` cloud, and the person using it
- libvirt_host: a real libvirt/QEMU host and the test guest (fixtures), virsh
- libvirt: the controller in-process with a `cloudd agent` subprocess on the libvirt driver
"""
