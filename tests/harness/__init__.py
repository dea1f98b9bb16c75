"""The test harness: the cloud under test and what drives it, imported by tests as a library
(`from harness.api import ApiCloud`); conftest.py files only define fixtures that use it.

Two kinds of cloud under test: `cloud.Cloud`, the engine driven in-process through ComputeAPI,
and `api.ApiCloud`, any cloud reached over HTTP: one type with one `call()` (status, JSON body,
headers), `authenticate`/`token`/`user_token` and the admin's token. Each HTTP surface is an
ApiCloud made by its own start-up (`api.running_cloud` for the whole controller), extended only
by what is its own (a proxy URL, EC2 keys and clients, a libvirt agent process).

- config: a test CloudConfig (every listener on an ephemeral port), agent enrolment, host TLS
- users: password auth bodies, tokens, users with roles, EC2 credentials
- cloud: an in-process controller + enrolled agent (fake driver), driven through ComputeAPI
- api: ApiCloud, and running_cloud: the controller (+ agent) bootstrapped, with an admin token
- console: ConsoleCloud (+ the console proxy's URL), and a real QEMU VNC server
- aws: Ec2Cloud and S3Cloud (+ EC2 keys, boto3 and awscli clients)
- identity: an ApiCloud of a controller slice serving only the Identity API
- netlab: real bridges, namespaces and iptables for the network tests
- processes: `cloudd serve` and `cloudd agent` subprocesses, to break
- fake_conductor: an in-memory conductor double for a compute manager alone
- rows: `Row`, an Instance the tests may also index by column name
- clients: the unmodified openstack CLI
- rpc_link: two RpcPeers over a real websocket on loopback
- quickstart: the README's `make run` cloud, and the person using it (a process, driven by
  the openstack CLI as the README does)
- libvirt_host: a real libvirt/QEMU host and the test guest (fixtures), virsh
- requires: a missing real part (root, QEMU, dnsmasq, Chromium...) fails the test, naming the
  script that installs it
- libvirt: LibvirtCloud, the controller in-process with a `cloudd agent` subprocess on the
  libvirt driver
"""
