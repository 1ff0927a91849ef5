"""A probe request checked before any call: one module, one target, a location it may ask for.

Everything here is decided from the query string and the configuration in
force; a request that cannot name a probe is a `BadRequest` whose message is
the 400's one line, and nothing upstream is asked.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from multitarget_exporter.config.modules import DEFAULT_MODULE, ModuleConfig
from multitarget_exporter.model.targets import Location, TargetError, parse_target
from multitarget_exporter.probing.probe import Route
from multitarget_exporter.probing.state import ServingState
from multitarget_exporter.warnings.lookup import WarningsLookup


class BadRequest(Exception):
    """A probe request that names no probe; the message is the 400's one line."""


class QueryArgs(Protocol):
    """The query string as werkzeug parses it (a MultiDict): every value of a name."""

    def getlist(self, key: str) -> list[str]: ...


@dataclass(frozen=True, slots=True)
class ProbeRequest:
    """What a probe request names: the module with its fallback, the target and its location."""

    route: Route
    fallback: Route | None
    target: str
    location: Location
    warnings: WarningsLookup | None = None

    @property
    def module(self) -> ModuleConfig:
        return self.route.module


def _single(args: QueryArgs, name: str) -> str:
    values = args.getlist(name)
    if len(values) > 1:
        raise BadRequest(f"{name} parameter given more than once")
    return values[0] if values else ""


def parse_probe_request(state: ServingState, args: QueryArgs) -> ProbeRequest:
    """The probe `args` ask for under `state`'s configuration; BadRequest if they name none."""
    target = _single(args, "target")
    module_name = _single(args, "module") or DEFAULT_MODULE
    module = state.config.modules.get(module_name)
    if module is None:
        # The name is not echoed: a reply must never help confirm a guessed secret.
        known = ", ".join(sorted(state.config.modules))
        raise BadRequest(f"unknown module (known: {known})")
    try:
        location = parse_target(target)
    except TargetError as error:
        raise BadRequest(f"bad target: {error}") from None
    target = target.strip()
    if not module.allows(target):
        raise BadRequest(f"target not allowed by module {module_name}'s allowed_targets")
    route = _route(state, module_name)
    unsupported = route.provider.unsupported(location)
    if unsupported:
        raise BadRequest(f"bad target for module {module_name}: {unsupported}")
    fallback = _route(state, module.fallback) if module.fallback else None
    return ProbeRequest(route, fallback, target, location, state.warnings.get(module_name))


def _route(state: ServingState, name: str) -> Route:
    return Route(state.config.modules[name], state.providers[name], state.buckets.get(name))
