"""What a handler receives and how endpoints are declared."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from clearml_sim import errors

if TYPE_CHECKING:
    from clearml_sim.simulator import Simulator

Doc = dict[str, Any]


@dataclass(slots=True)
class Call:
    """One API call: the merged request body (or json-lines batch) and the simulator."""

    sim: Simulator
    body: Doc
    batch: list[Doc] | None = None
    client_ip: str = "127.0.0.1"
    authorization: str | None = None
    #: The task's status when the call arrived, for endpoints that change a status: the server
    #: reads the task, then updates it on condition that the status is still this one.
    seen_status: str | None = None

    def require(self, key: str) -> Any:
        """A required body field (400/11 when missing)."""
        value = self.body.get(key)
        if value is None or value == "":
            raise errors.missing_fields(key)
        return value


Handler = Callable[[Call], Doc]


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A ``service.action`` with its handler and the ``min_version`` reported as actual_version."""

    name: str
    handler: Handler
    min_version: str = "1.0"
    auth: bool = True
    #: Changes ``body["task"]``'s status with the server's conditional update (400/121 when the
    #: status moved between the read and the write, e.g. during injected latency).
    changes_status: bool = False
