"""`--web.config.file`: the exporter-toolkit web configuration, as Go exporters read it.

TLS is served by gunicorn from these settings; basic auth, the request rate
limit and the extra headers wrap the WSGI app. What this Python stack cannot
honour (Go's cipher-suite and curve names, SAN pinning, `RequireAnyClientCert`)
is refused at start-up rather than silently ignored: a security setting that
quietly does nothing is worse than one that fails loudly.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import ssl
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import bcrypt

from multitarget_exporter import offload
from multitarget_exporter.config import ConfigError, parse_yaml, read_file
from multitarget_exporter.ratelimit import RateLimit, TokenBucket
from multitarget_exporter.validate import Fields, parse_duration

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

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
REALM = "multitarget_exporter"


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
    """Inline PEM written to a private file, since gunicorn reads certificates from files."""
    if not isinstance(text, str) or "-----BEGIN" not in text:
        problems.append(f"{where}: must be PEM text")
        return ""
    path = os.path.join(state_dir, name)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text)
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

    cert_file = pem_or_file("cert", "cert_file", "tls-cert.pem")
    key_file = pem_or_file("key", "key_file", "tls-key.pem")
    if not cert_file or not key_file:
        problems.append(
            f"{where}: needs a certificate (cert_file or cert) and a key (key_file or key)"
        )
    client_ca = pem_or_file("client_ca", "client_ca_file", "tls-client-ca.pem") or None
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


def gunicorn_tls_options(tls: TLSSettings | None) -> dict[str, Any]:
    """gunicorn settings that serve HTTPS as `tls` asks."""
    if tls is None:
        return {}

    def ssl_context(config: Any, default_ssl_context_factory: Any) -> ssl.SSLContext:
        context = default_ssl_context_factory()
        context.minimum_version = tls.min_version
        context.maximum_version = tls.max_version
        _contexts.append(context)
        return context

    options: dict[str, Any] = {
        "certfile": tls.cert_file,
        "keyfile": tls.key_file,
        "cert_reqs": tls.cert_reqs,
        "ssl_context": ssl_context,
    }
    if tls.client_ca_file:
        options["ca_certs"] = tls.client_ca_file
    return options


# The TLS contexts this process serves with, so a reload can renew them in place.
_contexts: list[ssl.SSLContext] = []


def refresh_tls(tls: TLSSettings) -> None:
    """Load `tls` into the contexts this process serves with: new connections get the
    new certificate (a rotation), versions and client verification."""
    for context in _contexts:
        context.load_cert_chain(tls.cert_file, tls.key_file)
        if tls.client_ca_file:
            context.load_verify_locations(cafile=tls.client_ca_file)
        context.verify_mode = ssl.VerifyMode(tls.cert_reqs)
        context.minimum_version = tls.min_version
        context.maximum_version = tls.max_version


class WebGuard:
    """Rate limit, basic auth and extra headers around the WSGI app."""

    def __init__(self, app: WSGIApplication, config: WebConfig) -> None:
        self.app = app
        self._digest_key = secrets.token_bytes(32)
        # A real hash to check unknown users against, so timing does not tell who exists.
        self._decoy = bcrypt.hashpw(secrets.token_bytes(16), bcrypt.gensalt(rounds=10))
        self.update(config)

    def update(self, config: WebConfig) -> None:
        """Put a new web configuration in force (a reload); TLS is `refresh_tls`'s job."""
        self.config = config
        # exporter-toolkit's limiter: one request per `interval`, `burst` saved up at most.
        self.bucket = (
            TokenBucket(
                RateLimit(config.rate_burst, config.rate_interval_seconds * config.rate_burst)
            )
            if config.rate_interval_seconds > 0
            else None
        )
        # Verified credentials, remembered as a keyed digest (never the password) so
        # bcrypt's deliberate cost is paid once per user and password, as the toolkit does.
        self._verified: set[bytes] = set()

    def _authorized(self, header: str) -> bool:
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic" or not encoded:
            return False
        try:
            user, separator, password = (
                base64.b64decode(encoded, validate=True).decode("utf-8").partition(":")
            )
        except (ValueError, UnicodeDecodeError):
            return False
        if not separator:
            return False
        digest = hmac.new(self._digest_key, f"{user}\0{password}".encode(), hashlib.sha256)
        key = digest.digest()
        if key in self._verified:  # keyed digests: lookup timing reveals nothing usable
            return True
        hashed = self.config.users.get(user)
        # bcrypt's cost is deliberate (tens to hundreds of milliseconds): off the loop.
        ok = offload.blocking(bcrypt.checkpw, password.encode(), hashed or self._decoy)
        if ok and hashed:
            self._verified.add(key)
            return True
        return False

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        extra = list(self.config.headers.items())

        def with_headers(status: str, headers: list[tuple[str, str]], *args: Any) -> Any:
            return start_response(status, [*headers, *extra], *args)

        if self.bucket is not None and not self.bucket.take():
            return _refuse(with_headers, "429 Too Many Requests", [])
        if self.config.users and not self._authorized(environ.get("HTTP_AUTHORIZATION", "")):
            challenge = [("WWW-Authenticate", f'Basic realm="{REALM}", charset="UTF-8"')]
            return _refuse(with_headers, "401 Unauthorized", challenge)
        return self.app(environ, with_headers)


def _refuse(start_response: Any, status: str, headers: list[tuple[str, str]]) -> list[bytes]:
    body = f"{status}\n".encode()
    start_response(
        status,
        [
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Content-Length", str(len(body))),
            *headers,
        ],
    )
    return [body]
