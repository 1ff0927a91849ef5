"""Configuration generations in a shared directory: publish, confirm, serialize."""

from __future__ import annotations

import os
import threading
import time

import pytest

from multitarget_exporter import reloading
from multitarget_exporter.reloading import Coordinator, Follower, Generation, Generations

GOOD = b"modules:\n  default: {provider: open_meteo}\n"


def generation(number: int, epoch: int = 1, text: bytes = GOOD) -> Generation:
    return Generation(number, epoch, "/etc/exporter.yml", text)


def test_the_current_generation_is_the_last_published_by_this_master(tmp_path):
    generations = Generations(str(tmp_path))
    assert generations.current(1) is None
    generations.publish(generation(1))
    generations.publish(generation(2, text=b"modules: {}\n"))
    current = generations.current(1)
    assert current is not None and (current.number, current.config_text) == (2, b"modules: {}\n")
    assert generations.current(2) is None  # another master's run: not ours


def test_bytes_that_are_not_utf8_survive_publishing(tmp_path):
    generations = Generations(str(tmp_path))
    generations.publish(generation(1, text=b"\xff\xfe odd"))
    assert generations.current(1).config_text == b"\xff\xfe odd"


def test_lagging_workers_are_the_live_ones_behind(tmp_path):
    generations = Generations(str(tmp_path))
    generations.confirm(os.getpid(), 1)
    dead = 2**22 + 12345  # above pid_max's default: no such process
    generations.confirm(dead, 0)
    assert generations.lagging(1) == []
    assert generations.lagging(2) == [os.getpid()]
    generations.forget(os.getpid())
    assert generations.lagging(2) == []


def test_reloads_are_serialized(tmp_path):
    generations = Generations(str(tmp_path))
    order = []

    def hold(name: str) -> None:
        with generations.locked():
            order.append(f"{name} in")
            time.sleep(0.2)
            order.append(f"{name} out")

    first = threading.Thread(target=hold, args=("a",))
    first.start()
    time.sleep(0.05)
    hold("b")
    first.join()
    assert order == ["a in", "a out", "b in", "b out"]


def test_a_lock_held_too_long_is_a_problem_not_a_hang(tmp_path, monkeypatch):
    generations = Generations(str(tmp_path))
    coordinator = Coordinator(generations, 1, None)
    with generations.locked():
        monkeypatch.setattr(reloading, "LOCK_SECONDS", 0.2)
        problems = []
        thread = threading.Thread(target=lambda: problems.extend(coordinator.reload()))
        thread.start()
        thread.join(5)
    assert problems == ["another reload is still running"]


def test_a_file_that_fails_validation_is_not_published(tmp_path):
    config = tmp_path / "exporter.yml"
    config.write_bytes(GOOD)
    generations = Generations(str(tmp_path / "state"))
    coordinator = Coordinator(generations, 1, str(config))
    assert coordinator.reload() == []
    assert generations.current(1).number == 1
    coordinator.validate = lambda g: ["modules.default.provider: no"]
    config.write_bytes(b"modules: {default: {provider: no}}\n")
    assert coordinator.reload() == ["modules.default.provider: no"]
    assert generations.current(1).config_text == GOOD
    config.unlink()
    assert coordinator.reload()[0].startswith("cannot read")
    assert generations.current(1).number == 1


def test_a_reload_waits_for_every_worker_and_names_those_that_never_confirm(tmp_path, monkeypatch):
    config = tmp_path / "exporter.yml"
    config.write_bytes(GOOD)
    generations = Generations(str(tmp_path / "state"))
    applied = []
    follower = Follower(generations, 1, lambda g: applied.append(g.number) or [], served=0)
    follower.start()  # this process, as a worker that follows
    coordinator = Coordinator(generations, 1, str(config))
    started = time.monotonic()
    assert coordinator.reload() == []
    assert applied == [1] and time.monotonic() - started < 2
    monkeypatch.setattr(reloading, "CONFIRM_SECONDS", 0.3)
    generations.confirm(os.getppid(), 0)  # a live process that never follows
    assert coordinator.reload() == [
        f"workers {os.getppid()} did not take the new configuration in time"
    ]


@pytest.mark.parametrize("served", [0, 3])
def test_a_new_worker_catches_up_before_serving(tmp_path, served):
    generations = Generations(str(tmp_path))
    generations.publish(generation(3))
    applied = []
    follower = Follower(generations, 1, lambda g: applied.append(g.number) or [], served)
    follower.catch_up()
    assert applied == ([3] if served < 3 else [])
    assert generations.lagging(3) == []
