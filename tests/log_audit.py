"""The whole test run's logs must not contain a secret (issue 11): capture, record, grep.

* Every log record of the run, at DEBUG, goes through cloudd's own handler set-up (request id,
  redaction) into ``tests/artifacts/full-run-<pid>.log`` — what a cloudd log file would hold.
* The secrets cloudd makes during the run are recorded as they are made, by wrapping the few
  places that make them (the product does not know; each wrapper returns what it got):
  ``secrets.token_urlsafe`` of 18 bytes or more (Identity tokens, generated passwords such as
  the bootstrap's admin password, console tokens, host join secrets; Keystone audit ids, 16
  bytes, are public by design and shorter values cannot be grepped soundly), EC2 secret keys (the
  credential view the Identity API returns) and generated key pairs' private keys (every line of
  their base64 body).
* Processes the tests start (``cloudd serve``/``agent`` subprocesses) log into their tmp dirs: the
  admin passwords their bootstraps wrote (``admin-password`` files under the run's basetemp) are
  added, and their ``*.log``/``*.out`` files scanned too. Secrets those processes made and only
  they saw (their tokens) cannot be known here.
* At the end ``grep -F`` looks for every recorded secret and for an unredacted private key
  header; any hit fails the run, naming the file and a prefix of the secret.
"""

from __future__ import annotations

import functools
import logging
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
# One file per pytest process: several runs may share this checkout at once.
RUN_LOG = ARTIFACTS / f"full-run-{os.getpid()}.log"
KEEP_SECONDS = 2 * 86400  # older runs' logs are removed
MIN_TOKEN_BYTES = 18
PEM_HEADER = "PRIVATE KEY-----"  # the redaction leaves "[private key redacted]"
RECORDED: set[str] = set()
_state: dict[str, Any] = {}


def record(secret: str | None) -> None:
    if secret and len(secret) >= 12:
        RECORDED.add(secret)


def _record_pem(pem: str) -> None:
    for line in pem.splitlines():
        if len(line) >= 40 and "-----" not in line:
            record(line)


def _wrap_everywhere(module_name: str, attr: str, make: Callable[[Any], Any]) -> None:
    """Replace `module.attr` with `make(original)`, also where it was already imported by name."""
    module = sys.modules.get(module_name) or __import__(module_name, fromlist=[attr])
    original = getattr(module, attr)
    wrapper = make(original)
    for loaded in list(sys.modules.values()):
        if getattr(loaded, "__name__", "").startswith(("cloudd", module_name)):
            for name, value in list(vars(loaded).items()):
                if value is original:
                    setattr(loaded, name, wrapper)


def _recording_token_urlsafe(original: Callable[..., str]) -> Callable[..., str]:
    @functools.wraps(original)
    def token_urlsafe(nbytes: int | None = None) -> str:
        value = original(nbytes)
        if nbytes is None or nbytes >= MIN_TOKEN_BYTES:
            record(value)
        return value

    return token_urlsafe


def _recording_result(extract: Callable[[Any], None]) -> Callable[[Any], Any]:
    def make(original: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            result = original(*args, **kwargs)
            extract(result)
            return result

        return wrapped

    return make


def install_recorders() -> None:
    _wrap_everywhere("secrets", "token_urlsafe", _recording_token_urlsafe)
    _wrap_everywhere("cloudd.api.identity.ec2", "_ec2_view",
                     _recording_result(lambda view: record(view.get("secret"))))
    for module in ("cloudd.api.compute.keypairs", "cloudd.api.ec2.keypairs"):
        attr = "generate" if module.endswith("compute.keypairs") else "_generate_rsa"
        _wrap_everywhere(module, attr, _recording_result(lambda pair: _record_pem(pair[1])))
    assert secrets.token_urlsafe.__name__ == "token_urlsafe"


def start_capture() -> None:
    from cloudd.log import configure_handler

    ARTIFACTS.mkdir(exist_ok=True)
    for old in ARTIFACTS.glob("full-run-*.log"):
        if old.stat().st_mtime < time.time() - KEEP_SECONDS:
            old.unlink(missing_ok=True)
    handler = configure_handler(logging.FileHandler(RUN_LOG, mode="w"))
    _state["handler"] = handler
    ensure_capture()


def ensure_capture() -> None:
    """Again before each test: a test (or `cloudd serve` run in-process) may have reset logging."""
    root = logging.getLogger()
    handler = _state.get("handler")
    if handler is not None and handler not in root.handlers:
        root.addHandler(handler)
    if root.level != logging.DEBUG:
        root.setLevel(logging.DEBUG)


def _files_to_scan(basetemp: Path | None) -> list[Path]:
    files = [RUN_LOG]
    if basetemp is not None and basetemp.is_dir():
        for pattern in ("*.log", "*.out"):
            files += [p for p in basetemp.rglob(pattern) if p.is_file()]
    return files


def _subprocess_passwords(basetemp: Path | None) -> None:
    if basetemp is not None and basetemp.is_dir():
        for path in basetemp.rglob("admin-password"):
            record(path.read_text().strip())


def grep_leaks(files: list[Path], secrets_made: set[str]) -> list[str]:
    """'file: secret prefix...' for each of `secrets_made` (or a private key header) in `files`."""
    patterns = ARTIFACTS / f"secrets-{os.getpid()}.txt"
    ARTIFACTS.mkdir(exist_ok=True)
    fd = os.open(patterns, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write("".join(f"{s}\n" for s in sorted(secrets_made) if "\n" not in s) + PEM_HEADER + "\n")
    try:
        found = subprocess.run(["grep", "-F", "-o", "-H", "-f", str(patterns), *map(str, files)],
                               capture_output=True, text=True, check=False, timeout=600)
    finally:
        patterns.unlink()
    if found.returncode > 1:
        return [f"grep failed: {found.stderr.strip()}"]
    return sorted({line.rpartition(":")[0] + ": " + line.rpartition(":")[2][:10] + "..."
                   for line in found.stdout.splitlines()})


def find_leaks(basetemp: Path | None) -> list[str]:
    handler = _state.get("handler")
    if handler is not None:
        handler.flush()
    _subprocess_passwords(basetemp)
    return grep_leaks(_files_to_scan(basetemp), RECORDED)


def report(session: pytest.Session) -> None:
    try:
        basetemp: Path | None = session.config._tmp_path_factory.getbasetemp()  # type: ignore[attr-defined]
    except (AttributeError, OSError):
        basetemp = None
    leaks = find_leaks(basetemp)
    writer = session.config.pluginmanager.get_plugin("terminalreporter")
    summary = (f"log audit: {len(RECORDED)} secret(s) made by this run, none in its logs "
               f"({RUN_LOG.relative_to(ARTIFACTS.parent.parent)})")
    if leaks:
        summary = "log audit: SECRETS IN THE LOGS:\n  " + "\n  ".join(leaks[:20])
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    if writer is not None:
        writer.write_line("")
        writer.write_line(summary, red=bool(leaks))
