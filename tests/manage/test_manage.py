"""`cloudd manage` on a real SQLite database: what an operator types and what it prints."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from cloudd.cli import main


class Manage:
    def __init__(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        self.state = tmp_path
        self.capsys = capsys
        self.config = tmp_path / "cloudd.conf"
        self.config.write_text(f"[DEFAULT]\nstate_dir = {tmp_path}\n[service]\nservice_down_time = 60\n")

    def __call__(self, *argv: str) -> tuple[int, str, str]:
        self.capsys.readouterr()
        code = main(["--config", str(self.config), "manage", *argv])
        out, err = self.capsys.readouterr()
        return code, out, err

    def sql(self, statement: str, *args: object) -> list[tuple[object, ...]]:
        with sqlite3.connect(self.state / "cloudd.db") as conn:
            return conn.execute(statement, args).fetchall()

    def add_compute(self, host: str, seen_ago: float) -> None:
        now = time.time()
        self.sql('INSERT INTO services (uuid, host, "binary", topic, created_at, updated_at,'
                 " last_seen_up) VALUES (?, ?, 'cloudd-compute', 'compute', ?, ?, ?)",
                 f"uuid-{host}", host, now - 3600, now - seen_ago, now - seen_ago)
        service_id = self.sql("SELECT id FROM services WHERE host = ?", host)[0][0]
        self.sql("INSERT INTO compute_nodes (uuid, service_id, host, hypervisor_hostname,"
                 " hypervisor_type, vcpus, memory_mb, local_gb, created_at)"
                 " VALUES (?, ?, ?, ?, 'fake', 8, 4096, 100, ?)", f"n-{host}", service_id, host, host, now)

    def add_server(self, host: str, name: str) -> None:
        self.sql("INSERT INTO instances (uuid, name, project_id, user_id, flavor, vcpus, memory_mb,"
                 " vm_state, host, node, created_at) VALUES (?, ?, 'p', 'u', '{}', 1, 512, 'active',"
                 " ?, ?, ?)", f"uuid-{name}", name, host, host, time.time())


@pytest.fixture
def manage(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Manage:
    m = Manage(tmp_path, capsys)
    assert m("bootstrap", "--clouds-yaml", str(tmp_path / "clouds.yaml"))[0] == 0
    return m


def test_service_list_enable_disable_force_down(manage: Manage) -> None:
    manage.add_compute("alpha", seen_ago=5)
    manage.add_compute("beta", seen_ago=300)
    code, out, _ = manage("service", "list")
    assert code == 0
    rows = {line.split()[1]: line for line in out.splitlines()[2:]}
    assert "enabled" in rows["alpha"] and " up " in rows["alpha"]
    assert " down " in rows["beta"]

    assert manage("service", "disable", "alpha", "--reason", "disk swap")[0] == 0
    out = manage("service", "list")[1]
    assert "disabled" in out and "disk swap" in out
    assert manage("service", "enable", "alpha")[0] == 0
    assert "disk swap" not in manage("service", "list")[1]

    assert manage("service", "force-down", "alpha")[0] == 0
    assert "down (forced)" in manage("service", "list")[1]
    assert manage("service", "force-up", "alpha")[0] == 0

    code, out, err = manage("service", "disable", "gamma")
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and "no service cloudd-compute on host 'gamma'" in err
    assert "alpha/cloudd-compute" in err


def test_flavor_create_list_delete(manage: Manage) -> None:
    code, out, _ = manage("flavor", "create", "lab.small", "--ram", "256", "--vcpus", "2", "--id", "ls")
    assert code == 0 and "lab.small" in out
    assert any(line.split()[:2] == ["ls", "lab.small"] for line in manage("flavor", "list")[1].splitlines())
    code, _, err = manage("flavor", "create", "lab.small", "--ram", "256", "--vcpus", "2")
    assert code == 1 and "exists" in err
    assert manage("flavor", "delete", "lab.small")[0] == 0
    assert "lab.small" not in manage("flavor", "list")[1]
    assert manage("flavor", "delete", "lab.small")[0] == 1


def test_quota_set_and_show(manage: Manage) -> None:
    assert manage("quota", "set", "admin", "instances=3", "cores=-1")[0] == 0
    out = manage("quota", "show", "admin")[1]
    limits = {line.split()[0]: line.split() for line in out.splitlines()[2:]}
    assert limits["instances"][1:] == ["3", "0", "project"]
    assert limits["cores"][1] == "-1"
    assert limits["ram"][-1] == "default"
    # The storage quotas (images and S3 objects, MiB) are set and shown the same way.
    assert manage("quota", "set", "admin", "image_size_total=2048", "object_count_total=5")[0] == 0
    out = manage("quota", "show", "admin")[1]
    limits = {line.split()[0]: line.split() for line in out.splitlines()[2:]}
    assert limits["image_size_total"][1:] == ["2048", "0", "project"]
    assert limits["object_count_total"][1:] == ["5", "0", "project"]
    assert limits["object_size_total"][-1] == "default"
    for bad in ("nope=1", "instances=x", "instances=-5"):
        code, _, err = manage("quota", "set", "admin", bad)
        assert code == 1 and err.startswith("cloudd manage: bad quota")
    assert manage("quota", "show", "no-such-project")[0] == 1


def test_host_remove_is_refused_while_servers_run_there(manage: Manage) -> None:
    manage.add_compute("alpha", seen_ago=600)
    manage.add_server("alpha", "web-1")
    code, _, err = manage("host", "remove", "alpha")
    assert code == 1 and "web-1" in err and "--force" in err
    assert "alpha" in manage("host", "list")[1]
    code, out, _ = manage("host", "remove", "alpha", "--force")
    assert code == 0 and "1 server(s) set to ERROR" in out
    assert manage.sql("SELECT vm_state FROM instances WHERE name = 'web-1'") == [("error",)]
    assert manage.sql("SELECT COUNT(*) FROM services") == [(0,)]


def test_host_remove_is_refused_while_its_agent_reports(manage: Manage) -> None:
    manage.add_compute("alpha", seen_ago=1)
    code, _, err = manage("host", "remove", "alpha")
    assert code == 1 and "still reporting" in err


def test_status_names_the_down_host_and_exits_non_zero(manage: Manage) -> None:
    manage.add_compute("alpha", seen_ago=2)
    code, out, _ = manage("status", "--no-api")
    assert code == 0, out
    assert "schema" in out and "(latest)" in out and "healthy" in out

    manage.add_compute("beta", seen_ago=190)
    code, out, _ = manage("status", "--no-api")
    assert code == 1
    line = next(li for li in out.splitlines() if "beta" in li and li.startswith("FAIL"))
    assert "down: last heartbeat 3m 1" in line
    assert "start the agent on beta" in out


def test_status_fails_on_an_unmigrated_database(manage: Manage) -> None:
    manage.sql("DELETE FROM schema_migrations WHERE version = (SELECT MAX(version) FROM schema_migrations)")
    code, out, _ = manage("status", "--no-api")
    assert code == 1 and "cloudd manage db sync" in out


def test_status_reports_an_unreachable_controller(manage: Manage) -> None:
    manage.config.write_text(manage.config.read_text() + "[api]\npublic_url = http://127.0.0.1:9\n")
    manage.add_compute("alpha", seen_ago=1)
    code, out, _ = manage("status")
    assert code == 1 and "FAIL controller: http://127.0.0.1:9/healthz unreachable" in out


def test_host_enroll_gives_a_join_token_and_status_checks_the_ca(manage: Manage) -> None:
    code, out, _ = manage("host", "enroll", "gamma")
    assert code == 0, out
    token = out.splitlines()[-1]
    assert len(token.rpartition(".")[2]) == 64  # the CA fingerprint the agent pins
    out = manage("status", "--no-api")[1]
    assert "OK   CA:" in out and "valid until" in out


def test_help_and_missing_arguments(manage: Manage) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["manage", "flavor", "create", "--help"])
    assert exc.value.code == 0
    assert "--vcpus" in manage.capsys.readouterr().out
    with pytest.raises(SystemExit) as exc:
        main(["manage", "service", "disable"])
    assert exc.value.code == 2


def test_network_and_floating_create(manage: Manage) -> None:
    code, out, _ = manage("network", "create", "private", "--cidr", "10.20.0.0/24", "--project", "admin")
    assert code == 0 and "10.20.0.0/24" in out
    code, _, err = manage("network", "create", "again", "--cidr", "10.20.0.0/24")
    assert code == 1 and "already exists" in err
    code, out, _ = manage("floating", "create", "192.0.2.0/29", "--pool", "public")
    assert code == 0 and out.startswith("6 floating IP(s)")
    assert manage("floating", "create", "192.0.2.0/29")[0] == 1
    assert manage("floating", "create", "not-a-range")[0] == 1
