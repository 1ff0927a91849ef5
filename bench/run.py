"""The benchmark: ours against blackbox_exporter and the serving stack's ceiling.

    .venv/bin/python bench/run.py                 # about 10 minutes; writes docs/benchmarks.md
    .venv/bin/python bench/run.py --quick         # about 3 minutes, fewer and shorter rounds

Needs Debian's `wrk` and `prometheus-blackbox-exporter` (and `redis-server`
for the shared-cache setting). Everything listens on loopback ports the
kernel picks. In one run, on one machine, it starts the fake upstream, then
for each setting (the defaults: one worker, in-memory cache; and one worker
per core with the Redis cache) our exporter under its embedded gunicorn
twice, with gevent workers (the default) and with gthread workers (128
threads), the ceiling (a trivial WSGI app on the very same gunicorn settings,
`multitarget_exporter.server.gunicorn_config.settings`) for each worker class, and
blackbox_exporter with an `http` module fetching the same fake upstream URL
our exporter fetches. wrk drives each in turn, at each concurrency, for
several rounds, the order rotating every round; the table holds each
figure's median over the rounds. Then it holds 1,000 connections that
trickle a request head and never finish it, and times `/-/healthy` and a
probe on fresh connections meanwhile (ours under gevent and gthread, and
blackbox_exporter); counts upstream calls over a realistic target mix; and
measures resident memory after 100,000 probes over 10,000 places.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import os
import platform
import re
import resource
import selectors
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

import redis
import requests
from soak import tree_rss_bytes  # bench/ is the script's own directory, so on sys.path

from multitarget_exporter.server.gunicorn_config import KEEPALIVE_SECONDS, WORKER_CONNECTIONS

ROOT = Path(__file__).resolve().parent.parent
KEY = "bench-key-000000"
WORKER_CLASSES = ("gevent", "gthread")
GTHREAD_THREADS = 128
# A point whose official warnings the fake's NWS serves (a severe one in effect).
WARNED_POINT = "39.7392,-104.9903"
WARNED = "hit at a warned point"
# A module with a daily_budget (large enough never to refuse): cache hits pass no gate.
BUDGETED = "hit, daily_budget"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_up(url: str, process: subprocess.Popen, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{process.args[0]} exited with {process.returncode}")
        try:
            if requests.get(url, timeout=2).status_code < 500:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{url} did not come up")


class Stack:
    """The processes of one benchmark run, stopped together."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.processes: list[subprocess.Popen] = []

    def start(self, name: str, command: list[str], **options) -> subprocess.Popen:
        path = self.workdir / f"{name}.log"
        number = 1
        while path.exists():  # every process keeps a log of its own
            number += 1
            path = self.workdir / f"{name}.{number}.log"
        log = open(path, "w")  # noqa: SIM115 - the process holds it
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, **options)
        self.processes.append(process)
        return process

    def stop(self, process: subprocess.Popen) -> None:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(40)
            except subprocess.TimeoutExpired:
                process.kill()
        self.processes.remove(process)

    def stop_all(self) -> None:
        for process in list(self.processes):
            self.stop(process)


def start_fake(stack: Stack) -> str:
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "fake_upstream",
        "--port",
        str(port),
        "--api-key",
        KEY,
    ]
    process = stack.start("fake", command, cwd=ROOT)  # the fake lives in the checkout
    url = f"http://127.0.0.1:{port}"
    wait_until_up(f"{url}/_fake/requests", process)
    return url


def start_ours(
    stack: Stack,
    fake: str,
    workers: int,
    cache: str = "memory",
    redis_url: str = "",
    worker_class: str = "gevent",
) -> tuple[str, subprocess.Popen]:
    """Our exporter through its CLI; gthread with 128 threads a worker, gevent its defaults."""
    config = stack.workdir / f"ours-{workers}-{cache}.yml"
    owm = f"provider: openweathermap, api_key: {KEY}, base_url: '{fake}', timeout: 5s"
    urls = f"{{nws: '{fake}', dwd: '{fake}', met_norway: '{fake}'}}"
    warned = f"warnings: [nws, dwd, met_norway], warnings_urls: {urls}, contact: bench@example.com"
    text = (
        f"modules:\n  default: {{{owm}}}\n  nocache: {{{owm}, cache_ttl: 0}}\n"
        f"  warned: {{{owm}, {warned}}}\n"
        f"  budgeted: {{{owm}, daily_budget: 1000000}}\n"
    )
    if cache == "redis":
        text += f"cache: {{backend: redis, url: '{redis_url}'}}\n"
    config.write_text(text)
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "multitarget_exporter",
        "--config.file",
        str(config),
        "--web.listen-address",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--worker-class",
        worker_class,
    ]
    if worker_class == "gthread":
        command += ["--threads", str(GTHREAD_THREADS)]
    process = stack.start(f"ours-{worker_class}-{workers}-{cache}", command)
    url = f"http://127.0.0.1:{port}"
    wait_until_up(f"{url}/-/ready", process)
    return url, process


def start_ceiling(stack: Stack, workers: int, worker_class: str) -> tuple[str, subprocess.Popen]:
    """The trivial app on `gunicorn_config.settings` for this worker class (ceiling.py's
    own launcher)."""
    port = free_port()
    command = [
        sys.executable,
        "ceiling.py",
        "--bind",
        f"127.0.0.1:{port}",
        "--worker-class",
        worker_class,
        "--workers",
        str(workers),
        "--threads",
        str(GTHREAD_THREADS),
    ]
    process = stack.start(f"ceiling-{worker_class}-{workers}", command, cwd=ROOT / "bench")
    url = f"http://127.0.0.1:{port}"
    wait_until_up(f"{url}/", process)
    return url, process


def start_blackbox(stack: Stack) -> str:
    config = stack.workdir / "blackbox.yml"
    config.write_text(
        "modules:\n  http_2xx:\n    prober: http\n    timeout: 5s\n"
        "    http:\n      preferred_ip_protocol: ip4\n      valid_status_codes: [200]\n"
    )
    port = free_port()
    command = [
        "prometheus-blackbox-exporter",
        f"--config.file={config}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--log.level=warn",
    ]
    process = stack.start("blackbox", command)
    url = f"http://127.0.0.1:{port}"
    wait_until_up(f"{url}/-/healthy", process)
    return url


_LATENCY = re.compile(r"^\s+(50|99)(?:\.0+)?%\s+([\d.]+)(us|ms|s)\s*$", re.M)
_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def wrk(url: str, connections: int, seconds: float, script: Path | None = None) -> dict:
    """Requests a second and p50/p99 latency in ms, from one wrk run."""
    threads = max(1, min(connections, os.cpu_count() or 1))
    command = [
        "wrk",
        "-t",
        str(threads),
        "-c",
        str(connections),
        "-d",
        f"{seconds}s",
        "--latency",
        "--timeout",
        "10s",
    ]
    if script:
        command += ["-s", str(script)]
    output = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output)[1])
    latency = {p: float(v) * _UNITS[u] for p, v, u in _LATENCY.findall(output)}
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    failed = re.search(r"Socket errors: (.*)", output)
    return {
        "rate": rate,
        "p50": latency.get("50"),
        "p99": latency.get("99"),
        "non2xx": int(errors[1]) if errors else 0,
        # connect, read, write and timeout errors, added up
        "socket_errors": sum(int(n) for n in re.findall(r"\d+", failed[1])) if failed else 0,
    }


def probe_url(base: str, target: str, module: str = "default") -> str:
    return f"{base}/probe?target={quote(target, safe='')}&module={module}"


def targets_script(
    workdir: Path, name: str, targets: list[str], per_thread: int | None, module: str = "default"
) -> Path:
    """A wrk script cycling through `targets`; each thread stops after `per_thread` answers."""
    paths = ",\n".join(
        json.dumps(f"/probe?target={quote(t, safe='')}&module={module}") for t in targets
    )
    stop = (
        f"response = function() answered = answered + 1\n"
        f"  if answered >= {per_thread} then wrk.thread:stop() end end\n"
        if per_thread
        else ""
    )
    script = workdir / f"{name}.lua"
    script.write_text(
        f"local paths = {{\n{paths}\n}}\nlocal n = 0\nanswered = 0\n"
        "setup = function(thread) thread:set('offset', math.random(#paths)) end\n"
        "init = function() n = tonumber(wrk.thread:get('offset')) or 0 end\n"
        "request = function() n = n % #paths + 1\n"
        "  return wrk.format('GET', paths[n]) end\n" + stop
    )
    return script


def run_counted(ours: str, script: Path, total: int, connections: int = 8) -> float:
    """Drive `ours` with wrk until it has answered `total` more probes; the seconds taken.

    wrk knows durations, not counts, and sleeps out its whole duration even
    when every thread has stopped, so the exporter's own probe counter is
    watched and wrk interrupted (it prints its summary then) once it is reached.
    """
    target = probes_answered(ours) + total
    command = ["wrk", "-t", "2", "-c", str(connections), "-d", "3600s", "-s", str(script), ours]
    begun = time.monotonic()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while probes_answered(ours) < target:
            if process.poll() is not None:
                raise SystemExit(f"wrk exited early with {process.returncode}")
            if time.monotonic() - begun > 1800:
                raise SystemExit("the counted run took over 30 minutes")
            time.sleep(0.25)
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(30)
    return time.monotonic() - begun


def fake_calls(fake: str) -> int:
    return (
        requests.get(f"{fake}/_fake/requests", timeout=5)
        .json()["by_path"]
        .get("/data/2.5/weather", 0)
    )


def service_name(kind: str, worker_class: str = "", path: str = "") -> str:
    if kind == "blackbox":
        return "blackbox_exporter"
    if kind == "ceiling":
        return f"ceiling ({worker_class})"
    return f"ours ({worker_class}), cache {path}"


def measure_throughput(stack, fake, blackbox, workers, args, cache, redis_url) -> dict:
    """Ours under each worker class (hits and misses), their ceilings and blackbox_exporter,
    taking turns; each figure the median over the rounds."""
    weather = f"{fake}/data/2.5/weather?q=London,GB&units=metric&lang=en&appid={KEY}"
    urls = {}
    started = []
    for worker_class in WORKER_CLASSES:
        ours, process = start_ours(stack, fake, workers, cache, redis_url, worker_class)
        started.append(process)
        urls[service_name("ours", worker_class, "hit")] = probe_url(ours, "London,GB")
        urls[service_name("ours", worker_class, "miss")] = probe_url(ours, "London,GB", "nocache")
        if worker_class == "gevent":  # a point the fake's NWS warns for, with and without
            urls[service_name("ours", worker_class, WARNED)] = probe_url(ours, WARNED_POINT)
            urls[service_name("ours", worker_class, f"{WARNED}, warnings")] = probe_url(
                ours, WARNED_POINT, "warned"
            )
            urls[service_name("ours", worker_class, BUDGETED)] = probe_url(
                ours, "London,GB", "budgeted"
            )
    urls[service_name("blackbox")] = (
        f"{blackbox}/probe?module=http_2xx&target={quote(weather, safe='')}"
    )
    for worker_class in WORKER_CLASSES:
        ceiling, process = start_ceiling(stack, workers, worker_class)
        started.append(process)
        urls[service_name("ceiling", worker_class)] = f"{ceiling}/"
    for url in urls.values():  # warm every worker's cache and pools
        wrk(url, 8, 1)
    figures: dict = {}
    names = list(urls)
    for round_index in range(args.rounds):
        for connections in args.connections:
            order = names[round_index % len(names) :] + names[: round_index % len(names)]
            for name in order:
                result = wrk(urls[name], connections, args.seconds)
                figures.setdefault((name, connections), []).append(result)
    for process in started:
        stack.stop(process)
    summary = {}
    for (name, connections), runs in figures.items():
        summary[(name, connections)] = {
            "rate": statistics.median(r["rate"] for r in runs),
            "p50": statistics.median(r["p50"] for r in runs),
            "p99": statistics.median(r["p99"] for r in runs),
            "non2xx": sum(r["non2xx"] for r in runs),
            "socket_errors": sum(r["socket_errors"] for r in runs),
        }
    return summary


TRICKLE_HEAD = b"GET /probe?target=London,GB HTTP/1.1\r\nHost: x\r\n"
TRICKLE_LINE = b"X-a: b\r\n"


class _Connection:
    """One non-blocking socket of the slow-client run: a trickler or a timed request."""

    __slots__ = ("buffer", "name", "opened", "ready", "slot", "sock")

    def __init__(self, address: tuple[str, int], name: str, slot: int = -1) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setblocking(False)
        self.name = name  # "" for a trickler, else the timed request's name
        self.slot = slot
        self.opened = time.monotonic()
        self.buffer = b""
        self.ready = False  # connected and the first bytes sent
        code = self.sock.connect_ex(address)
        if code not in (0, errno.EINPROGRESS):
            self.sock.close()
            raise OSError(code, os.strerror(code))


def _answer_complete(buffer: bytes) -> bool:
    head, found, body = buffer.partition(b"\r\n\r\n")
    if not found:
        return False
    length = re.search(rb"(?im)^content-length:\s*(\d+)\s*$", head)
    return bool(length) and len(body) >= int(length[1])


def slow_clients(address: tuple[str, int], requests_: dict[str, str], args) -> dict:
    """Hold `args.slow_clients` connections that trickle a request head, one header line a
    second, never finishing it, and time each of `requests_` (name: path) on fresh
    connections meanwhile: `args.slow_samples` times, `args.slow_interval` s apart, each
    given `args.slow_timeout` s. One thread, one selector, raw sockets.

    A trickler the server drops is opened again at the next second, so the load stays
    at its size; the run lasts `args.slow_seconds`, or until the last timed request
    answers or times out if that is later.
    """
    selector = selectors.DefaultSelector()
    slots: list[_Connection | None] = [None] * args.slow_clients
    timed: list[_Connection] = []
    results: dict[str, list[dict]] = {name: [] for name in requests_}
    drops: list[float] = []  # how long each dropped trickler had been held, s
    answered_tricklers: list[bytes] = []  # the first line of any answer a trickler got
    refused = 0
    begun = time.monotonic()
    first_sample = begun + args.slow_warmup
    schedule = [
        (first_sample + i * args.slow_interval, name)
        for i in range(args.slow_samples)
        for name in requests_
    ]
    last_sample = schedule[-1][0]
    hard_stop = last_sample + args.slow_timeout + 1
    held_at_first_sample = None
    next_tick = begun

    def open_trickler(slot: int) -> None:
        nonlocal refused
        try:
            connection = _Connection(address, "", slot)
        except OSError:
            refused += 1
            return
        slots[slot] = connection
        selector.register(connection.sock, selectors.EVENT_WRITE, connection)

    def close(connection: _Connection) -> None:
        with contextlib.suppress(KeyError, ValueError):
            selector.unregister(connection.sock)
        connection.sock.close()
        if not connection.name and slots[connection.slot] is connection:
            slots[connection.slot] = None

    def finish(connection: _Connection, outcome: str) -> None:
        status = connection.buffer.split(b"\r\n", 1)[0].decode("latin-1", "replace")
        results[connection.name].append(
            {
                "seconds": time.monotonic() - connection.opened,
                "outcome": outcome,
                "status": status.split(" ")[1] if status.count(" ") >= 1 else "",
            }
        )
        timed.remove(connection)
        close(connection)

    try:
        while True:
            now = time.monotonic()
            if now >= next_tick:  # a header line from every trickler; reopen the dropped
                for slot, connection in enumerate(slots):
                    if connection is None:
                        open_trickler(slot)
                    elif connection.ready:
                        try:
                            connection.sock.send(TRICKLE_LINE)
                        except BlockingIOError:
                            pass
                        except OSError:
                            drops.append(now - connection.opened)
                            close(connection)
                next_tick += 1.0
            while schedule and schedule[0][0] <= now:
                _, name = schedule.pop(0)
                if held_at_first_sample is None:
                    held_at_first_sample = sum(1 for c in slots if c is not None and c.ready)
                try:
                    connection = _Connection(address, name)
                except OSError as error:
                    results[name].append({"seconds": 0.0, "outcome": f"refused ({error})"})
                    continue
                timed.append(connection)
                selector.register(connection.sock, selectors.EVENT_WRITE, connection)
            for connection in list(timed):
                if now - connection.opened > args.slow_timeout:
                    finish(connection, "timeout")
            if not schedule and not timed and now - begun >= args.slow_seconds:
                break
            if now >= hard_stop:
                for connection in list(timed):
                    finish(connection, "timeout")
                break
            wake = min(
                [next_tick, hard_stop]
                + ([schedule[0][0]] if schedule else [])
                + [c.opened + args.slow_timeout for c in timed]
            )
            for key, events in selector.select(max(0.0, wake - time.monotonic())):
                connection = key.data
                if events & selectors.EVENT_WRITE:
                    failed = connection.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    if failed:
                        if connection.name:
                            finish(connection, f"connect failed ({os.strerror(failed)})")
                        else:
                            refused += 1
                            close(connection)
                        continue
                    if connection.name:
                        request = (
                            f"GET {requests_[connection.name]} HTTP/1.1\r\n"
                            "Host: x\r\nConnection: close\r\n\r\n"
                        ).encode()
                    else:
                        request = TRICKLE_HEAD
                    try:
                        connection.sock.send(request)  # a few dozen bytes: they fit
                    except OSError as error:
                        if connection.name:
                            finish(connection, f"send failed ({error})")
                        else:
                            close(connection)
                        continue
                    connection.ready = True
                    selector.modify(connection.sock, selectors.EVENT_READ, connection)
                    continue
                try:
                    data = connection.sock.recv(65536)
                except BlockingIOError:
                    continue
                except OSError:
                    data = None
                if connection.name:
                    if data:
                        connection.buffer += data
                        if _answer_complete(connection.buffer):
                            finish(connection, "answered")
                    elif data is None:
                        finish(connection, "reset")
                    else:
                        finish(connection, "answered" if connection.buffer else "closed")
                else:  # a trickler answered or dropped by the server
                    if data:
                        answered_tricklers.append(data.split(b"\r\n", 1)[0])
                    drops.append(time.monotonic() - connection.opened)
                    close(connection)
    finally:
        for connection in [*timed, *(c for c in slots if c is not None)]:
            connection.sock.close()
        selector.close()
    return {
        "results": results,
        "held_at_first_sample": held_at_first_sample or 0,
        "drops": len(drops),
        "held_before_drop_s": round(statistics.median(drops), 1) if drops else None,
        "trickler_answers": sorted({a.decode("latin-1") for a in answered_tricklers}),
        "refused": refused,
        "seconds": round(time.monotonic() - begun, 1),
    }


def measure_slow_clients(stack, fake, blackbox, args) -> dict:
    """The slow-client run against ours (gevent, then gthread, both at the defaults) and
    blackbox_exporter."""
    weather = f"{fake}/data/2.5/weather?q=London,GB&units=metric&lang=en&appid={KEY}"
    report = {}
    for worker_class in WORKER_CLASSES:
        ours, process = start_ours(stack, fake, 1, worker_class=worker_class)
        probe = "/probe?target=London,GB"
        requests.get(f"{ours}{probe}", timeout=10).raise_for_status()  # cached from now on
        print(f"  ours ({worker_class})", file=sys.stderr, flush=True)
        report[f"ours ({worker_class})"] = slow_clients(
            ("127.0.0.1", int(ours.rsplit(":", 1)[1])),
            {"/-/healthy": "/-/healthy", "probe": probe},
            args,
        )
        stack.stop(process)
    print("  blackbox_exporter", file=sys.stderr, flush=True)
    report["blackbox_exporter"] = slow_clients(
        ("127.0.0.1", int(blackbox.rsplit(":", 1)[1])),
        {
            "/-/healthy": "/-/healthy",
            "probe": f"/probe?module=http_2xx&target={quote(weather, safe='')}",
        },
        args,
    )
    return report


def realistic_mix() -> list[str]:
    """50 targets in every form the spec allows, as a target list would hold them."""
    names = [
        "London,GB",
        "Zocca,IT",
        "Springfield,IL,US",
        "Springfield,MO,US",
        "Mountain View,CA,US",
        "São Paulo,BR",
        "Zurich,CH",
        "Beijing,CN",
        "St. John's,CA",
        "Berlin,DE",
        "Longyearbyen,SJ",
        "Tokyo,JP",
        "Sydney,AU",
        "Reykjavik,IS",
        "New York,NY,US",
        "Dubai,AE",
    ]
    ids = ["id:2643743", "id:3163858", "id:2950159", "id:1850147", "id:292223"]
    zips = ["zip:94040,US", "zip:10115,DE", "zip:8001,CH", "zip:2000,AU", "zip:10001,US"]
    typos = ["Lodnon,GB", "Atlantis"]  # not found: cached for a minute, as the spec says
    points = [f"{-60 + 5 * i:.4f},{-170 + 15 * i:.4f}" for i in range(22)]
    return names + ids + zips + typos + points


def measure_upstream_calls(stack, fake, workers, cache, redis_url="") -> dict:
    """1,000 scrapes of 50 targets, each scraped 20 times, by 8 connections at once."""
    if redis_url:  # nothing left over from the throughput runs
        redis.Redis.from_url(redis_url).flushdb()
    ours, process = start_ours(stack, fake, workers, cache, redis_url)
    places = realistic_mix()
    # wrk has no request count: each of its 2 threads stops after 500 answers.
    script = targets_script(stack.workdir, f"mix-{workers}-{cache}", places, 500)
    before = fake_calls(fake)
    run_counted(ours, script, 1000)
    calls = fake_calls(fake) - before
    answered = probes_answered(ours)
    stack.stop(process)
    return {"scrapes": answered, "places": len(places), "upstream_calls": calls}


def probes_answered(ours: str) -> int:
    """Probes the exporter counted, summed over modules and results."""
    metrics = requests.get(f"{ours}/metrics", timeout=5).text
    return int(
        sum(
            float(line.split()[-1])
            for line in metrics.splitlines()
            if line.startswith("multitarget_exporter_probes_total{")
        )
    )


def measure_memory(stack, fake, args) -> dict:
    ours, process = start_ours(stack, fake, 1)
    places = [
        f"-{30 + i // 500}.{i % 500:03d}1,-{100 + i % 7}.{i % 991:03d}1" for i in range(10000)
    ]
    per_thread = args.memory_probes // 2
    script = targets_script(stack.workdir, "memory", places, per_thread)
    started = tree_rss_bytes(process.pid)
    elapsed = run_counted(ours, script, args.memory_probes, connections=16)
    probes = probes_answered(ours)
    after = tree_rss_bytes(process.pid)
    stack.stop(process)
    return {
        "probes": int(probes),
        "places": len(places),
        "seconds": round(elapsed, 1),
        "rss_start_mb": round(started / 1e6, 1),
        "rss_end_mb": round(after / 1e6, 1),
    }


def machine() -> dict:
    model = ""
    with contextlib.suppress(OSError, TypeError):
        model = re.search(r"model name\s*:\s*(.+)", Path("/proc/cpuinfo").read_text())[1]
    found = subprocess.run(
        ["prometheus-blackbox-exporter", "--version"], capture_output=True, text=True
    )
    blackbox = (found.stdout + found.stderr).strip().splitlines()
    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split("\n")
    import gunicorn

    return {
        "cpu": f"{model} ({os.cpu_count()} cores)",
        "kernel": platform.release(),
        "python": platform.python_version(),
        "gunicorn": gunicorn.__version__,
        "blackbox_exporter": (blackbox or ["?"])[0],
        "wrk": wrk_version[0].strip(),
    }


DEFAULTS, PER_CORE = "defaults", "per-core"


def setting_label(key: str, cores: int) -> str:
    if key == DEFAULTS:
        return "the defaults (1 worker, in-memory cache)"
    return f"{cores} workers (one per core), Redis cache"


def _ms(value: float) -> str:
    return f"{value:,.1f} ms" if value < 1000 else f"{value / 1000:,.2f} s"


def _seconds(value: float) -> str:
    return _ms(value * 1000)


def slow_cells(samples: list[dict], timeout: float) -> tuple[str, str]:
    """Median and max of the timed requests, and what went wrong (timeouts, non-200s)."""
    answered = [s for s in samples if s["outcome"] == "answered"]
    failed = len(samples) - len(answered)
    # A request that did not answer counts as slower than any that did.
    ordered = sorted([s["seconds"] for s in answered] + [float("inf")] * failed)
    median = ordered[len(ordered) // 2] if len(ordered) % 2 else None
    if median is None:
        low, high = ordered[len(ordered) // 2 - 1], ordered[len(ordered) // 2]
        median = (low + high) / 2 if high != float("inf") else float("inf")
    never = f"no answer in {timeout:.0f} s"
    if median == float("inf"):
        cell = never
    elif ordered[-1] == float("inf"):
        cell = f"{_seconds(median)} / {never}"
    else:
        cell = f"{_seconds(median)} / {_seconds(ordered[-1])}"
    problems = []
    timeouts = sum(1 for s in samples if s["outcome"] == "timeout")
    if timeouts:
        problems.append(f"{timeouts} of {len(samples)} timed out")
    others = [s["outcome"] for s in samples if s["outcome"] not in ("answered", "timeout")]
    if others:
        problems.append(", ".join(sorted(set(others))))
    statuses = [s["status"] for s in answered if s.get("status") != "200"]
    if statuses:
        problems.append(f"{len(statuses)} answered {', '.join(sorted(set(statuses)))}")
    return cell, "; ".join(problems) or f"{len(samples)} of {len(samples)}: 200"


def slowest(samples: list[dict]) -> float:
    """The slowest timed request in seconds; infinite if any did not answer 200."""
    if any(s["outcome"] != "answered" or s.get("status") != "200" for s in samples):
        return float("inf")
    return max(s["seconds"] for s in samples)


def comparison_rows(report: dict, args) -> list[tuple]:
    """(what, setting, connections, ours, against, ratio) for every side-by-side figure."""
    cores = report["cores"]
    rows = []
    per_core = report["throughput"][PER_CORE]
    blackbox = service_name("blackbox")
    against_blackbox = [
        ("cache hits, probes/s", "hit", "rate", lambda v: f"{v:,.0f}/s"),
        ("cache misses, probes/s", "miss", "rate", lambda v: f"{v:,.0f}/s"),
        ("cache-miss p99", "miss", "p99", _ms),
    ]
    for what, kind, field, show in against_blackbox:
        for connections in args.connections:
            ours = per_core[(service_name("ours", "gevent", kind), connections)][field]
            theirs = per_core[(blackbox, connections)][field]
            rows.append((
                f"{what}, against blackbox_exporter", PER_CORE, connections,
                show(ours), f"{show(theirs)} (blackbox_exporter)", ours / theirs,
            ))  # fmt: skip
    for setting in (DEFAULTS, PER_CORE):
        summary = report["throughput"][setting]
        for connections in args.connections:
            ours = summary[(service_name("ours", "gevent", f"{WARNED}, warnings"), connections)]
            theirs = summary[(service_name("ours", "gevent", WARNED), connections)]
            rows.append((
                "cache hits with `warnings` on, probes/s, against the same point without",
                setting, connections, f"{ours['rate']:,.0f}/s",
                f"{theirs['rate']:,.0f}/s (no warnings)", ours["rate"] / theirs["rate"],
            ))  # fmt: skip
        for connections in args.connections:
            ours = summary[(service_name("ours", "gevent", BUDGETED), connections)]
            theirs = summary[(service_name("ours", "gevent", "hit"), connections)]
            rows.append((
                "cache hits with a `daily_budget`, probes/s, against the same without",
                setting, connections, f"{ours['rate']:,.0f}/s",
                f"{theirs['rate']:,.0f}/s (no budget)", ours["rate"] / theirs["rate"],
            ))  # fmt: skip
        for field in ("p50", "p99"):
            for connections in args.connections:
                ours = summary[(service_name("ours", "gevent", "hit"), connections)][field]
                theirs = summary[(service_name("ours", "gthread", "hit"), connections)][field]
                rows.append((
                    f"cache-hit {field}, against gthread", setting, connections,
                    _ms(ours), f"{_ms(theirs)} (gthread)", ours / theirs,
                ))  # fmt: skip
    slow = report["slow"]
    for name, label in (("/-/healthy", "`/-/healthy`"), ("probe", "cached probe")):
        ours = slowest(slow["ours (gevent)"]["results"][name])
        theirs = slowest(slow["blackbox_exporter"]["results"][name])
        against = "blackbox_exporter's " + ("`/-/healthy`" if name == "/-/healthy" else "probe")
        rows.append((
            f"{label} under {args.slow_clients:,} trickling clients (slowest of "
            f"{args.slow_samples})", DEFAULTS, "—",
            _seconds(ours) if ours != float("inf") else "did not answer",
            f"{_seconds(theirs) if theirs != float('inf') else 'did not answer'} ({against})",
            None,
        ))  # fmt: skip
    return [(row[0], setting_label(row[1], cores), *row[2:]) for row in rows]


def render(report: dict, args) -> str:
    """The report as Markdown."""
    command = "bench/run.py" + (" --quick" if args.quick else "")
    cores = report["cores"]
    lines = [
        "# Benchmarks",
        "",
        f"Written by `.venv/bin/python {command}` on {report['date']} (the whole run took "
        f"{report['minutes']:.0f} minutes); rerun it to refresh this file (see "
        "docs/design.md, Benchmarks).",
        "",
        "## Machine",
        "",
    ]
    lines += [f"- {key}: {value}" for key, value in report["machine"].items()]
    lines += [
        f"- every throughput figure: the median of {args.rounds} "
        f"{'round' if args.rounds == 1 else 'rounds'} of {args.seconds} s wrk "
        "runs, the services of a setting (the rows below) taking turns in an order that "
        "rotates each round; every process (wrk, the fake upstream, the services) on this "
        "one machine",
        "- ours: the CLI's embedded gunicorn, measured with gevent workers (the default: "
        f"{WORKER_CONNECTIONS:,} connections a worker, a request head bounded by the "
        f"{KEEPALIVE_SECONDS} s keepalive, a wait for the loop to be idle after every "
        "request) and with gthread "
        f"workers (`--worker-class gthread --threads {GTHREAD_THREADS}`, a thread pool); "
        "log level `info` (one line per probe), the defaults for everything else; "
        "the cache-miss module has `cache_ttl: 0`, so every probe calls the upstream",
        "- blackbox_exporter: an `http` module fetching the same fake upstream URL (the "
        "OpenWeatherMap current-weather call) that our cache-miss probes fetch",
        "- ceiling: a WSGI app that only returns a probe-sized body, for each worker class on "
        "the same gunicorn settings as ours "
        "(`multitarget_exporter.server.gunicorn_config.settings`, "
        "monkey-patched under gevent as the CLI is)",
        "",
        "## Side by side",
        "",
        "Both sides of every ratio come from the same run; throughput sides from the same "
        "rounds of the same setting. A ratio above 1 means more probes/s, or a longer "
        "latency, for ours.",
        "",
        "| figure | setting | connections | ours (gevent) | against | ratio |",
        "|---|---|---|---|---|---|",
    ]
    for label, setting, connections, ours, against, ratio in comparison_rows(report, args):
        ratio_cell = f"{ratio:.2f}" if ratio is not None else "—"
        lines.append(f"| {label} | {setting} | {connections} | {ours} | {against} | {ratio_cell} |")
    lines.append("")
    header = " | ".join(f"probes/s ({c}) | p50 ms ({c}) | p99 ms ({c})" for c in args.connections)
    for setting, summary in report["throughput"].items():
        lines += [
            f"## Throughput, {setting_label(setting, cores)}",
            "",
            f"Columns by wrk connections ({' and '.join(map(str, args.connections))}).",
            "",
            f"| service | {header} | non-2xx, socket errors |",
            "|---|" + "---|---|---|" * len(args.connections) + "---|",
        ]
        for name in dict.fromkeys(n for n, _ in summary):
            cells, non2xx, failed = [], 0, 0
            for conns in args.connections:
                f = summary[(name, conns)]
                cells.append(f"{f['rate']:,.0f} | {f['p50']:.2f} | {f['p99']:.2f}")
                non2xx += f["non2xx"]
                failed += f["socket_errors"]
            lines.append(f"| {name} | {' | '.join(cells)} | {non2xx}, {failed} |")
        lines.append("")
        shares = []
        for worker_class in WORKER_CLASSES:
            for conns in args.connections:
                hit = summary[(service_name("ours", worker_class, "hit"), conns)]["rate"]
                top = summary[(service_name("ceiling", worker_class), conns)]["rate"]
                shares.append(f"{worker_class} {hit / top:.2f} at {conns}")
        lines += [
            "Cache hits as a share of the ceiling on the same worker class (for reference): "
            + ", ".join(shares)
            + ".",
            "",
        ]
    lines += [
        "## Slow clients",
        "",
        f"{args.slow_clients:,} connections each send `GET /probe?target=London,GB HTTP/1.1`, "
        "`Host: x` and then one header line (`X-a: b`) a second, never finishing the head; "
        "one the server drops is opened again the next second. Meanwhile, from "
        f"{args.slow_warmup:.0f} s in, `/-/healthy` and a probe are each requested "
        f"{args.slow_samples} times, {args.slow_interval} s apart, on fresh connections, each "
        f"given {args.slow_timeout:.0f} s; the trickling lasts {args.slow_seconds:.0f} s, or "
        "until the last of those requests answers or times out. Ours runs at the defaults "
        "(one worker, in-memory cache; the probe is of a cached place); blackbox_exporter's "
        "probe is its `http` module calling the fake upstream.",
        "",
        "| server | trickling connections held | dropped by the server (held, median) "
        "| `/-/healthy` median / max | answers | probe median / max | answers |",
        "|---|---|---|---|---|---|---|",
    ]
    for server, run in report["slow"].items():
        healthy = slow_cells(run["results"]["/-/healthy"], args.slow_timeout)
        probe = slow_cells(run["results"]["probe"], args.slow_timeout)
        dropped = f"{run['drops']:,} ({run['held_before_drop_s']} s)" if run["drops"] else "none"
        if run["trickler_answers"]:
            dropped += ", answered " + "; ".join(f"`{a}`" for a in run["trickler_answers"])
        lines.append(
            f"| {server} | {run['held_at_first_sample']:,} | {dropped} "
            f"| {' | '.join(healthy)} | {' | '.join(probe)} |"
        )
    lines += [
        "",
        "## Upstream calls",
        "",
        "A realistic target mix: 50 targets (16 names, 5 `id:`, 5 `zip:`, 2 that do not "
        "exist, 22 `lat,lon`), scraped 20 times each in random order by 8 connections at "
        "once, with the default `cache_ttl` (10 minutes), as two HA Prometheus servers at a "
        "15 s interval would in 2.5 minutes; ours with gevent workers (the default).",
        "",
        "| exporter | settings | probes answered | upstream calls | per target |",
        "|---|---|---|---|---|",
    ]
    for label, row in report["calls"].items():
        lines.append(
            f"| ours | {label} | {row['scrapes']:,} | {row['upstream_calls']} "
            f"| {row['upstream_calls'] / row['places']:.2f} |"
        )
    lines += [
        "| blackbox_exporter | any | 1,000 | 1,000 (one per probe; it has no cache) | 20.00 |"
    ]
    memory = report["memory"]
    lines += [
        "",
        "## Memory",
        "",
        f"{memory['probes']:,} probes over {memory['places']:,} `lat,lon` places (each "
        f"probed {memory['probes'] // memory['places']} times; the defaults: one gevent "
        f"worker, `cache.max_entries` 10,000), in {memory['seconds']} s: resident memory of "
        f"the exporter (master and worker) {memory['rss_start_mb']} MB after start-up, "
        f"{memory['rss_end_mb']} MB at the end.",
        "",
    ]
    failed, other = report["logged"]["failed probes"], report["logged"]["other"]
    lines += [
        "## Logged by the exporter",
        "",
        "Over the whole run, in our exporter's own logs: probes that did not succeed "
        "(`Lodnon,GB` and `Atlantis` are the mix's places that do not exist), "
        + (", ".join(f"{key} ×{n:,}" for key, n in sorted(failed.items())) or "none")
        + "; other warnings and errors, "
        + (", ".join(f"`{key}` ×{n:,}" for key, n in sorted(other.items())) or "none")
        + ".",
        "",
    ]
    return "\n".join(lines) + "\n"


def logged_problems(stack: Stack) -> dict[str, dict[str, int]]:
    """From our exporter's logs: probes that did not succeed, by outcome and target; and
    every other warning or error (and traceback), by logger and message."""
    failed: dict[str, int] = {}
    other: dict[str, int] = {}
    for path in sorted(stack.workdir.glob("ours-*.log")):
        for line in path.read_text(errors="replace").splitlines():
            if line.startswith("Traceback"):
                other["Traceback"] = other.get("Traceback", 0) + 1
                continue
            level = re.search(r"\blevel=(warn|error)\b", line)
            if not level:
                continue
            fields = dict(re.findall(r'(\w+)=("[^"]*"|\S+)', line))
            if fields.get("logger") == "multitarget_exporter.probe" and "outcome" in fields:
                key = f"{fields['outcome']} `{fields.get('target', '?')}`"
                failed[key] = failed.get(key, 0) + 1
            else:
                key = f"{level[1]} {fields.get('logger', '?')}: {fields.get('msg', line[:120])}"
                other[key] = other.get(key, 0) + 1
    return {"failed probes": failed, "other": other}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="1 round of 3 s a figure, 20,000 probes for memory"
    )
    parser.add_argument("--output", default=str(ROOT / "docs" / "benchmarks.md"))
    args = parser.parse_args()
    args.rounds, args.seconds = (1, 3) if args.quick else (3, 5)
    args.connections = [16, 64]
    args.memory_probes = 20000 if args.quick else 100000
    args.slow_clients, args.slow_seconds, args.slow_warmup = 1000, 12.0, 2.0
    args.slow_samples, args.slow_interval, args.slow_timeout = 10, 0.5, 15.0
    for tool in ("wrk", "prometheus-blackbox-exporter", "redis-server"):
        if not shutil.which(tool):
            raise SystemExit(
                f"{tool} is missing: apt-get install wrk prometheus-blackbox-exporter redis-server"
            )
    # 1,000 slow clients and the services' own sockets: as many open files as allowed.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else 1 << 20
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    if wanted < args.slow_clients + 256:
        raise SystemExit(f"the open-file limit ({wanted}) is below {args.slow_clients + 256}")
    cores = os.cpu_count() or 1
    stack = Stack(Path(tempfile.mkdtemp(prefix="bench.")))
    print(f"logs in {stack.workdir}", file=sys.stderr, flush=True)
    begun = time.monotonic()
    report: dict = {
        "machine": machine(),
        "cores": cores,
        "throughput": {},
        "calls": {},
        "date": time.strftime("%Y-%m-%d"),
    }

    def progress(text: str) -> None:
        print(f"[{time.monotonic() - begun:5.0f} s] {text}", file=sys.stderr, flush=True)

    try:
        fake = start_fake(stack)
        blackbox = start_blackbox(stack)
        redis_port = free_port()
        redis_command = ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1",
                         "--save", "", "--appendonly", "no"]  # fmt: skip
        stack.start("redis", redis_command)
        redis_url = f"redis://127.0.0.1:{redis_port}/0"
        time.sleep(0.5)
        settings = ((DEFAULTS, 1, "memory"), (PER_CORE, cores, "redis"))
        for setting, workers, cache in settings:
            progress(f"throughput, {setting_label(setting, cores)}")
            report["throughput"][setting] = measure_throughput(
                stack, fake, blackbox, workers, args, cache, redis_url
            )
        progress("slow clients")
        report["slow"] = measure_slow_clients(stack, fake, blackbox, args)
        progress("upstream calls")
        report["calls"]["defaults (1 worker), in-memory cache"] = measure_upstream_calls(
            stack, fake, 1, "memory"
        )
        report["calls"][f"{cores} workers, Redis cache"] = measure_upstream_calls(
            stack, fake, cores, "redis", redis_url
        )
        progress("memory")
        report["memory"] = measure_memory(stack, fake, args)
    finally:
        stack.stop_all()
    report["minutes"] = (time.monotonic() - begun) / 60
    report["logged"] = logged_problems(stack)
    progress("done")
    raw = {**report, "throughput": {
        setting: {f"{name} @{conns}": figures for (name, conns), figures in summary.items()}
        for setting, summary in report["throughput"].items()
    }}  # fmt: skip
    (stack.workdir / "report.json").write_text(json.dumps(raw, indent=2, ensure_ascii=False))
    text = render(report, args)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(text, "utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
