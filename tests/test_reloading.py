"""Configuration generations in a shared directory: publish, confirm, serialize."""

from __future__ import annotations

import os
import threading
import time

import pytest

from multitarget_exporter.server import reload as reloading
from multitarget_exporter.server.reload import Coordinator, Follower, Generation, Generations

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


def test_lagging_workers_are_the_live_ones_of_this_master_behind(tmp_path):
    generations = Generations(str(tmp_path))
    generations.confirm(os.getpid(), 1, 1)
    dead = 2**22 + 12345  # above pid_max's default: no such process
    generations.confirm(dead, 1, 0)
    generations.confirm(os.getppid(), 7, 0)  # alive, but a worker of another master's run
    assert generations.lagging(1, 1) == []
    assert generations.lagging(1, 2) == [os.getpid()]
    generations.forget(os.getpid())
    assert generations.lagging(1, 2) == []


def test_a_state_directory_others_can_write_is_refused(tmp_path):
    from multitarget_exporter.config.files import ConfigError

    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    with pytest.raises(ConfigError, match="not be writable by others"):
        Generations(str(shared))


def test_reloads_are_serialized(tmp_path):
    generations = Generations(str(tmp_path))
    order = []
    holding = threading.Event()

    def hold(name: str) -> None:
        with generations.locked():
            holding.set()
            order.append(f"{name} in")
            time.sleep(0.2)
            order.append(f"{name} out")

    first = threading.Thread(target=hold, args=("a",))
    first.start()
    assert holding.wait(5)
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
    refuse = []
    coordinator = Coordinator(generations, 1, str(config), validate=lambda g: list(refuse))
    assert coordinator.reload() == []
    assert generations.current(1).number == 1
    refuse.append("modules.default.provider: no")
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
    generations.confirm(os.getppid(), 1, 0)  # a live process that never follows
    assert coordinator.reload() == [
        f"published, but workers {os.getppid()} did not take it within 0.3s; the others serve it"
    ]


def test_a_worker_that_cannot_apply_makes_the_reload_fail_and_keeps_its_configuration(
    tmp_path,
):
    config = tmp_path / "exporter.yml"
    config.write_bytes(GOOD)
    generations = Generations(str(tmp_path / "state"))
    failing = []

    def apply(generation):
        if failing:
            raise OSError("disk on fire")
        return []

    follower = Follower(generations, 1, apply, served=0)
    follower.start()
    coordinator = Coordinator(generations, 1, str(config))
    assert coordinator.reload() == []
    failing.append(1)
    problems = coordinator.reload()
    assert problems == [
        f"published, but worker {os.getpid()} could not take it: OSError: disk on fire"
    ]
    assert follower.served == 1  # still the generation it could apply
    failing.clear()
    assert coordinator.reload() == []  # and a later reload is not failed by the old problem
    assert follower.served == 3


@pytest.mark.parametrize("served", [0, 3])
def test_a_new_worker_catches_up_before_serving(tmp_path, served):
    generations = Generations(str(tmp_path))
    generations.publish(generation(3))
    applied = []
    follower = Follower(generations, 1, lambda g: applied.append(g.number) or [], served)
    follower.catch_up()
    assert applied == ([3] if served < 3 else [])
