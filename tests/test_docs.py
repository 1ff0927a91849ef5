"""The docs: every curl example would work as written, and every link resolves."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest

ROOT = Path(__file__).parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def curl_commands(text: str) -> list[list[str]]:
    commands = []
    for line in text.splitlines():
        line = line.strip().split("  #")[0]
        if line.startswith("curl "):
            commands.append(shlex.split(line))
    return commands


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_curl_examples_send_only_ascii_request_lines(doc):
    """curl sends a URL's query as given; gunicorn refuses raw non-ASCII bytes in it, and a
    space ends the request target. Such values must go through --data-urlencode."""
    for command in curl_commands(doc.read_text("utf-8")):
        for word in command[1:]:
            if not word.startswith("http") and "localhost" not in word:
                continue
            for _name, value in parse_qsl(urlsplit(word).query, keep_blank_values=True):
                assert value.isascii() and " " not in value, (doc.name, command)
            assert word.isascii() and " " not in word, (doc.name, command)
            assert "%" not in urlsplit(word).query, (
                f"{doc.name}: encode with curl -G --data-urlencode, not by hand: {command}"
            )


def test_the_docs_show_how_to_send_a_non_ascii_target():
    commands = [c for doc in DOCS for c in curl_commands(doc.read_text("utf-8"))]
    encoded = [c for c in commands if "--data-urlencode" in c and "-G" in c]
    assert any(not " ".join(c).isascii() for c in encoded)


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_relative_link_resolves(doc):
    text = doc.read_text("utf-8")
    for target in _LINK.findall(text):
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        path, _, anchor = target.partition("#")
        file = (doc.parent / path).resolve() if path else doc
        assert file.exists(), f"{doc.name}: {target}"
        if anchor and file.suffix == ".md":
            assert anchor in anchors(file.read_text("utf-8")), f"{doc.name}: {target}"


def anchors(markdown: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    found = set()
    for line in markdown.splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            found.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return found


def test_every_metric_family_the_collectors_build_is_in_the_metrics_reference():
    """A family added to a collector must be documented in docs/metrics.md."""
    import ast

    reference = (ROOT / "docs" / "metrics.md").read_text("utf-8")
    names = set()
    for path in (ROOT / "multitarget_exporter" / "web").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            value = node.value if isinstance(node, ast.Constant) else None
            if isinstance(value, str) and re.fullmatch(r"(probe|weather)_[a-z0-9_]+", value):
                names.add(value)
    assert len(names) > 40, names  # the collectors were read
    assert sorted(name for name in names if f"`{name}" not in reference) == []


def test_every_self_metric_is_in_the_operations_table():
    """A metric added to /metrics must be documented in docs/operations.md."""
    source = (ROOT / "multitarget_exporter" / "runtime" / "selfmetrics.py").read_text("utf-8")
    names = set(re.findall(r'"(multitarget_exporter_[a-z0-9_]+)"', source))
    assert len(names) > 10, names  # the self-metrics were read
    table = (ROOT / "docs" / "operations.md").read_text("utf-8")
    assert sorted(name for name in names if f"`{name}" not in table) == []
