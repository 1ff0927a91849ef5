"""Run the exporter under your own gunicorn:

    MULTITARGET_EXPORTER_CONFIG=/etc/multitarget_exporter.yml \\
        gunicorn -c examples/gunicorn.conf.py

Several workers share one directory: prometheus_client's multiprocess mode adds
their metrics up on /metrics, and the probe history is shared so its links
work whichever worker answers. Give it a directory of its own with
MULTITARGET_EXPORTER_STATE_DIR (systemd's RuntimeDirectory, a Kubernetes
emptyDir), or let this file make a private one that it removes at exit.
"""

import os
import shutil
import tempfile

from multitarget_exporter.logs import logging_dict

# gunicorn reads this file again on SIGHUP: keep the directory made the first time.
_given = os.environ.get("MULTITARGET_EXPORTER_STATE_DIR")
_state_dir = _given or tempfile.mkdtemp(prefix="multitarget_exporter.")
_metrics_dir = os.path.join(_state_dir, "metrics")
os.makedirs(_metrics_dir, exist_ok=True)
# Set before anything imports prometheus_client, which reads it once.
os.environ["MULTITARGET_EXPORTER_STATE_DIR"] = _state_dir
os.environ["PROMETHEUS_MULTIPROC_DIR"] = _metrics_dir

wsgi_app = "multitarget_exporter.wsgi:create_app()"
bind = os.environ.get("MULTITARGET_EXPORTER_BIND", ":9265")
worker_class = "gthread"  # probes wait on the upstream: threads serve that cheaply
workers = int(os.environ.get("MULTITARGET_EXPORTER_WORKERS", "2"))
threads = 128  # every probe waiting on a stuck upstream holds one until its deadline
# A probe never outlives its module's timeout (at most 5m); the worker's own
# heartbeat only has to outlast a stuck thread, not a probe.
timeout = 60
graceful_timeout = 30  # probes in flight finish on shutdown and reload
keepalive = 75  # longer than Prometheus' idle connections, so they are reused
max_requests = 0  # never recycle workers: that would empty the in-memory cache
accesslog = None  # the exporter logs one line per probe itself
logger_class = "multitarget_exporter.logs.GunicornLogger"  # and skips access-log work
control_socket_disable = True  # gunicorn 27+: no per-user socket for two exporters to share
logconfig_dict = logging_dict(
    os.environ.get("MULTITARGET_EXPORTER_LOG_LEVEL", "info"),
    os.environ.get("MULTITARGET_EXPORTER_LOG_FORMAT", "logfmt"),
)


def _empty(directory):
    for name in os.listdir(directory):
        os.unlink(os.path.join(directory, name))


def on_starting(server):
    """Counters from an earlier run must not be added to this one's."""
    _empty(_metrics_dir)


def child_exit(server, worker):
    """A dead worker's live gauges leave /metrics; its counters stay in the totals."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    if _given:
        _empty(_metrics_dir)  # the directory is yours: only the metrics files go
    else:
        shutil.rmtree(_state_dir, ignore_errors=True)
