"""Run the fake upstream in the foreground until interrupted.

Prints one line, `listening on http://HOST:PORT`, once it accepts connections
(with `--port 0` the system picks a free port, and this line tells which).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from fake_upstream.server import (
    DEFAULT_API_KEY,
    FAULTS,
    MET_EXPIRES_SECONDS,
    MET_UPDATE_SECONDS,
    FaultRule,
    start,
    stop,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m fake_upstream",
        description="A fake OpenWeatherMap, Open-Meteo and MET Norway on loopback, with faults;"
        " also the national services of warnings and station observations: the US NWS"
        " (api.weather.gov), MET Norway's MetAlerts and Bright Sky (DWD).",
        epilog="Control API under /_fake/: requests, reset, faults, met, stations, alerts"
        " (see fake_upstream/server.py; warning scenarios in alerts.py, stations in nws.py"
        " and bright_sky.py).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (loopback)")
    parser.add_argument("--port", type=int, default=8080, help="0 picks a free port")
    parser.add_argument("--api-key", default=DEFAULT_API_KEY, help="the appid it accepts")
    parser.add_argument(
        "--hang-seconds", type=float, default=60.0, help="how long a `hang` fault holds a request"
    )
    parser.add_argument(
        "--met-expires-seconds",
        type=float,
        default=MET_EXPIRES_SECONDS,
        help="MET Norway: Expires is this long after each answer",
    )
    parser.add_argument(
        "--met-update-seconds",
        type=float,
        default=MET_UPDATE_SECONDS,
        help="MET Norway: Last-Modified moves on this often",
    )
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="FAULT[=MATCH]",
        help=f"inject a fault from the start; one of: {', '.join(FAULTS)}",
    )
    args = parser.parse_args(argv)

    if args.met_expires_seconds < 0 or args.met_update_seconds <= 0:
        parser.error("--met-expires-seconds must be >= 0, --met-update-seconds > 0")
    server = start(
        args.host,
        args.port,
        args.api_key,
        args.hang_seconds,
        args.met_expires_seconds,
        args.met_update_seconds,
    )
    for spec in args.fault:
        fault, _, match = spec.partition("=")
        if fault not in FAULTS:
            parser.error(f"unknown fault {fault!r}; one of: {', '.join(FAULTS)}")
        server.state.rules.append(FaultRule(fault, match or "*"))
    print(f"listening on {server.url}", flush=True)

    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    done.wait()
    stop(server)
    return 0


if __name__ == "__main__":
    sys.exit(main())
