"""Imports run one way: down the stack of role folders, and the command line loads no serving code.

The folders are layers, top to bottom (docs/design.md draws them):
server, web, probing, providers and warnings, upstream, config, model,
runtime. A module may import from its own folder and from any folder below
its own, never from one above or beside it; `cli`, `wsgi` and `__main__` sit
on top and may import anything. The test reads every import, those inside
functions and under `TYPE_CHECKING` too, from the source.

prometheus_client picks how it stores metric values when it is first
imported, and the CLI must set PROMETHEUS_MULTIPROC_DIR before that, and
patch the standard library for gevent before any lock or socket is made.
So nothing the CLI imports at the top may load prometheus_client, urllib3,
gunicorn or gevent.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "multitarget_exporter"
SERVING = ("prometheus_client", "urllib3", "gunicorn", "gevent", "werkzeug", "redis")
# Top to bottom; folders on one row sit beside each other and may not import each other.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("server",),
    ("web",),
    ("probing",),
    ("providers", "warnings"),
    ("upstream",),
    ("config",),
    ("model",),
    ("runtime",),
)
RANK = {folder: rank for rank, row in enumerate(LAYERS) for folder in row}
TOP_MODULES = {"__init__.py", "__main__.py", "cli.py", "wsgi.py"}


def folder_of(dotted: str) -> str | None:
    """The role folder a dotted module path lies in; None for the package's top."""
    parts = dotted.split(".")
    if parts[0] != "multitarget_exporter" or len(parts) < 2:
        return None
    return parts[1] if parts[1] in RANK else None


def imported(source: str, module: str) -> set[str]:
    """Every dotted name of the package that `source` (the module `module`) imports."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            base = node.module
            if node.level:  # relative: resolve against the importing module's package
                package = module.split(".")[: -node.level]
                base = ".".join([*package, node.module])
            names.add(base)
            # `from multitarget_exporter import web`: a folder named as a name
            names |= {f"{base}.{alias.name}" for alias in node.names}
    return {name for name in names if name.split(".")[0] == "multitarget_exporter"}


def wrong_way(module: str, source: str) -> list[str]:
    """The imports of `module` that go up the stack or sideways between folders."""
    own = folder_of(module)
    if own is None:  # the top: cli, wsgi, __main__ may import anything
        return []
    found = []
    for name in sorted(imported(source, module)):
        other = folder_of(name)
        if other is None:
            if name.split(".")[1:2] in (["cli"], ["wsgi"], ["__main__"]):
                found.append(f"{module} -> {name} (the top)")
            continue
        if other != own and RANK[other] <= RANK[own]:
            found.append(f"{module} -> {name}")
    return found


def package_modules() -> dict[str, str]:
    modules = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE.parent).with_suffix("")
        dotted = ".".join(relative.parts).removesuffix(".__init__")
        modules[dotted] = path.read_text(encoding="utf-8")
    return modules


def test_imports_run_down_the_stack():
    problems = [
        problem
        for module, source in package_modules().items()
        for problem in wrong_way(module, source)
    ]
    assert problems == []


@pytest.mark.parametrize(
    ("module", "source"),
    [
        ("multitarget_exporter.upstream.cache", "from multitarget_exporter.probing import state"),
        ("multitarget_exporter.model.reading", "import multitarget_exporter.config.modules"),
        ("multitarget_exporter.providers.base", "from multitarget_exporter.warnings import nws"),
        ("multitarget_exporter.web.app", "from multitarget_exporter import server"),
        ("multitarget_exporter.runtime.logs", "from multitarget_exporter.cli import main"),
        (
            "multitarget_exporter.config.web",
            "if TYPE_CHECKING:\n    from multitarget_exporter.server.guard import WebGuard",
        ),
        ("multitarget_exporter.model.units", "def f():\n    from ..upstream import client"),
    ],
)
def test_the_check_notices_an_import_that_goes_the_wrong_way(module, source):
    assert wrong_way(module, source) != []


def test_the_check_lets_imports_down_the_stack_pass():
    source = (
        "from multitarget_exporter import __version__\n"
        "from multitarget_exporter.model.reading import Reading\n"
        "from multitarget_exporter.upstream import client as upstream\n"
        "from multitarget_exporter.providers import steps\n"
    )
    assert wrong_way("multitarget_exporter.providers.open_meteo", source) == []


def test_every_folder_is_a_known_layer_and_only_the_entry_points_stay_on_top():
    folders = {
        path.name for path in PACKAGE.iterdir() if path.is_dir() and path.name != "__pycache__"
    }
    assert folders <= set(RANK), sorted(folders - set(RANK))
    top = {path.name for path in PACKAGE.glob("*.py")}
    assert top <= TOP_MODULES, sorted(top - TOP_MODULES)


def test_every_folder_init_is_empty():
    """A re-export would load gunicorn before the multiprocess directory is set."""
    for init in PACKAGE.glob("*/__init__.py"):
        assert init.read_text(encoding="utf-8").strip() == "", init


def _stem(name: str) -> str:
    return re.sub(r"(ing|ion|ed|er|es|s|d|r)$", "", name)


def test_no_two_modules_in_a_folder_differ_only_by_a_suffix():
    for folder in [PACKAGE, *(path for path in PACKAGE.iterdir() if path.is_dir())]:
        names = sorted(path.stem for path in folder.glob("*.py") if path.stem != "__init__")
        stems = [_stem(name) for name in names]
        alike = {name for name, stem in zip(names, stems, strict=True) if stems.count(stem) > 1}
        assert not alike, f"{folder.name}: {sorted(alike)}"


def test_the_suffix_check_would_notice_served_server_serving():
    assert len({_stem(name) for name in ("served", "server", "serving")}) == 1


def test_every_module_opens_with_a_one_line_docstring_of_its_job():
    for module, source in package_modules().items():
        if module.endswith("__init__") or not source.strip():
            continue
        docstring = ast.get_docstring(ast.parse(source))
        assert docstring, module
        assert docstring.splitlines()[0].strip(), module


@pytest.mark.parametrize(
    "module",
    [
        "multitarget_exporter.config.modules",
        "multitarget_exporter.config.web",
        "multitarget_exporter.cli",
    ],
)
def test_importing_loads_no_serving_library(module):
    script = (
        f"import json, sys; import {module}; "
        f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}})))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    loaded = set(json.loads(done.stdout))
    assert not loaded & set(SERVING), sorted(loaded & set(SERVING))


def test_the_check_would_notice_a_backwards_import():
    script = (
        "import json, sys; import multitarget_exporter.web.app; "
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    assert "prometheus_client" in json.loads(done.stdout)
