"""Logging set-up: text or JSON lines, with the request id of the current RPC or API call, and
secrets (passwords, tokens, EC2 secrets, private keys) redacted from every record."""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
import time

# Set by the API for each request and by RPC for each call, so one request can be followed
# from the API through the conductor to an agent and back.
request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "request_id", default=None
)


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get() or "-"
        return True


# A key that names a secret, then its value: `"password": "x"`, `X-Auth-Token: x`,
# `secret_key=x`, `'adminPass': 'x'`. The key may be quoted; the value ends at a quote,
# whitespace, comma, ampersand or brace.
_SECRET_KEYS = (r"[\w-]*(?:password|passwd|adminpass|secret|token|private_key|privatekey"
                r"|credential|signature|authorization)[\w-]*")
_KEYED_SECRET = re.compile(
    r"""(?P<key>["']?""" + _SECRET_KEYS + r"""["']?\s*[:=]\s*)(?P<quote>["']?)"""
    r"""(?P<value>(?:Bearer |AWS4?-HMAC-SHA256 |AWS )?[^"'\s,&{}\[\]]+)""",
    re.IGNORECASE,
)
_PEM_KEY = re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?-----END [A-Z0-9 ]*PRIVATE KEY-----"
                      r"|-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*", re.DOTALL)
_URL_PASSWORD = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://[^/\s:@]*:)[^/\s@]+@", re.IGNORECASE)
REDACTED = "***"
# Loggers whose DEBUG records print SQL parameters (EC2 secrets, hashes): positional values no
# pattern can recognise, so those records are dropped.
_PARAMETER_DUMPERS = frozenset({"aiosqlite"})
# Names whose values are not secrets although they match the pattern (ids, counts, kinds).
_NOT_SECRET_KEYS = ("token_ttl", "token_expiration", "token_id", "token_type", "credential_id")


def _redact_keyed(match: re.Match[str]) -> str:
    key = match.group("key").strip("\"' :=").lower()
    if key in _NOT_SECRET_KEYS:
        return match.group(0)
    return f"{match.group('key')}{match.group('quote')}{REDACTED}"


def redact(text: str) -> str:
    """`text` with passwords, tokens, EC2 secrets, signatures and private keys replaced."""
    text = _PEM_KEY.sub("[private key redacted]", text)
    text = _URL_PASSWORD.sub(lambda m: f"{m.group('scheme')}{REDACTED}@", text)
    return _KEYED_SECRET.sub(_redact_keyed, text)


class RedactingFilter(logging.Filter):
    """Rewrites each record's message (and traceback) without secrets, before any handler
    formats it: a secret never reaches a log file, whoever logged it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno <= logging.DEBUG and record.name in _PARAMETER_DUMPERS:
            return False
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message or record.args:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "request_id": getattr(record, "request_id", "-"),
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["traceback"] = self.formatException(record.exc_info)
        return json.dumps(entry)


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"


def configure_handler(handler: logging.Handler, fmt: str = "text") -> logging.Handler:
    """Our format, the request id and the redaction on `handler` (also for tests' handlers)."""
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    handler.addFilter(_RequestIdFilter())
    handler.addFilter(RedactingFilter())
    return handler


def setup_logging(level: str = "INFO", fmt: str = "text", log_file: str = "") -> None:
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file:
        handlers.append(logging.FileHandler(log_file))
    for handler in handlers:
        root.addHandler(configure_handler(handler, fmt))
    root.setLevel(level)
    # aiohttp's access log repeats what our middleware logs with the request id.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
