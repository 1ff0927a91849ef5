"""What every provider offers the probe: one fetch that ends in a ProbeResult."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Protocol

if TYPE_CHECKING:
    from multitarget_exporter.config.modules import ModuleConfig
    from multitarget_exporter.config.provider_kinds import ProviderKind
    from multitarget_exporter.model.deadline import Deadline
    from multitarget_exporter.model.reading import ProbeResult
    from multitarget_exporter.model.targets import Location
    from multitarget_exporter.runtime.probelog import ProbeLog
    from multitarget_exporter.upstream.gate import Gate
    from multitarget_exporter.upstream.revalidation import Validators


class Provider(Protocol):
    """A weather API. Built once per module and process; `fetch` is thread-safe."""

    kind: ClassVar[ProviderKind]  # what the configuration knows of it (config/provider_kinds.py)
    name: ClassVar[str]

    # Upstream calls one fetch costs, as the module's `rate_limit` counts them.
    calls_per_fetch: int

    def __init__(
        self, module: ModuleConfig, validators: Validators | None = None, gate: Gate | None = None
    ) -> None:
        """`validators`: where answers kept for HTTP revalidation go (the cache's); `gate`:
        what every upstream call of the module passes (budget, Retry-After, breaker)."""
        ...

    def stored(self, location: Location) -> ProbeResult | None:
        """A result that needs no upstream call and no budget (a kept answer still fresh
        by its `Expires`), or None."""
        ...

    def unsupported(self, location: Location) -> str | None:
        """Why this provider cannot look up `location` (a 400), or None."""
        ...

    def fetch(self, location: Location, deadline: Deadline, log: ProbeLog) -> ProbeResult:
        """Ask the upstream; every fault becomes a ProbeResult with a Failure."""
        ...
