"""Run the exporter under your own gunicorn:

    MULTITARGET_EXPORTER_CONFIG=/etc/multitarget_exporter.yml \\
        gunicorn -c examples/gunicorn.conf.py

Several workers share one directory: prometheus_client's multiprocess mode adds
their metrics up on /metrics, and the probe history is shared so its links
work whichever worker answers.
"""

import os
import shutil
import tempfile

# gunicorn reads this file again on SIGHUP: keep the directory made the first time.
_state_dir = os.environ.get("MULTITARGET_EXPORTER_STATE_DIR") or tempfile.mkdtemp(
    prefix="multitarget_exporter."
)
_metrics_dir = os.path.join(_state_dir, "metrics")
os.makedirs(_metrics_dir, exist_ok=True)
# Set before anything imports prometheus_client, which reads it once.
os.environ["MULTITARGET_EXPORTER_STATE_DIR"] = _state_dir
os.environ["PROMETHEUS_MULTIPROC_DIR"] = _metrics_dir

wsgi_app = "multitarget_exporter.wsgi:create_app()"
bind = ":9265"
worker_class = "gthread"  # probes wait on the upstream: threads serve that cheaply
workers = 2
threads = 32
timeout = 60
graceful_timeout = 30
keepalive = 5
accesslog = None  # the exporter logs one line per probe itself


def child_exit(server, worker):
    """A dead worker's live gauges leave /metrics; its counters stay in the totals."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    shutil.rmtree(_state_dir, ignore_errors=True)
