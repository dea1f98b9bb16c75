"""Load cloudd.conf (an INI file in the style of nova.conf) into `CloudConfig`.

A bad file raises `ConfigError`, whose text is one line naming the file, section, key, value and
the reason, so that start-up can print it instead of a traceback.
"""

from __future__ import annotations

import configparser
import os
import socket
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from cloudd.config.models import CloudConfig

__all__ = ["CloudConfig", "ConfigError", "find_config", "load_config", "render_sample", "resolve_paths"]

# configparser normally folds [DEFAULT] into every section; nova.conf's [DEFAULT] is just a
# section of its own, so give configparser's special section a name nobody writes.
_NO_DEFAULTS = "\x00no-defaults"


class ConfigError(Exception):
    def __init__(
        self, path: str, reason: str, section: str = "", key: str = "", value: str | None = None
    ) -> None:
        self.path, self.section, self.key, self.value, self.reason = path, section, key, value, reason
        where = path
        if section:
            where += f": [{section}]"
        if key:
            where += f" {key}"
            if value is not None:
                where += f" = {value!r}"
        super().__init__(f"{where}: {reason}")


def _section_attr(name: str) -> str:
    return "default" if name == "DEFAULT" else name.lower()


def _section_name(attr: str) -> str:
    return "DEFAULT" if attr == "default" else attr


def load_config(path: str | os.PathLike[str] | None, state_dir: str | None = None) -> CloudConfig:
    """Read and validate a config file; None or a missing default file gives all defaults.
    ``state_dir`` (the command line's --state-dir) overrides the file's before the paths
    derived from it (database, CA, instances...) are filled in."""
    if path is None:
        return resolve_paths(_with_state_dir(CloudConfig(), state_dir))
    path = str(path)
    parser = configparser.ConfigParser(
        interpolation=None, default_section=_NO_DEFAULTS, strict=True, empty_lines_in_values=False
    )
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    try:
        with open(path, encoding="utf-8") as fh:
            parser.read_file(fh, source=path)
    except FileNotFoundError:
        raise ConfigError(path, "file not found") from None
    except (configparser.Error, UnicodeDecodeError, IsADirectoryError, PermissionError) as exc:
        raise ConfigError(path, f"cannot parse: {_one_line(exc)}") from None

    raw: dict[str, dict[str, str]] = {}
    fields = CloudConfig.model_fields
    for section in parser.sections():
        attr = _section_attr(section)
        if attr not in fields:
            known = ", ".join(_section_name(a) for a in fields)
            raise ConfigError(path, f"unknown section (known: {known})", section=section)
        raw[attr] = dict(parser.items(section))
    return resolve_paths(_with_state_dir(validate(raw, path), state_dir))


def _with_state_dir(cfg: CloudConfig, state_dir: str | None) -> CloudConfig:
    if state_dir:
        cfg.default.state_dir = state_dir
    return cfg


def validate(raw: dict[str, dict[str, Any]], path: str = "<config>") -> CloudConfig:
    try:
        return CloudConfig.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = [str(p) for p in err["loc"]]
        section = _section_name(loc[0]) if loc else ""
        key = loc[1] if len(loc) > 1 else ""
        value = raw.get(loc[0], {}).get(key) if loc and key else None
        reason = err["msg"]
        if err["type"] == "extra_forbidden":
            reason = "unknown option"
        raise ConfigError(path, reason, section, key, value) from None


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def default_state_dir() -> Path:
    env = os.environ.get("CLOUDD_STATE_DIR")
    if env:
        return Path(env)
    if os.geteuid() == 0:
        return Path("/var/lib/cloudd")
    return Path.cwd() / "state"


def resolve_paths(cfg: CloudConfig) -> CloudConfig:
    """Fill the options whose defaults depend on other options or on the machine."""
    d = cfg.default
    if not d.state_dir:
        d.state_dir = str(default_state_dir())
    if not d.host:
        d.host = socket.gethostname()
    if not cfg.database.connection:
        cfg.database.connection = f"sqlite:///{Path(d.state_dir) / 'cloudd.db'}"
    if not cfg.api.public_url:
        cfg.api.public_url = f"http://{d.my_ip}:{cfg.api.port}"
    if not cfg.compute.instances_path:
        cfg.compute.instances_path = str(Path(d.state_dir) / "instances")
    if not cfg.cert.ca_path:
        cfg.cert.ca_path = str(Path(d.state_dir) / "CA")
    if not cfg.objectstore.buckets_path:
        cfg.objectstore.buckets_path = str(Path(d.state_dir) / "buckets")
    if not cfg.vnc.novncproxy_base_url:
        cfg.vnc.novncproxy_base_url = f"http://{d.my_ip}:{cfg.vnc.novncproxy_port}/vnc_lite.html"
    return cfg


def _format_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def render_sample() -> str:
    """The sample file: every section and option with its description and default."""
    lines = ["# cloudd.conf: every option with its default. Generated from cloudd/config/models.py.", ""]
    for attr, field in CloudConfig.model_fields.items():
        model = field.annotation
        assert isinstance(model, type) and issubclass(model, BaseModel)
        lines.append(f"[{_section_name(attr)}]")
        for key, opt in model.model_fields.items():
            lines.append(f"# {opt.description}")
            lines.append(f"#{key} = {_format_value(opt.default)}")
        lines.append("")
    return "\n".join(lines)


# Where the commands (cloudd, cloudd manage, scripts) look when --config is not given.
DEFAULT_CONFIG_PATHS = ("/etc/cloudd/cloudd.conf",)


def find_config(explicit: str | None) -> str | None:
    if explicit:
        return explicit
    env = os.environ.get("CLOUDD_CONFIG")
    if env:
        return env
    for candidate in DEFAULT_CONFIG_PATHS:
        if Path(candidate).exists():
            return candidate
    return None
