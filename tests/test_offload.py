"""Long calls off gevent's loop, plain calls without it."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading

from multitarget_exporter.runtime import offload


def test_without_gevent_a_blocking_call_is_a_plain_call():
    assert not offload.gevent_patched()
    assert offload.blocking(threading.get_native_id) == threading.get_native_id()


def test_under_gevent_the_loop_runs_while_a_blocking_call_does():
    script = textwrap.dedent(
        """
        from gevent import monkey
        monkey.patch_all()
        import threading, time
        import gevent
        from multitarget_exporter.runtime import offload

        assert offload.gevent_patched()
        ticks = []
        def tick():
            while True:
                ticks.append(1)
                gevent.sleep(0.01)
        gevent.spawn(tick)
        gevent.sleep(0)
        real_sleep = monkey.get_original("time", "sleep")
        other = offload.blocking(lambda: (real_sleep(0.3), threading.get_native_id())[1])
        assert other != threading.get_native_id(), "ran on the loop's own thread"
        assert len(ticks) >= 10, len(ticks)
        print("ok", len(ticks))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("ok")
