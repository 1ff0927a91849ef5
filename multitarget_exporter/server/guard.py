"""The web guard: rate limit, basic auth and extra headers around the WSGI app.

What the web configuration file says is read and checked in `config/web.py`;
this applies it to every request, and takes a reload without refilling the
rate limit's bucket or forgetting verified credentials.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import bcrypt

from multitarget_exporter.config.web import WebConfig
from multitarget_exporter.model.ratelimit import RateLimit, TokenBucket
from multitarget_exporter.runtime import offload

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

REALM = "multitarget_exporter"
# Password checks in flight at once, and waiting, per process; more are refused with 429.
_BCRYPT = offload.Lane(threads=2, waiting=64)


class WebGuard:
    """Rate limit, basic auth and extra headers around the WSGI app."""

    def __init__(self, app: WSGIApplication, config: WebConfig) -> None:
        self.app = app
        self._digest_key = secrets.token_bytes(32)
        # A real hash to check unknown users against, so timing does not tell who exists.
        self._decoy = bcrypt.hashpw(secrets.token_bytes(16), bcrypt.gensalt(rounds=10))
        self.update(config)

    def update(self, config: WebConfig) -> None:
        """Put a new web configuration in force (a reload); TLS is `TLSServing`'s job.

        What did not change is kept: the rate limit's bucket (a reload must not
        refill it) and the credentials verified so far."""
        old: WebConfig | None = getattr(self, "config", None)
        same_rate = old is not None and (old.rate_interval_seconds, old.rate_burst) == (
            config.rate_interval_seconds,
            config.rate_burst,
        )
        if not same_rate:
            # exporter-toolkit's limiter: one request per `interval`, `burst` saved up at most.
            self.bucket = (
                TokenBucket(
                    RateLimit(config.rate_burst, config.rate_interval_seconds * config.rate_burst)
                )
                if config.rate_interval_seconds > 0
                else None
            )
        if old is None or old.users != config.users:
            # Verified credentials, remembered as a keyed digest (never the password) so
            # bcrypt's deliberate cost is paid once per user and password, as the toolkit does.
            self._verified: set[bytes] = set()
        self.config = config

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
        # bcrypt's cost is deliberate (tens to hundreds of milliseconds): off the loop, on
        # threads of its own (Busy when a flood of guesses fills them).
        ok = _BCRYPT.run(bcrypt.checkpw, password.encode(), hashed or self._decoy)
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
        try:
            authorized = not self.config.users or self._authorized(
                environ.get("HTTP_AUTHORIZATION", "")
            )
        except offload.Busy:
            return _refuse(with_headers, "429 Too Many Requests", [("Retry-After", "1")])
        if not authorized:
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
