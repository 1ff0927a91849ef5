"""Configuration files on disk: read whole, parsed as YAML, written privately and atomically.

Both configuration files (`--config.file`, `--web.config.file`) and the reload
generations that carry them between processes go through these few helpers,
and every problem they meet is a `ConfigError` with one line saying why.
"""

from __future__ import annotations

import os
from typing import Any

import yaml


class ConfigError(Exception):
    """A configuration that cannot be used; `problems` holds one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def read_file(path: str) -> bytes:
    """A configuration file's bytes, or ConfigError with one line saying why they cannot be read."""
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as error:
        raise ConfigError([f"cannot read {path}: {error.strerror}"]) from None


def write_private_file(path: str, text: str) -> None:
    """Write `path` whole or not at all (a reader sees the old file or the new one),
    readable by this user only: generations and inline certificates hold secrets."""
    temporary = f"{path}.{os.getpid()}.tmp"
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(temporary, path)


def parse_yaml(text: bytes, path: str) -> Any:
    """A YAML document, or ConfigError with one line saying why it is not one."""
    try:
        return yaml.safe_load(text.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError([f"cannot read {path}: not UTF-8 text"]) from None
    except yaml.YAMLError as error:
        raise ConfigError([f"{path} is not valid YAML: {' '.join(str(error).split())}"]) from None


def read_yaml(path: str) -> Any:
    """A YAML file's document, or ConfigError with one line saying why it cannot be read."""
    return parse_yaml(read_file(path), path)
