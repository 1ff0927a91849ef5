"""The TLS this process serves with: a context built from the web configuration, swapped on reload.

gunicorn serves TLS from these settings; what the web configuration file says
is read and checked in `config/web.py`.
"""

from __future__ import annotations

import ssl
from typing import Any

from multitarget_exporter.config.web import TLSSettings
from multitarget_exporter.runtime import offload


def tls_context(tls: TLSSettings) -> ssl.SSLContext:
    """A server context for `tls`; OSError (ssl.SSLError among them) if its files do not
    load, a certificate and key that do not match included."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=tls.client_ca_file)
    context.load_cert_chain(tls.cert_file, tls.key_file)
    context.verify_mode = ssl.VerifyMode(tls.cert_reqs)
    context.minimum_version = tls.min_version
    context.maximum_version = tls.max_version
    return context


class TLSServing:
    """The TLS context this process serves with, swapped whole by a reload.

    gunicorn takes this in place of a context (its `ssl_context` hook): gevent's
    server and gthread's connections call `wrap_socket` here for each new
    connection, so they always get the current context. Under gevent the TLS
    handshake is bounded too, as a request head is (`gunicorn_config.KEEPALIVE_SECONDS`):
    a client that stalls it loses the connection, quietly.
    """

    def __init__(self, tls: TLSSettings, handshake_seconds: float) -> None:
        self.settings = tls
        self._context = tls_context(tls)
        self._handshake_seconds = handshake_seconds

    def install(self, tls: TLSSettings, context: ssl.SSLContext) -> None:
        self.settings, self._context = tls, context

    def wrap_socket(self, sock: Any, server_side: bool = True, **options: Any) -> Any:
        context = self._context
        if not offload.gevent_patched():
            return context.wrap_socket(sock, server_side=server_side, **options)
        import gevent

        options["do_handshake_on_connect"] = False
        wrapped = context.wrap_socket(sock, server_side=server_side, **options)
        try:
            with gevent.Timeout(self._handshake_seconds):
                wrapped.do_handshake()
        except (gevent.Timeout, OSError):
            wrapped.close()
            raise gevent.GreenletExit from None  # ends the connection's greenlet, quietly
        return wrapped

    def gunicorn_options(self) -> dict[str, Any]:
        """gunicorn settings that serve HTTPS through this."""
        tls = self.settings
        options: dict[str, Any] = {
            "certfile": tls.cert_file,
            "keyfile": tls.key_file,
            "cert_reqs": tls.cert_reqs,
            "ssl_context": lambda config, default_factory: self,
        }
        if tls.client_ca_file:
            options["ca_certs"] = tls.client_ca_file
        return options
