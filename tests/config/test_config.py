"""Configuration: valid files load, every kind of mistake is one clear line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cloudd.config import ConfigError, load_config, render_sample


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cloudd.conf"
    path.write_text(text)
    return path


def test_defaults_follow_nova(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, "[DEFAULT]\nstate_dir = /srv/c\n"))
    assert cfg.network.network_manager == "FlatDHCPManager"
    assert cfg.service.report_interval == 10
    assert cfg.service.service_down_time == 60
    assert cfg.consoleauth.token_ttl == 600
    assert cfg.scheduler.max_attempts == 3
    assert cfg.database.connection == "sqlite:////srv/c/cloudd.db"


def test_values_are_typed(tmp_path: Path) -> None:
    cfg = load_config(
        write(tmp_path, "[api]\nport = 9999\n[network]\nflat_injected = yes\n"
              "[scheduler]\nram_allocation_ratio = 2.5\n")
    )
    assert cfg.api.port == 9999
    assert cfg.network.flat_injected is True
    assert cfg.scheduler.ram_allocation_ratio == 2.5


def test_default_section_is_not_copied_into_others(tmp_path: Path) -> None:
    # configparser would copy [DEFAULT] keys into every section, making them "unknown" there.
    cfg = load_config(write(tmp_path, "[DEFAULT]\nmy_ip = 10.1.2.3\n[api]\nport = 1234\n"))
    assert cfg.default.my_ip == "10.1.2.3"
    assert cfg.api.public_url == "http://10.1.2.3:1234"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[bogus]\nx = 1\n", "[bogus]: unknown section"),
        ("[api]\nprot = 1\n", "[api] prot = '1': unknown option"),
        ("[api]\nport = abc\n", "[api] port = 'abc': Input should be a valid integer"),
        ("[api]\nport = 70000\n", "[api] port = '70000': Input should be less than or equal to 65535"),
        ("[api]\nmax_microversion = 2.49\n",
         "[api] max_microversion = '2.49': Value error, cloudd implements compute microversions "
         "up to 2.48 only"),
        ("[api]\nmax_microversion = 3.1\n", "[api] max_microversion = '3.1': String should match"),
        ("[network]\nnetwork_manager = Bogus\n", "[network] network_manager = 'Bogus': Input should be"),
        ("[network]\nfixed_range = 10.0.0.0/33\n",
         "[network] fixed_range = '10.0.0.0/33': Value error, not an IPv4 network"),
        ("[network]\nfixed_range = 127.0.0.0/16\n", "127.0.0.0/16 is a loopback, link-local"),
        ("[network]\nfloating_range = 10.217.5.0/24\n",
         "[network]: Value error, floating_range 10.217.5.0/24 overlaps fixed_range 10.217.0.0/16"),
        ("[network]\nfixed_range = 10.1.0.0/24\nnetwork_size = 512\n",
         "network_size 512 does not fit in fixed_range 10.1.0.0/24"),
        ("[network]\ndefault_floating_pool = a b\n", "[network] default_floating_pool = 'a b'"),
        ("[network]\nflat_interface = eth1\n", "set project_networks = false to share"),
        ("[network]\nflat_network_bridge = br;x\n", "[network] flat_network_bridge = 'br;x'"),
        ("[network]\npublic_interface = eth0 -j ACCEPT\n", "[network] public_interface = "),
        ("[api]\nport = 1\nport = 2\n", "cannot parse"),
        ("no section header\n", "cannot parse"),
    ],
)
def test_errors_name_file_section_key_value_reason(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    message = str(err.value)
    assert message.startswith(str(path))
    assert expected in message
    assert "\n" not in message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "nope.conf")


def test_sample_documents_every_option_and_loads_back(tmp_path: Path) -> None:
    sample = render_sample()
    assert "#network_manager = FlatDHCPManager" in sample
    assert "[DEFAULT]" in sample and "[scheduler]" in sample
    # Uncomment every option: the sample's defaults must themselves be a valid file.
    uncommented = "\n".join(
        line[1:] if line.startswith("#") and " = " in line else line for line in sample.splitlines()
    )
    cfg = load_config(write(tmp_path, uncommented))
    assert cfg.network.network_manager == "FlatDHCPManager"


def test_committed_sample_is_current() -> None:
    sample = Path(__file__).parents[2] / "config" / "cloudd.conf.sample"
    assert sample.read_text() == render_sample(), "run: cloudd manage config sample > " + str(sample)


def test_cli_bad_config_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    path = write(tmp_path, "[api]\nport = abc\n")
    proc = subprocess.run(
        [sys.executable, "-m", "cloudd", "--config", str(path), "serve"],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0
    assert "[api] port = 'abc'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_manage_config_check(tmp_path: Path) -> None:
    good = write(tmp_path, "[api]\nport = 80\n")
    ok = subprocess.run([sys.executable, "-m", "cloudd", "manage", "config", "check", str(good)],
                        capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0 and "OK" in ok.stdout
    bad = tmp_path / "bad.conf"
    bad.write_text("[scheduler]\nmax_attempts = 0\n")
    res = subprocess.run([sys.executable, "-m", "cloudd", "manage", "config", "check", str(bad)],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 2
    assert "[scheduler] max_attempts = '0'" in res.stderr


def test_make_run_config_gives_a_network_that_works_here() -> None:
    """`make run`'s file: FlatDHCP (no 802.1Q needed), and bootstrap makes the network and pool."""
    cfg = load_config(Path(__file__).parents[2] / "config" / "cloudd.conf")
    assert cfg.network.network_manager == "FlatDHCPManager"
    assert cfg.network.default_network and cfg.network.floating_range
