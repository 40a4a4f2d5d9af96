"""Agent settings (env prefix MLBUS_AGENT_; connections also MLBUS_); command-line flags override
them."""

from __future__ import annotations

import socket
from typing import Self

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from runtime.settings import BusSettings


class AgentSettings(BusSettings):
    """What a GPU machine's agent is told: who it is, how often to report, real or simulated."""

    model_config = SettingsConfigDict(env_prefix="MLBUS_AGENT_", frozen=True, extra="ignore")

    machine_id: str = Field(
        default_factory=socket.gethostname,
        min_length=1,
        description="Heartbeat key; the host name by default, as ClearML worker ids use it.",
    )
    interval_s: float = Field(default=5.0, gt=0, description="Seconds between heartbeats.")
    simulate: int = Field(default=0, ge=0, description="Fake GPUs per machine; 0 reads NVML.")
    machines: int = Field(
        default=1, ge=1, description="Simulated machines from this process, `<machine_id>-<k>`."
    )
    machine_names: tuple[str, ...] = Field(
        default=(),
        description="Names of the simulated machines, instead of `<machine_id>-<k>`: the host "
        "part of ClearML worker ids, so the monitor joins heartbeats with workers.",
    )
    seed: int | None = Field(default=None, description="Seed of the simulation; None: random.")
    linger_ms: int = Field(default=5, ge=0, description="Producer linger, to batch machines.")
    nvml_retry_reads: int = Field(
        default=12, ge=1, description="After NVML fails, reads before nvmlInit is tried again."
    )

    @model_validator(mode="after")
    def _machines_need_simulation(self) -> Self:
        if (self.machines > 1 or len(self.machine_names) > 1) and not self.simulate:
            raise ValueError("machines > 1 needs simulate > 0: one process reads one real host")
        return self
