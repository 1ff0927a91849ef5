"""A bounded soak run: mixed healthy and faulty probes at a steady rate.

    .venv/bin/python bench/soak.py                      # 3 minutes at 40 probes a second
    .venv/bin/python bench/soak.py --duration 60 --rate 100

Starts the fake upstream and the exporter (the CLI, its defaults) on loopback
ports the kernel picks, then sends probes on a fixed schedule: most of known
places (cache hits), some of new places (upstream calls), some of places with
an injected fault (hang, trickle, reset, 5xx, 429, malformed, oversize...).
At the end it prints errors, latency percentiles per kind of probe, and the
exporter's resident memory at the start, the middle and the end. An error is
a 5xx, a refused or dropped connection, a healthy probe that failed, or a
faulty one that failed for the wrong reason or past its deadline. Exit status
1 if there was any. Every run is bounded: duration x rate requests at most.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
from prometheus_client.parser import text_string_to_metric_families

KNOWN = ["London,GB", "Berlin,DE", "Tokyo,JP", "Sydney,AU", "Zürich,CH", "São Paulo", "Dubai"]
# fault -> the reason the probe must fail with (None: it must succeed).
FAULTS = {
    "hang": "timeout",
    "trickle": "timeout",
    "reset": "connection_error",
    "html_502": "upstream_error",
    "json_500": "upstream_error",
    "rate_limited": "rate_limited",
    "malformed": "invalid_response",
    "partial": "invalid_response",
    "oversize": "too_large",
    "nulls": None,
    "slow": None,
}
TIMEOUT_SECONDS = 2.0
KEY = "soak-test-key-000"


def point() -> str:
    bits = uuid.uuid4().int
    return f"-{30 + bits % 30}.{bits % 997:03d}1,-{100 + bits % 50}.{bits % 991:03d}1"


def start_fake() -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "fake_upstream", "--port", "0",
         "--api-key", KEY, "--hang-seconds", "30"],
        stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parent.parent,
    )  # fmt: skip
    line = process.stdout.readline()
    return process, line.split()[-1]


def start_exporter(fake_url: str, workdir: Path) -> tuple[subprocess.Popen, str]:
    config = workdir / "soak.yml"
    config.write_text(
        "modules:\n"
        f"  default: {{provider: openweathermap, api_key: {KEY}, base_url: '{fake_url}', "
        f"timeout: {TIMEOUT_SECONDS:.0f}s}}\n"
    )
    log = workdir / "exporter.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "multitarget_exporter", "--config.file", str(config),
         "--web.listen-address", "127.0.0.1:0"],
        stdout=open(log, "w"), stderr=subprocess.STDOUT,  # noqa: SIM115
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = re.search(r"Listening at: http://([\d.]+:\d+)", log.read_text())
        if found:
            return process, f"http://{found[1]}"
        time.sleep(0.1)
    process.kill()
    raise SystemExit(f"exporter did not start:\n{log.read_text()}")


def tree_rss_bytes(pid: int) -> int:
    """Resident size of a process and its children (gunicorn's master and workers)."""
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if int(entry.name) != pid and int(stat[1]) != pid:
                continue
            status = (entry / "status").read_text()
        except (OSError, IndexError, ValueError):
            continue
        found = re.search(r"VmRSS:\s+(\d+) kB", status)
        total += int(found[1]) * 1024 if found else 0
    return total


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=180.0, help="seconds (at most 1800)")
    parser.add_argument("--rate", type=float, default=40.0, help="probes a second (at most 500)")
    parser.add_argument("--faulty", type=float, default=0.1, help="share of faulty probes")
    parser.add_argument("--new", type=float, default=0.2, help="share of new places")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args()
    duration, rate = min(args.duration, 1800.0), min(args.rate, 500.0)

    workdir = Path(tempfile.mkdtemp(prefix="soak."))
    fake, fake_url = start_fake()
    exporter, url = start_exporter(fake_url, workdir)
    control = requests.Session()
    local = threading.local()
    outcomes: Counter[str] = Counter()
    latencies: dict[str, list[float]] = {"cached": [], "new": [], "faulty": []}
    errors: list[str] = []
    lock = threading.Lock()
    rss = {"start": tree_rss_bytes(exporter.pid)}

    def one(kind: str, target: str, expected: str | None) -> None:
        session = getattr(local, "session", None) or requests.Session()
        local.session = session
        started = time.perf_counter()
        try:
            response = session.get(f"{url}/probe", params={"target": target}, timeout=30)
        except requests.RequestException as error:
            with lock:
                errors.append(f"{kind} {target}: {type(error).__name__}")
            return
        elapsed = time.perf_counter() - started
        problem = None
        if response.status_code != 200:
            problem = f"HTTP {response.status_code}"
        else:
            samples = {
                s.name + json.dumps(s.labels, sort_keys=True): s.value
                for f in text_string_to_metric_families(response.text)
                for s in f.samples
            }
            success = samples.get("probe_success{}") == 1
            reason = next(
                (k.split('"')[3] for k in samples if k.startswith("probe_failure_info")), None
            )
            outcome = "success" if success else reason
            with lock:
                outcomes[f"{kind}:{outcome}"] += 1
            if outcome != (expected or "success"):
                problem = f"expected {expected or 'success'}, got {outcome}"
            elif elapsed > TIMEOUT_SECONDS + 1.0:
                problem = f"answered after {elapsed:.2f} s"
        with lock:
            latencies[kind].append(elapsed)
            if problem:
                errors.append(f"{kind} {target}: {problem}")

    total = int(duration * rate)
    random.seed(1)
    begun = time.monotonic()
    with ThreadPoolExecutor(256) as pool:
        for index in range(total):
            time.sleep(max(0.0, begun + index / rate - time.monotonic()))
            draw = random.random()
            if draw < args.faulty:
                fault = random.choice(list(FAULTS))
                target = point()
                rule = {"fault": fault, "match": target, "times": 1}
                if fault in ("trickle", "slow"):
                    rule["delay"] = 0.5  # a hang holds until the fake stops
                control.post(f"{fake_url}/_fake/faults", json=rule, timeout=5).raise_for_status()
                pool.submit(one, "faulty", target, FAULTS[fault])
            elif draw < args.faulty + args.new:
                pool.submit(one, "new", point(), None)
            else:
                pool.submit(one, "cached", random.choice(KNOWN), None)
            if index == total // 2:
                rss["middle"] = tree_rss_bytes(exporter.pid)
    rss["end"] = tree_rss_bytes(exporter.pid)
    elapsed = time.monotonic() - begun
    exporter.terminate()
    exporter.wait(40)
    fake.terminate()

    report = {
        "requests": total,
        "seconds": round(elapsed, 1),
        "rate_per_second": round(total / elapsed, 1),
        "errors": len(errors),
        "first_errors": errors[:10],
        "outcomes": dict(sorted(outcomes.items())),
        "latency_ms": {
            kind: {
                "p50": round(statistics.median(values) * 1000, 1) if values else None,
                "p90": round(percentile(values, 0.9) * 1000, 1),
                "p99": round(percentile(values, 0.99) * 1000, 1),
                "max": round(max(values, default=0) * 1000, 1),
            }
            for kind, values in latencies.items()
        },
        "exporter_rss_mb": {k: round(v / 1e6, 1) for k, v in rss.items()},
        "exporter_exit_code": exporter.returncode,
    }
    if args.json:
        print(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        for key, value in report.items():
            print(f"{key}: {value}")
    return 1 if errors or exporter.returncode != 0 else 0


if __name__ == "__main__":
    sys.exit(main())
