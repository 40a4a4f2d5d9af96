"""Simulated ``clearml-agent`` daemons that pull queued tasks and run them (in simulated time).

One asyncio loop ticks every agent: finished runs are closed as ``completed`` or ``failed``, free
slots pull the oldest entry of the agent's queues (in priority order), and each agent sends a
``status_report`` with GPU machine stats every ``report_interval_s``. What a run does comes from the
task's hyperparameters, so clones inherit it from their template:

- ``Sim/duration_s``: run time in seconds (else the agent's, else the configured default);
- ``Sim/fail``: ``true`` makes the run fail: the script's traceback, ending in
  ``RuntimeError: <Sim/fail_message>``, goes to the console log, and the task ends as the real
  agent ends it (``clearml_agent/commands/worker.py``): status_reason ``worker execution exit
  code <Sim/exit_code, 1>``, status_message ``Changed by clearml-agent <worker>``, which is all
  a status poll sees of the failure.

While a run lasts, its console log moves the task's ``last_update`` (as the SDK's reports do). A
task ``in_progress`` whose ``last_update`` is older than ``watchdog_s`` (2 h on the server) is
stopped by the non-responsive watchdog (``bll/task/non_responsive_tasks_watchdog.py``).

A stopped agent sends nothing and pulls nothing (its running tasks stay ``in_progress``, like a
dead machine's); it drops out of ``workers.get_all`` by ``last_seen`` and, after the worker
timeout, for good. Started again, it carries on.
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass, field

from clearml_sim import events, queues, results, workers
from clearml_sim.agent_stats import last_metrics, machine_stats
from clearml_sim.state import Doc, SimState
from clearml_sim.status import COMPLETED, FAILED, IN_PROGRESS, QUEUED, STOPPED, change_status
from clearml_sim.tasks import param
from clearml_sim.timeutil import iso

log = logging.getLogger(__name__)
_TRUE = frozenset({"true", "1", "yes", "on"})


@dataclass(slots=True)
class Run:
    """A task an agent is running."""

    task_id: str
    queue_id: str
    end_at: float
    fail: bool
    message: str
    exit_code: int = 1


@dataclass(slots=True)
class SimAgent:
    """One simulated agent daemon: a worker id, its queues by priority, GPUs and run slots."""

    name: str
    queues: list[str]
    gpus: int = 1
    duration_s: float | None = None
    slots: int = 1
    ip: str = "10.0.0.10"
    paused: bool = False
    runs: dict[str, Run] = field(default_factory=dict)
    next_report: float = 0.0
    rng: random.Random = field(default_factory=random.Random)

    def describe(self, state: SimState) -> Doc:
        return {
            "name": self.name,
            "queues": [state.queues[q]["name"] for q in self.queues if q in state.queues],
            "gpus": self.gpus,
            "slots": self.slots,
            "duration_s": self.duration_s,
            "running": list(self.runs),
            "stopped": self.paused,
        }


class AgentPool:
    """All simulated agents of a simulator and the loop that drives them."""

    def __init__(self, state: SimState) -> None:
        self.state = state
        self.agents: dict[str, SimAgent] = {}
        self._next_queue_sample = 0.0

    def add(
        self,
        name: str,
        queue_names: list[str],
        *,
        gpus: int = 1,
        duration_s: float | None = None,
        slots: int = 1,
        ip: str | None = None,
    ) -> SimAgent:
        """Add (or replace) an agent; unknown queues are created, as ``queue_name`` enqueue does."""
        if not name or not queue_names or gpus < 0 or slots < 1:
            raise ValueError("an agent needs a name, at least one queue, gpus >= 0, slots >= 1")
        qids = [
            queues.find_by_name(self.state, q) or queues.create_queue(self.state, q)["id"]
            for q in queue_names
        ]
        agent = SimAgent(
            name=name,
            queues=qids,
            gpus=gpus,
            duration_s=duration_s,
            slots=slots,
            ip=ip or f"10.0.0.{10 + len(self.agents)}",
            rng=random.Random(name),
        )
        self.agents[name] = agent
        workers.register(self.state, name, queues=qids, ip=agent.ip)
        return agent

    def set_paused(self, name: str, paused: bool) -> SimAgent:
        agent = self.agents[name]
        agent.paused = paused
        agent.next_report = 0.0
        return agent

    def remove(self, name: str) -> None:
        self.agents.pop(name)
        workers.unregister(self.state, name)

    def clear(self) -> None:
        self.agents.clear()

    async def run(self, tick_s: float) -> None:
        """Tick forever; one bad tick is logged and the loop carries on."""
        while True:
            try:
                self.tick(self.state.clock())
            except Exception:
                log.exception("simulated agents: tick failed")
            await asyncio.sleep(tick_s)

    def tick(self, now: float) -> None:
        for agent in list(self.agents.values()):
            if not agent.paused:
                self._step(agent, now)
        self._watchdog(now)
        if now >= self._next_queue_sample:
            queues.sample_queues(self.state, now)
            self._next_queue_sample = now + self.state.config.report_interval_s

    def _step(self, agent: SimAgent, now: float) -> None:
        changed = self._settle(agent, now)
        while len(agent.runs) < agent.slots and self._pull(agent, now):
            changed = True
        if changed or now >= agent.next_report:
            self._report(agent, now)

    def _settle(self, agent: SimAgent, now: float) -> bool:
        changed = False
        for tid, run in list(agent.runs.items()):
            task = self.state.tasks.get(tid)
            if task is None or task["status"] != IN_PROGRESS:
                del agent.runs[tid]  # changed behind the agent's back (reset, forced status)
            elif task["status_message"] == "stopping":
                events.add_log(self.state, tid, "Process terminated by user", worker=agent.name)
                self._finish(agent, task, STOPPED, "user abort")
            elif now >= run.end_at:
                if run.fail:
                    self._log_failure(agent, run)
                    reason = f"worker execution exit code {run.exit_code}"
                    self._finish(agent, task, FAILED, reason)
                else:
                    task["last_iteration"] = _int(param(task, "General", "epochs"), 1)
                    task["last_metrics"] = last_metrics(agent.rng)
                    results.run_outputs(self.state, task, agent.rng, task["last_iteration"])
                    self._finish(agent, task, COMPLETED, "worker execution done")
            else:
                continue
            changed = True
        return changed

    def _log_failure(self, agent: SimAgent, run: Run) -> None:
        """What the failing script printed, then the agent's own line, as a real run logs."""
        lines = [
            "Traceback (most recent call last):",
            '  File "/root/.clearml/venvs-builds/3.11/task_repository/train.py", line 42, in main',
            "    raise RuntimeError(message)",
            f"RuntimeError: {run.message}",
        ]
        events.add_log(self.state, run.task_id, "\n".join(lines), level="error", worker=agent.name)
        events.add_log(
            self.state, run.task_id, f"Process failed, exit code {run.exit_code}", worker=agent.name
        )

    def _finish(self, agent: SimAgent, task: Doc, status: str, reason: str) -> None:
        """End a run as clearml-agent does: its own words in status_message, whatever the
        script said before (the real agent's ``tasks.failed`` overwrites the SDK's text)."""
        del agent.runs[task["id"]]
        message = f"Changed by clearml-agent {agent.name}"
        change_status(self.state, task, status, force=True, reason=reason, message=message)
        log.debug("agent %s: task %s -> %s", agent.name, task["id"], status)

    def _pull(self, agent: SimAgent, now: float) -> bool:
        for qid in agent.queues:
            while (popped := queues.pop_next(self.state, qid)) is not None:
                task = self.state.tasks.get(popped[0])
                if task is not None and task["status"] == QUEUED:
                    self._start(agent, task, qid, now)
                    return True
        return False

    def _start(self, agent: SimAgent, task: Doc, qid: str, now: float) -> None:
        change_status(
            self.state,
            task,
            IN_PROGRESS,
            force=True,
            reason="worker started execution",
            message=f"Changed by clearml-agent {agent.name}",
        )
        task["last_worker"] = agent.name
        task["last_worker_report"] = iso(now)
        duration = _float(param(task, "Sim", "duration_s"), agent.duration_s)
        if duration is None:
            duration = self.state.config.task_duration_s
        fail = (param(task, "Sim", "fail") or "").strip().lower() in _TRUE
        message = param(task, "Sim", "fail_message") or "Simulated failure (Sim/fail=true)"
        code = _int(param(task, "Sim", "exit_code"), 1) or 1
        agent.runs[task["id"]] = Run(task["id"], qid, now + max(0.0, duration), fail, message, code)
        events.add_log(
            self.state, task["id"], f"Running task id [{task['id']}]:", worker=agent.name
        )

    def _watchdog(self, now: float) -> None:
        """Stop tasks in progress whose ``last_update`` is older than the threshold."""
        cutoff = iso(now - self.state.config.watchdog_s)
        for tid in list(self.state.status_index.get(IN_PROGRESS, {})):
            task = self.state.tasks[tid]
            if task["last_update"] < cutoff:
                reason = "Forced stop (non-responsive)"
                change_status(self.state, task, STOPPED, force=True, reason=reason, message=reason)
                log.info("watchdog: task %s stopped (non-responsive)", tid)

    def _report(self, agent: SimAgent, now: float) -> None:
        for tid in agent.runs:
            events.add_log(self.state, tid, "training...", worker=agent.name)
        run = next(iter(agent.runs.values()), None)
        body: Doc = {
            "worker": agent.name,
            "timestamp": int(now * 1000),
            "queues": agent.queues,
            "is_daemon": True,
            "machine_stats": machine_stats(agent.rng, agent.gpus, len(agent.runs), agent.slots),
        }
        if run is not None:
            body["task"], body["queue"] = run.task_id, run.queue_id
        workers.status_report(self.state, body, agent.ip)
        agent.next_report = now + self.state.config.report_interval_s


def _float(value: str | None, default: float | None) -> float | None:
    try:
        return float(value) if value not in (None, "") else default
    except ValueError:
        return default


def _int(value: str | None, default: int) -> int:
    try:
        return int(float(value)) if value else default
    except ValueError:
        return default
