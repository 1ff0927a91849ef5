"""Run the exporter under your own gunicorn:

    MULTITARGET_EXPORTER_CONFIG=/etc/multitarget_exporter.yml \\
        gunicorn -c examples/gunicorn.conf.py

The settings are the embedded server's own (`multitarget_exporter.server.gunicorn_config`):
gevent workers, so slow clients and a stuck upstream cannot starve scrapes.
MULTITARGET_EXPORTER_WORKER_CLASS=gthread picks a thread pool instead (set it
here rather than with -k, so that the master is patched for gevent or not at all).

Several workers share one directory: prometheus_client's multiprocess mode adds
their metrics up on /metrics, the probe history is shared so its links work
whichever worker answers, and a reload (POST /-/reload or SIGHUP) reaches every
worker before it answers. Give it a directory of its own with
MULTITARGET_EXPORTER_STATE_DIR (systemd's RuntimeDirectory, a Kubernetes
emptyDir), or let this file make a private one that it removes at exit.
"""

import os

# Pick the worker class here, not with -k: under gevent the standard library is
# patched first of all, in the master too, so that no lock, socket or thread
# (the log writer's, say) exists unpatched when gevent's worker starts.
worker_class = os.environ.get("MULTITARGET_EXPORTER_WORKER_CLASS", "gevent")
if worker_class == "gevent":
    from gevent import monkey

    monkey.patch_all()

import shutil  # noqa: E402
import tempfile  # noqa: E402

from multitarget_exporter.runtime.logs import logging_dict  # noqa: E402
from multitarget_exporter.server import gunicorn_config  # noqa: E402

# gunicorn reads this file again on SIGHUP: keep the directory made the first time.
_given = os.environ.get("MULTITARGET_EXPORTER_STATE_DIR")
_state_dir = _given or tempfile.mkdtemp(prefix="multitarget_exporter.")
_metrics_dir = os.path.join(_state_dir, "metrics")
_config_dir = os.path.join(_state_dir, "config")
os.makedirs(_metrics_dir, exist_ok=True)
# Set before anything imports prometheus_client, which reads it once.
os.environ["MULTITARGET_EXPORTER_STATE_DIR"] = _state_dir
os.environ["PROMETHEUS_MULTIPROC_DIR"] = _metrics_dir

wsgi_app = "multitarget_exporter.wsgi:create_app()"
bind = os.environ.get("MULTITARGET_EXPORTER_BIND", ":9265")
# The embedded server's settings, as this module's names (which is how gunicorn reads them).
globals().update(
    gunicorn_config.settings(
        worker_class, workers=int(os.environ.get("MULTITARGET_EXPORTER_WORKERS", "2"))
    )
)
logconfig_dict = logging_dict(
    os.environ.get("MULTITARGET_EXPORTER_LOG_LEVEL", "info"),
    os.environ.get("MULTITARGET_EXPORTER_LOG_FORMAT", "logfmt"),
)
gunicorn_config.raise_open_file_limit(gunicorn_config.WORKER_CONNECTIONS)


def _empty(directory):
    if os.path.isdir(directory):
        shutil.rmtree(directory)
    os.makedirs(directory)


def on_starting(server):
    """Counters and configuration generations from an earlier run are not this one's."""
    _empty(_metrics_dir)
    _empty(_config_dir)


def on_reload(server):
    """SIGHUP: the file as it is now, if valid, is what the new workers start from."""
    from multitarget_exporter.wsgi import publish_on_sighup

    publish_on_sighup(_state_dir)


def child_exit(server, worker):
    """A dead worker's live gauges leave /metrics; its counters stay in the totals."""
    from prometheus_client import multiprocess

    from multitarget_exporter.wsgi import generations

    multiprocess.mark_process_dead(worker.pid)
    generations(_state_dir).forget(worker.pid)


def on_exit(server):
    if _given:
        _empty(_metrics_dir)  # the directory is yours: only what the exporter put there goes
        _empty(_config_dir)
    else:
        shutil.rmtree(_state_dir, ignore_errors=True)
