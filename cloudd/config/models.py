"""Configuration sections, one pydantic model per INI section.

Every option has a default and a description (the description is what the sample file and the
configuration reference print). Field constraints (ge/le/pattern) are the range checks that stop
start-up with a clear message.
"""

from __future__ import annotations

import ipaddress
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator


class Section(BaseModel):
    # Unknown keys are errors: a typo in a config file must not be silently ignored.
    model_config = ConfigDict(extra="forbid", validate_default=True)


class DefaultSection(Section):
    state_dir: str = Field(
        "", description="Where the database, CA, images and logs live. Empty: $CLOUDD_STATE_DIR or "
        "/var/lib/cloudd (./state when not root)."
    )
    host: str = Field("", description="This machine's name in the cloud. Empty: the hostname.")
    my_ip: str = Field("127.0.0.1", description="The address other hosts use to reach this one.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Log level.")
    log_format: Literal["text", "json"] = Field("text", description="Log line format.")
    log_file: str = Field("", description="Also log to this file (empty: standard error only).")
    shutdown_timeout: float = Field(
        15.0, gt=0, le=600, description="Seconds each service gets to stop before it is abandoned."
    )
    task_restart_policy: Literal["restart", "exit"] = Field(
        "restart",
        description="What a crashed service task does: restart after a backoff, or take the process down.",
    )
    instance_name_template: str = Field(
        "instance-%(uuid)s",
        description="Name of each instance's hypervisor domain, fixed when the instance is created "
        "(keys %(id)s, %(uuid)s, %(cloud_id)s, or Nova's instance-%08x of the id). The default "
        "cannot collide between clouds sharing one libvirtd; instance-%08x can.",
    )
    reclaim_instance_interval: int = Field(
        0, ge=0, le=86400 * 365, description="Seconds a deleted server stays SOFT_DELETED "
        "(powered off, restorable with the restore action, its resources still held) before it "
        "is deleted for good; 0: delete at once (Nova's option of the same name).")
    shelved_offload_time: int = Field(
        0, ge=-1, le=86400 * 365, description="Seconds a shelved server keeps its host (its "
        "guest powered off, its resources held) before it is offloaded; 0: offload as soon as "
        "the shelve is done; -1: never offload by itself (Nova's option of the same name).")
    shelved_poll_interval: int = Field(
        3600, ge=1, le=86400, description="Seconds between the controller's checks for shelved "
        "servers due to be offloaded (with shelved_offload_time above 0).")
    running_deleted_instance_action: Literal["noop", "log", "reap"] = Field(
        "reap",
        description="Agent: what to do with a domain marked as this cloud's (on this host's "
        "instances_path) whose instance is gone: reap it (destroy, remove its files), log it, or "
        "nothing. Domains of other clouds or without cloudd metadata are only ever reported.",
    )
    running_deleted_instance_poll_interval: float = Field(
        1800.0, gt=0,
        description="Agent: seconds between checks of the host's domains (also done at start).",
    )

    @field_validator("instance_name_template")
    @classmethod
    def _renders(cls, value: str) -> str:
        from cloudd.vocab.instance_name import check_template

        return check_template(value)


class DatabaseSection(Section):
    connection: str = Field(
        "",
        description="Database URL: sqlite:///path/cloudd.db or postgresql://user@host:5432/name. "
        "Empty: SQLite under the state directory.",
    )
    pool_size: int = Field(10, ge=1, le=200, description="PostgreSQL connection pool size.")


# The highest compute microversion whose every change, and every one below it, cloudd makes.
HIGHEST_MICROVERSION = "2.48"


class ApiSection(Section):
    listen: str = Field("0.0.0.0", description="Address the API (and /healthz) listens on.")
    port: int = Field(8774, ge=0, le=65535, description="Port of the API.")
    public_url: str = Field(
        "", description="Base URL clients use (catalog endpoints). Empty: http://<my_ip>:<port>."
    )
    token_expiration: int = Field(3600, ge=60, le=86400 * 7, description="Token lifetime (s).")
    max_microversion: str = Field(
        HIGHEST_MICROVERSION, pattern=r"^2\.\d+$", description="Highest compute microversion "
        f"advertised; at most {HIGHEST_MICROVERSION}, the highest cloudd implements in full.")
    enable_instance_password: bool = Field(
        True, description="Whether server create and rebuild answer the server's admin password "
        "(adminPass), as Nova's [api] enable_instance_password.")
    client_idle_timeout: float = Field(
        30.0, gt=0, le=3600, description="Seconds a client connection may stay idle or take to send a "
        "request head before it is closed (slow clients cannot hold connections).")

    @field_validator("max_microversion")
    @classmethod
    def _implemented(cls, value: str) -> str:
        if int(value.split(".")[1]) > int(HIGHEST_MICROVERSION.split(".")[1]):
            raise ValueError(f"cloudd implements compute microversions up to "
                             f"{HIGHEST_MICROVERSION} only")
        return value


class RpcSection(Section):
    listen: str = Field("0.0.0.0", description="Address the agent websocket listener binds.")
    port: int = Field(
        8780, ge=0, le=65535, description="Port agents connect to (mutual TLS: enrolled hosts only)."
    )
    enroll_port: int = Field(
        8781, ge=0, le=65535, description="Port hosts holding a join token enroll on (TLS, "
        "server certificate only); an agent dials it on its controller's address."
    )
    call_timeout: float = Field(60.0, gt=0, le=3600, description="Default RPC call timeout (s).")
    link_heartbeat: float = Field(
        10.0, ge=1, le=600, description="Seconds of silence on an agent's link before either "
        "end pings; a link whose pong is not back within half of that is dropped (and the agent "
        "reconnects). Apart from report_interval: a busy controller that answers a ping late "
        "must not cost every host its link.")


class ServiceSection(Section):
    report_interval: float = Field(10.0, gt=0, le=600, description="Seconds between heartbeats.")
    service_down_time: float = Field(
        60.0, gt=0, le=3600, description="A service with no heartbeat for this long is down."
    )


class AgentSection(Section):
    controller_url: str = Field(
        "wss://127.0.0.1:8780/agent",
        description="The controller's agent websocket URL (always TLS: ws:// is dialled as wss://); "
        "several, comma-separated, for controllers sharing one PostgreSQL (the agent fails over to "
        "the next).",
    )
    availability_zone: str = Field("nova", description="Availability zone of this host.")
    reconnect_max_backoff: float = Field(
        30.0, gt=0, le=600, description="Longest wait between reconnection attempts (s)."
    )
    sync_power_state_interval: float = Field(
        600.0, gt=0, description="Seconds between power-state syncs from the hypervisor."
    )


class SchedulerSection(Section):
    driver: Literal["filter_scheduler", "chance_scheduler"] = Field(
        "filter_scheduler", description="Scheduler driver."
    )
    enabled_filters: str = Field(
        "RetryFilter,AvailabilityZoneFilter,ComputeFilter,RamFilter,CoreFilter,DiskFilter,"
        "ComputeCapabilitiesFilter,ImagePropertiesFilter,ServerGroupAntiAffinityFilter,"
        "ServerGroupAffinityFilter,SameHostFilter,DifferentHostFilter",
        description="Comma-separated filter class names, applied in order.",
    )
    ram_weight_multiplier: float = Field(1.0, description="Positive spreads, negative stacks.")
    cpu_weight_multiplier: float = Field(1.0, description="Positive spreads, negative stacks.")
    disk_weight_multiplier: float = Field(1.0, description="Positive spreads, negative stacks.")
    host_subset_size: int = Field(1, ge=1, le=1000, description="Pick randomly among the N best.")
    max_attempts: int = Field(3, ge=1, le=100, description="Build attempts before ERROR.")
    max_instances_per_host: int = Field(50, ge=1, description="NumInstancesFilter limit.")
    cpu_allocation_ratio: float = Field(16.0, gt=0, le=1000, description="Virtual CPUs per core.")
    ram_allocation_ratio: float = Field(1.5, gt=0, le=100, description="Virtual RAM per real RAM.")
    disk_allocation_ratio: float = Field(1.0, gt=0, le=100, description="Virtual disk per real.")


class ComputeSection(Section):
    compute_driver: Literal["libvirt", "fake"] = Field("libvirt", description="Hypervisor driver.")
    fake_host_count: int = Field(
        1, ge=1, le=100000, description="fake driver: simulated hosts presented by one agent."
    )
    fake_vcpus: int = Field(16, ge=1, description="fake driver: vCPUs per simulated host.")
    fake_memory_mb: int = Field(65536, ge=1, description="fake driver: RAM per simulated host.")
    fake_local_gb: int = Field(1000, ge=1, description="fake driver: disk per simulated host.")
    fake_delays: str = Field(
        "", pattern=r"^(\s*[a-z_]+\s*=\s*[0-9.]+\s*(,|$))*$",
        description="fake driver: seconds per operation, e.g. 'spawn=2,reboot=0.5'.",
    )
    reserved_host_memory_mb: int = Field(512, ge=0, description="RAM kept for the host itself.")
    instances_path: str = Field("", description="Instance files. Empty: <state_dir>/instances.")


class LibvirtSection(Section):
    virt_type: Literal["auto", "kvm", "qemu"] = Field(
        "auto", description="auto: kvm only when a guest really boots with it, else qemu."
    )
    connection_uri: str = Field("qemu:///system", description="libvirt URI.")


class NetworkSection(Section):
    network_manager: Literal["FlatManager", "FlatDHCPManager", "VLANManager"] = Field(
        "FlatDHCPManager", description="Networking strategy. FlatDHCPManager (DevStack's default) "
        "works on any Linux host; VLANManager needs 802.1Q (or vxlan) links between hosts."
    )
    flat_network_bridge: str = Field(
        "br100", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,9}$", description="Bridge of the "
        "default Flat/FlatDHCP network; project networks' bridges are named after it (br100-1, "
        "...), so it has 10 characters at most.")
    flat_interface: str = Field("", description="Interface added to the flat bridge.")
    flat_injected: bool = Field(False, description="Inject network config into guests.")
    public_interface: str = Field(
        "", pattern=r"^[A-Za-z0-9_.-]{0,15}$", description="Interface floating IPs are bound to and "
        "guests' traffic is masqueraded out of. Empty: each host's default-route interface.")
    vlan_interface: str = Field("", description="Interface VLANs are made on.")
    vlan_start: int = Field(100, ge=1, le=4094, description="First VLAN id.")
    segmentation: Literal["vlan", "vxlan"] = Field("vlan", description="Segment kind for VLANManager.")
    fixed_range: str = Field(
        "10.217.0.0/16", description="Range the networks are carved from (network_size addresses "
        "each): the default network first, then one per project (project_networks).")
    network_size: int = Field(256, ge=4, le=65536, description="Addresses per network.")
    num_networks: int = Field(1, ge=1, le=4094, description="Networks made by default.")
    dhcp_lease_time: int = Field(120, ge=60, description="DHCP lease time (s).")
    dhcp_domain: str = Field("novalocal", description="Domain of guests' names.")
    dns_server: str = Field("8.8.4.4", description="DNS server handed to guests.")
    floating_range: str = Field(
        "10.218.0.0/24", description="Range of the floating pool bootstrap creates "
        "(default_floating_pool), routed by the hosts themselves. Empty: no pool.")
    default_floating_pool: str = Field(
        "nova", pattern=r"^[A-Za-z0-9_.-]{1,64}$",
        description="Pool floating IPs come from when a request names none.")
    auto_assign_floating_ip: bool = Field(
        False, description="Give every new server a floating IP from default_floating_pool "
        "(released when the server is deleted), as Nova's option of the same name.")
    default_network: bool = Field(
        True, description="`cloudd manage bootstrap` creates, once, the admin project's network "
        "(the first network_size block of fixed_range, on flat_network_bridge) and the floating "
        "pool of floating_range. false: neither (create them with `cloudd manage network create` "
        "and `cloudd manage floating create`).")
    project_networks: bool = Field(
        True, description="FlatDHCP/VLAN: a project that can use no network gets its own, "
        "carved from fixed_range, at its first server (isolated on its own bridge). false: "
        "projects use the networks that belong to no project.")
    metadata_port: int = Field(8775, ge=0, le=65535, description="Metadata service port.")
    metadata_host: str = Field(
        "", description="Address guests' 169.254.169.254 traffic is sent to. Empty: my_ip."
    )
    metadata_listen: str = Field("0.0.0.0", description="Address the metadata service listens on.")
    metadata_proxy_port: int = Field(
        9697, ge=0, le=65535, description="Agent: port of the host's metadata proxy that guests' "
        "169.254.169.254:80 is redirected to (0: any free port, for tests)."
    )
    metadata_proxy_shared_secret: str = Field(
        "", description="Secret the hosts' metadata proxy keys derive from (each host gets its own key "
        "over its link). Empty: generated once into <state_dir>/metadata-proxy-secret."
    )
    metadata_trusted_proxies: str = Field(
        "", description="Comma-separated addresses of proxies whose X-Forwarded-For the metadata "
        "service believes (empty: none; guests are known by their host proxy's signature only)."
    )
    networks_path: str = Field("", description="dnsmasq files. Empty: <state_dir>/networks.")
    force_dhcp_release: bool = Field(True, description="Release a deleted guest's lease at once.")
    fixed_ip_disassociate_timeout: int = Field(
        600, ge=0, description="Seconds before a deallocated fixed IP still leased is freed."
    )
    quota_floating_ips: int = Field(10, ge=-1, description="Floating IPs per project (-1: no limit).")

    @field_validator("fixed_range", "floating_range")
    @classmethod
    def _ipv4_range(cls, value: str, info: ValidationInfo) -> str:
        if not value and info.field_name == "floating_range":
            return value
        try:
            net = ipaddress.IPv4Network(value.strip(), strict=False)
        except ValueError:
            raise ValueError(f"not an IPv4 network a.b.c.d/n: {value!r}") from None
        if net.prefixlen < 8 or net.prefixlen > 30:
            raise ValueError(f"{net}: the prefix must be /8 to /30")
        if net.is_loopback or net.is_link_local or net.is_multicast or net.is_reserved \
                or net.is_unspecified:
            raise ValueError(f"{net} is a loopback, link-local, multicast or reserved range")
        return str(net)

    @model_validator(mode="after")
    def _ranges_fit(self) -> NetworkSection:
        fixed = ipaddress.IPv4Network(self.fixed_range)
        if self.network_size > fixed.num_addresses:
            raise ValueError(f"network_size {self.network_size} does not fit in fixed_range "
                             f"{fixed}: make fixed_range larger or network_size smaller")
        if self.network_manager == "FlatDHCPManager" and self.project_networks \
                and self.flat_interface:
            raise ValueError("flat_interface can be in one bridge only, and project_networks "
                             "gives each project its own: set project_networks = false to share "
                             "the flat network across hosts (or use VLANManager)")
        if self.floating_range and fixed.overlaps(ipaddress.IPv4Network(self.floating_range)):
            raise ValueError(f"floating_range {self.floating_range} overlaps fixed_range {fixed}: "
                             "change one of them")
        return self

    @field_validator("metadata_trusted_proxies")
    @classmethod
    def _proxy_addresses(cls, value: str) -> str:
        for item in filter(None, (part.strip() for part in value.split(","))):
            ipaddress.ip_address(item)  # ValueError names the bad address
        return value

    def trusted_proxies(self) -> set[str]:
        return {str(ipaddress.ip_address(p.strip())) for p in self.metadata_trusted_proxies.split(",")
                if p.strip()}


class CertSection(Section):
    ca_path: str = Field("", description="CA directory. Empty: <state_dir>/CA.")
    key_size: int = Field(3072, ge=2048, le=8192, description="RSA key size of issued certificates.")
    cert_days: int = Field(365, ge=1, le=3650, description="Validity of issued certificates.")
    join_token: str = Field(
        "", description="Agent: one-time token from `cloudd manage host enroll HOST`, used once to "
        "obtain the agent's certificate (kept in <state_dir>/agent-cert). Not needed by the "
        "all-in-one, whose agent is enrolled by its own controller."
    )


class ConsoleauthSection(Section):
    token_ttl: int = Field(600, ge=10, le=86400, description="Console token lifetime (s).")


class VncSection(Section):
    enabled: bool = Field(True, description="Give guests VNC consoles.")
    novncproxy_host: str = Field("0.0.0.0", description="Console proxy listen address.")
    novncproxy_port: int = Field(
        6080, ge=0, le=65535, description="Console proxy port (0: any free port, for tests)."
    )
    novncproxy_base_url: str = Field(
        "", description="URL handed to clients. Empty: http://<my_ip>:6080/vnc_lite.html."
    )
    vncserver_listen: str = Field("127.0.0.1", description="Where guests' VNC servers listen.")
    vncserver_proxyclient_address: str = Field(
        "127.0.0.1", description="Where the proxy reaches guests' VNC servers (a remote host: its"
        " address towards the controller, the one its agent connects from)."
    )
    # The proxy relays only to ports in this range (libvirt's qemu.conf remote_display_port_min
    # /max must lie inside it), so a false agent cannot aim it at the controller's own services.
    vncserver_port_min: int = Field(5900, ge=1, le=65535, description="Lowest guest VNC port.")
    vncserver_port_max: int = Field(6899, ge=1, le=65535, description="Highest guest VNC port.")
    web: str = Field("/usr/share/novnc", description="noVNC files.")
    allowed_origins: str = Field(
        "", description="Comma-separated host names browsers may open consoles from, besides the "
        "proxy's own (Nova's [console] allowed_origins)."
    )


class ObjectstoreSection(Section):
    listen: str = Field("0.0.0.0", description="S3 listen address.")
    port: int = Field(3333, ge=0, le=65535, description="S3 port (0: any free port, for tests).")
    buckets_path: str = Field("", description="Object files. Empty: <state_dir>/buckets.")
    public_url: str = Field(
        "", description="S3 URL in the catalog. Empty: http(s)://<my_ip>:<port>."
    )
    virtual_host_domain: str = Field(
        "", description="Also accept virtual-host style requests (bucket.DOMAIN). Empty: path-style only."
    )
    ssl_cert_file: str = Field("", description="Serve HTTPS with this PEM certificate (empty: HTTP).")
    ssl_key_file: str = Field("", description="The PEM private key of ssl_cert_file.")
    region: str = Field("us-east-1", description="The region SigV4 credential scopes must name "
                        "(what S3 clients send by default).")
    multipart_expiry: float = Field(
        7 * 86400.0, ge=60, le=365 * 86400, description="Seconds after which an unfinished "
        "multipart upload is aborted and its parts deleted.")


class Ec2Section(Section):
    enabled: bool = Field(True, description="Serve the EC2 Query API.")
    listen: str = Field("0.0.0.0", description="EC2 API listen address.")
    port: int = Field(8773, ge=0, le=65535, description="EC2 API port (0: any free port, for tests).")
    region: str = Field("RegionOne", description="Region name reported by DescribeRegions.")
    public_url: str = Field(
        "", description="EC2 URL in the catalog and DescribeRegions. Empty: "
        "http://<my_ip>:<port>/services/Cloud."
    )


class IdentitySection(Section):
    """Keystone's lockout options, kept per controller process."""

    lockout_failure_attempts: int = Field(
        5, ge=1, le=1000, description="Failed password logins in a row for one user name before "
        "it is locked out for lockout_duration (Keystone's option of the same name).")
    lockout_failure_attempts_per_address: int = Field(
        30, ge=1, le=100000, description="Failed password logins from one client address, "
        "whatever the user names, before that address is locked out for lockout_duration.")
    lockout_duration: float = Field(
        300.0, gt=0, le=86400, description="Seconds a lockout lasts; failures older than this "
        "are forgotten.")
    failed_login_delay: float = Field(
        0.5, ge=0, le=10, description="Seconds a failed login waits before its 401, doubled with "
        "each further failure of the same user or address (at most 8 s; 0: no delay).")


class CloudConfig(Section):
    """The whole file. Attribute names are the section names (DEFAULT is `default`)."""

    default: DefaultSection = DefaultSection()
    database: DatabaseSection = DatabaseSection()
    api: ApiSection = ApiSection()
    rpc: RpcSection = RpcSection()
    service: ServiceSection = ServiceSection()
    agent: AgentSection = AgentSection()
    scheduler: SchedulerSection = SchedulerSection()
    compute: ComputeSection = ComputeSection()
    libvirt: LibvirtSection = LibvirtSection()
    network: NetworkSection = NetworkSection()
    cert: CertSection = CertSection()
    consoleauth: ConsoleauthSection = ConsoleauthSection()
    vnc: VncSection = VncSection()
    objectstore: ObjectstoreSection = ObjectstoreSection()
    ec2: Ec2Section = Ec2Section()
    identity: IdentitySection = IdentitySection()
