"""`--web.config.file`: the exporter-toolkit web configuration, as Go exporters read it.

Read and checked here; served by `server/tls.py` (the TLS context gunicorn
uses) and `server/guard.py` (basic auth, the request rate limit and the extra
headers around the WSGI app). What this Python stack cannot
honour (Go's cipher-suite and curve names, SAN pinning, `RequireAnyClientCert`)
is refused at start-up rather than silently ignored: a security setting that
quietly does nothing is worse than one that fails loudly.
"""

from __future__ import annotations

import hashlib
import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from multitarget_exporter.config.fields import Fields, parse_duration
from multitarget_exporter.config.files import ConfigError, parse_yaml, read_file, write_private_file

_TOP_KEYS = frozenset({"tls_server_config", "http_server_config", "basic_auth_users", "rate_limit"})
_TLS_KEYS = frozenset(
    {
        "cert",
        "key",
        "client_ca",
        "cert_file",
        "key_file",
        "client_auth_type",
        "client_ca_file",
        "client_allowed_sans",
        "min_version",
        "max_version",
        "cipher_suites",
        "prefer_server_cipher_suites",
        "curve_preferences",
    }
)
_HTTP_KEYS = frozenset({"http2", "headers"})
_HEADERS = {
    "Content-Security-Policy": None,
    "X-Frame-Options": ("deny", "sameorigin"),
    "X-Content-Type-Options": ("nosniff",),
    "X-XSS-Protection": None,
    "Strict-Transport-Security": None,
}
TLS_VERSIONS = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}
# exporter-toolkit's client_auth_type values that Python's ssl module can honour.
CLIENT_AUTH = {
    "NoClientCert": ssl.CERT_NONE,
    "RequestClientCert": ssl.CERT_NONE,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}


@dataclass(frozen=True, slots=True)
class TLSSettings:
    """Files and policy for gunicorn's TLS."""

    cert_file: str
    key_file: str
    client_ca_file: str | None = None
    cert_reqs: int = ssl.CERT_NONE
    min_version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2
    max_version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_3


@dataclass(frozen=True, slots=True)
class WebConfig:
    """The whole web configuration."""

    tls: TLSSettings | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    users: Mapping[str, bytes] = field(default_factory=dict, repr=False)
    rate_interval_seconds: float = 0.0
    rate_burst: int = 0


def _mapping(value: Any, where: str, known: frozenset[str], problems: list[str]) -> Mapping:
    return Fields.mapping(value, where, known, problems).raw


def _inline_pem(text: Any, name: str, state_dir: str, where: str, problems: list[str]) -> str:
    """Inline PEM written to a private file, since certificates load from files. Named by
    its content, and never rewritten: reading a file that is refused later, or that
    another worker reads at the same time, changes no file in use."""
    if not isinstance(text, str) or "-----BEGIN" not in text:
        problems.append(f"{where}: must be PEM text")
        return ""
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    path = os.path.join(state_dir, f"{name}-{digest}.pem")
    if not os.path.exists(path):
        write_private_file(path, text)
    return path


def _readable(path: Any, where: str, problems: list[str]) -> str:
    if not isinstance(path, str) or not path:
        problems.append(f"{where}: must be a file name")
        return ""
    if not os.access(path, os.R_OK):
        problems.append(f"{where}: cannot read {path!r}")
    return path


def _tls(raw: Any, state_dir: str, problems: list[str]) -> TLSSettings | None:
    where = "tls_server_config"
    tls = _mapping(raw, where, _TLS_KEYS, problems)
    if not tls:
        return None
    for key in ("cipher_suites", "curve_preferences", "client_allowed_sans"):
        if tls.get(key):
            problems.append(f"{where}.{key}: not supported by this exporter; remove it")
    if "prefer_server_cipher_suites" in tls and not isinstance(
        tls["prefer_server_cipher_suites"], bool
    ):
        problems.append(f"{where}.prefer_server_cipher_suites: must be true or false")

    def pem_or_file(inline: str, file_key: str, name: str) -> str:
        if tls.get(inline) and tls.get(file_key):
            problems.append(f"{where}: set {inline} or {file_key}, not both")
        if tls.get(inline):
            return _inline_pem(tls[inline], name, state_dir, f"{where}.{inline}", problems)
        if tls.get(file_key):
            return _readable(tls[file_key], f"{where}.{file_key}", problems)
        return ""

    cert_file = pem_or_file("cert", "cert_file", "tls-cert")
    key_file = pem_or_file("key", "key_file", "tls-key")
    if not cert_file or not key_file:
        problems.append(
            f"{where}: needs a certificate (cert_file or cert) and a key (key_file or key)"
        )
    client_ca = pem_or_file("client_ca", "client_ca_file", "tls-client-ca") or None
    auth_type = tls.get("client_auth_type", "NoClientCert")
    if auth_type not in CLIENT_AUTH:
        problems.append(
            f"{where}.client_auth_type: {auth_type!r} is not one of {', '.join(CLIENT_AUTH)}"
        )
        auth_type = "NoClientCert"
    if CLIENT_AUTH[auth_type] != ssl.CERT_NONE and not client_ca:
        problems.append(f"{where}.client_auth_type: {auth_type} needs client_ca_file")
    versions = {}
    for key, default in (("min_version", "TLS12"), ("max_version", "TLS13")):
        name = tls.get(key, default)
        if name not in TLS_VERSIONS:
            problems.append(f"{where}.{key}: {name!r} is not one of {', '.join(TLS_VERSIONS)}")
            name = default
        versions[key] = TLS_VERSIONS[name]
    if versions["min_version"] > versions["max_version"]:
        problems.append(f"{where}: min_version is above max_version")
    return TLSSettings(
        cert_file,
        key_file,
        client_ca,
        CLIENT_AUTH[auth_type],
        versions["min_version"],
        versions["max_version"],
    )


def _headers(raw: Any, problems: list[str]) -> dict[str, str]:
    http = _mapping(raw, "http_server_config", _HTTP_KEYS, problems)
    if "http2" in http and not isinstance(http["http2"], bool):
        problems.append("http_server_config.http2: must be true or false")
    headers = http.get("headers") or {}
    if not isinstance(headers, dict):
        problems.append("http_server_config.headers: must be a mapping")
        return {}
    chosen = {}
    for name, value in headers.items():
        where = f"http_server_config.headers.{name}"
        if name not in _HEADERS:
            problems.append(f"{where}: not one of {', '.join(_HEADERS)}")
        elif not isinstance(value, str):
            problems.append(f"{where}: must be a string")
        elif (allowed := _HEADERS[name]) and value.lower() not in allowed:
            problems.append(f"{where}: {value!r} is not one of {', '.join(allowed)}")
        elif value and "\n" not in value and "\r" not in value:
            chosen[name] = value
    return chosen


def _users(raw: Any, problems: list[str]) -> dict[str, bytes]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        problems.append("basic_auth_users: must be a mapping of user names to bcrypt hashes")
        return {}
    users = {}
    for user, hashed in raw.items():
        if not isinstance(hashed, str) or not hashed.startswith(("$2a$", "$2b$", "$2y$")):
            problems.append(f"basic_auth_users.{user}: must be a bcrypt hash ($2y$...)")
            continue
        users[str(user)] = hashed.encode()
    return users


def _rate(raw: Any, problems: list[str]) -> tuple[float, int]:
    rate = _mapping(raw, "rate_limit", frozenset({"interval", "burst"}), problems)
    if not rate:
        return 0.0, 0
    try:
        interval = parse_duration(str(rate.get("interval", "0")))
    except ValueError as error:
        problems.append(f"rate_limit.interval: {error}")
        return 0.0, 0
    burst = rate.get("burst", 0)
    if isinstance(burst, bool) or not isinstance(burst, int) or burst < 0:
        problems.append("rate_limit.burst: must be a whole number, 0 or more")
        return 0.0, 0
    if interval > 0 and burst < 1:
        problems.append("rate_limit.burst: must be at least 1 when interval is set")
    return interval, burst


def load_web_config(path: str, state_dir: str) -> WebConfig:
    """Read and validate a web configuration file, or raise ConfigError naming every problem."""
    return web_config_from_text(read_file(path), path, state_dir)


def web_config_from_text(text: bytes, path: str, state_dir: str) -> WebConfig:
    """The web configuration in `text`, as read from `path`; ConfigError naming every problem."""
    document = parse_yaml(text, path)
    if document is not None and not isinstance(document, dict):
        raise ConfigError(["web config: must be a mapping"])
    problems: list[str] = []
    document = _mapping(document, "web config", _TOP_KEYS, problems)
    interval, burst = _rate(document.get("rate_limit"), problems)
    config = WebConfig(
        tls=_tls(document.get("tls_server_config"), state_dir, problems),
        headers=_headers(document.get("http_server_config"), problems),
        users=_users(document.get("basic_auth_users"), problems),
        rate_interval_seconds=interval,
        rate_burst=burst,
    )
    if problems:
        raise ConfigError([f"web config: {p}" for p in problems])
    return config
