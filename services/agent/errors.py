"""The agent's error tree. Neither error stops the agent: each becomes a log line and, for NVML,
the reason carried by CPU-only heartbeats.

    AgentError
    ├── NvmlUnavailableError    PermanentError (runtime.retry): pynvml missing, libnvidia-ml.so
    │                           missing, or nvmlInit failed; heartbeats go on without GPUs
    └── PublishFailedError      RetriableError (runtime.retry): Kafka did not take a heartbeat;
                                logged, and the next tick publishes a fresh one

A failure on one GPU, or on one field of one GPU, is not an exception at this level: it is
recorded in that reading's `error` and the other readings go on.
"""

from __future__ import annotations

from runtime.retry import PermanentError, RetriableError


class AgentError(Exception):
    """Base of the agent's own errors."""


class NvmlUnavailableError(AgentError, PermanentError):
    """NVML cannot be loaded or initialised on this machine; `str()` is the reason heartbeats
    carry in `nvml_error`."""

    code = "nvml_unavailable"


class PublishFailedError(AgentError, RetriableError):
    """A heartbeat was not accepted by Kafka (broker away, timeout)."""

    def __init__(self, machine_id: str, reason: str) -> None:
        super().__init__(f"heartbeat of {machine_id} not published: {reason}")
        self.machine_id = machine_id
