"""Reload that is in force when it answers, in every worker at once.

Restarting workers on a reload left a gap: the answer came before the new
workers served, draining workers kept answering kept-alive connections with
the old configuration, and the master read the file again later, whatever
was in it by then. Here instead:

- A reload (`POST /-/reload` in any worker, or `SIGHUP` to the master) reads
  the files once and validates them. A bad file is refused there and then,
  and nothing else happens.
- A good one is published as the next *generation*: the very bytes that were
  validated, in a directory the exporter's processes share. Reloads take a
  file lock, so they are serialized.
- Every worker watches that directory, swaps the new configuration in place
  (one assignment, as at start-up) and confirms the generation it serves.
- `POST /-/reload` answers 200 once every live worker has confirmed.

A worker started later (one that died and was replaced) begins from the
latest generation, never from whatever the file holds by then.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from multitarget_exporter.config.files import ConfigError, read_file, write_private_file
from multitarget_exporter.runtime import offload
from multitarget_exporter.runtime.perprocess import forked_since

log = logging.getLogger("multitarget_exporter")

POLL_SECONDS = 0.05
CONFIRM_SECONDS = 10.0
LOCK_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class Generation:
    """The configuration files' bytes as validated, numbered, for one master's workers."""

    number: int
    epoch: int  # the master's pid: a generation left behind by an earlier run is not ours
    config_path: str | None
    config_text: bytes | None
    web_config_path: str | None = None
    web_config_text: bytes | None = None

    def to_json(self) -> str:
        return json.dumps(
            {
                "number": self.number,
                "epoch": self.epoch,
                "config_path": self.config_path,
                "config_text": _text(self.config_text),
                "web_config_path": self.web_config_path,
                "web_config_text": _text(self.web_config_text),
            }
        )

    @classmethod
    def from_json(cls, text: str) -> Generation:
        raw = json.loads(text)
        return cls(
            raw["number"],
            raw["epoch"],
            raw["config_path"],
            _bytes(raw["config_text"]),
            raw["web_config_path"],
            _bytes(raw["web_config_text"]),
        )


def _text(data: bytes | None) -> str | None:
    return None if data is None else data.decode("utf-8", "surrogateescape")


def _bytes(text: str | None) -> bytes | None:
    return None if text is None else text.encode("utf-8", "surrogateescape")


def read_generation_files(
    config_path: str | None, web_config_path: str | None, number: int, epoch: int
) -> Generation:
    """The files as they are now, as a generation (ConfigError if one cannot be read)."""
    return Generation(
        number,
        epoch,
        config_path,
        read_file(config_path) if config_path else None,
        web_config_path,
        read_file(web_config_path) if web_config_path else None,
    )


class Generations:
    """The shared directory: the current generation, and what each worker serves."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self._workers = os.path.join(directory, "workers")
        os.makedirs(self._workers, mode=0o700, exist_ok=True)
        for path in (directory, self._workers):
            _check_private(path)
        self._current = os.path.join(directory, "current.json")
        self._stamp = os.path.join(directory, "current.stamp")
        self._lock_path = os.path.join(directory, "reload.lock")

    def current(self, epoch: int) -> Generation | None:
        """The latest generation of the master `epoch`, if it published one."""
        try:
            with open(self._current, encoding="utf-8") as handle:
                generation = Generation.from_json(handle.read())
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return generation if generation.epoch == epoch else None

    def stamp(self) -> str | None:
        """What changes whenever a generation is published (a few bytes: cheap to poll)."""
        try:
            with open(self._stamp, encoding="utf-8") as handle:
                return handle.read()
        except OSError:
            return None

    def publish(self, generation: Generation) -> None:
        """Make `generation` the current one (atomically: readers see old or new, whole)."""
        write_private_file(self._current, generation.to_json())
        write_private_file(self._stamp, f"{generation.epoch}:{generation.number}")

    def confirm(
        self, pid: int, epoch: int, number: int, failed: int = 0, problem: str = ""
    ) -> None:
        """Note that worker `pid` of master `epoch` serves generation `number` (and could
        not take generation `failed`, for `problem`)."""
        document = {"epoch": epoch, "number": number, "failed": failed, "problem": problem}
        write_private_file(os.path.join(self._workers, str(pid)), json.dumps(document))

    def forget(self, pid: int) -> None:
        """A worker is gone: nobody waits for its confirmation."""
        with contextlib.suppress(OSError):
            os.unlink(os.path.join(self._workers, str(pid)))

    def workers(self, epoch: int) -> dict[int, tuple[int, int, str]]:
        """The live workers of master `epoch`: pid -> (generation served, generation it
        could not take, and why)."""
        found = {}
        for name in os.listdir(self._workers):
            if not name.isdigit():
                continue
            try:
                with open(os.path.join(self._workers, name), encoding="utf-8") as handle:
                    document = json.loads(handle.read())
                state = (
                    int(document["number"]),
                    int(document["failed"]),
                    str(document["problem"]),
                )
                if int(document["epoch"]) != epoch:
                    continue  # a worker of an earlier run, whose pid may have been reused
            except (OSError, ValueError, KeyError, TypeError):
                state = (0, 0, "")
            if _alive(int(name)):
                found[int(name)] = state
        return found

    def lagging(self, epoch: int, number: int) -> list[int]:
        """Live workers of master `epoch` that do not serve generation `number` yet."""
        return [pid for pid, (served, _, _) in self.workers(epoch).items() if served < number]

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """One reload at a time across every process (without blocking an event loop)."""
        descriptor = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            deadline = time.monotonic() + LOCK_SECONDS
            while True:
                try:
                    fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError as error:
                    if error.errno not in (errno.EAGAIN, errno.EACCES):
                        raise
                    if time.monotonic() > deadline:
                        raise TimeoutError("another reload is still running") from None
                    time.sleep(POLL_SECONDS)
            yield
        finally:
            os.close(descriptor)  # releases the lock


def _check_private(path: str) -> None:
    """Refuse a directory that others could write: its generations are what workers serve."""
    status = os.stat(path)
    if status.st_uid != os.geteuid() or status.st_mode & 0o022:
        raise ConfigError(
            [f"{path}: must belong to this user and not be writable by others (chmod 700)"]
        )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# What a process does with a generation: swap it in, or say what is wrong with it.
Apply = Callable[[Generation], list[str]]


class Coordinator:
    """Reloads for the processes of one exporter, through a `Generations` directory."""

    def __init__(
        self,
        generations: Generations,
        epoch: int,
        config_path: str | None,
        web_config_path: str | None = None,
        validate: Apply | None = None,
    ) -> None:
        self.generations = generations
        self.epoch = epoch
        self.config_path = config_path
        self.web_config_path = web_config_path
        # What is wrong with a generation, before it is published.
        self.validate: Apply = validate or (lambda generation: [])

    def publish_files(self) -> tuple[Generation | None, list[str]]:
        """Read and validate the files; publish them as the next generation if good.

        The caller holds the lock."""
        current = self.generations.current(self.epoch)
        number = current.number + 1 if current else 1
        try:
            generation = read_generation_files(
                self.config_path, self.web_config_path, number, self.epoch
            )
        except ConfigError as error:
            return None, error.problems
        problems = self.validate(generation)
        if problems:
            return None, problems
        self.generations.publish(generation)
        return generation, []

    def publish_locked(self) -> tuple[Generation | None, list[str]]:
        """`publish_files` under the reload lock; every error is a problem, not a raise."""
        try:
            with self.generations.locked():
                return self.publish_files()
        except (OSError, TimeoutError) as error:
            return None, [str(error)]

    def reload(self) -> list[str]:
        """Publish the files and wait until every live worker serves them; the problems."""
        try:
            with self.generations.locked():
                generation, problems = self.publish_files()
                if generation is None:
                    return problems
                return self._wait_for_workers(generation.number)
        except (OSError, TimeoutError) as error:
            return [str(error)]

    def _wait_for_workers(self, number: int) -> list[str]:
        deadline = time.monotonic() + CONFIRM_SECONDS
        while True:
            workers = self.generations.workers(self.epoch)
            failed = {pid: why for pid, (_, which, why) in workers.items() if which == number}
            behind = [pid for pid, (served, _, _) in workers.items() if served < number]
            if failed:
                pid, problem = sorted(failed.items())[0]
                return [f"published, but worker {pid} could not take it: {problem}"]
            if not behind:
                return []
            if time.monotonic() > deadline:
                pids = ", ".join(str(pid) for pid in sorted(behind))
                return [
                    f"published, but workers {pids} did not take it within "
                    f"{CONFIRM_SECONDS:g}s; the others serve it"
                ]
            time.sleep(POLL_SECONDS / 2)


class Follower:
    """A worker's watch on the current generation: applies each new one and confirms it."""

    def __init__(self, generations: Generations, epoch: int, apply: Apply, served: int) -> None:
        self.generations = generations
        self.epoch = epoch
        self._apply = apply
        self.served = served
        self._pid = os.getpid()
        self._stamp: str | None = None

    def start(self) -> None:
        """Catch up with the latest generation now, then follow in the background."""
        # Seen by reloads from now on, so none can answer before this worker catches up.
        self.generations.confirm(os.getpid(), self.epoch, self.served)
        self._stamp = self.generations.stamp()  # before catching up: no publication missed
        self.catch_up()
        offload.start_background(self._follow, "config-follower")

    def catch_up(self) -> None:
        """Apply the current generation if it is newer than what this worker serves."""
        generation = self.generations.current(self.epoch)
        if generation is None or generation.number <= self.served:
            return
        try:
            problems = self._apply(generation)
        except Exception as error:  # validated once already: only the environment differs
            log.exception("could not apply the new configuration")
            problems = [f"{type(error).__name__}: {error}"]
        for problem in problems:
            log.error(
                "could not apply the new configuration; the previous one stays",
                extra={"fields": {"generation": generation.number, "problem": problem}},
            )
        if problems:
            self.generations.confirm(
                os.getpid(), self.epoch, self.served, generation.number, problems[0]
            )
            return
        self.served = generation.number
        self.generations.confirm(os.getpid(), self.epoch, self.served)

    def _follow(self) -> None:
        while not forked_since(self._pid):
            time.sleep(POLL_SECONDS)
            now = self.generations.stamp()
            if now != self._stamp:
                self._stamp = now
                try:
                    self.catch_up()
                except Exception:  # a bad moment on disk must not end the watch
                    log.exception("could not follow the configuration")
