"""An Apache Kafka 4.x broker in KRaft mode (one node: broker and controller) on 127.0.0.1."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import uuid
from pathlib import Path

from mlbus.servers.process import REPO, Child, ServerError, free_port, port_open, run_script

DEPLOY = REPO / "deploy" / "kafka"

_PROPERTIES = """\
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:{controller}
listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller}
advertised.listeners=PLAINTEXT://127.0.0.1:{port}
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs={data}
num.partitions=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=6
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
log.flush.interval.messages=9223372036854775807
# Sized for a laptop or a 2-core CI box, not a cluster: fewer threads to wake per request.
num.network.threads=1
num.io.threads=2
background.threads=2
"""


class KafkaServer:
    """Start and stop one local broker; its data lives in `home`."""

    def __init__(self, home: Path, port: int | None = None) -> None:
        self.home = home
        self.port = port or free_port()
        self.controller_port = free_port()
        self.child: Child | None = None

    @property
    def bootstrap(self) -> str:
        """Bootstrap servers for clients."""
        return f"127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 90.0) -> None:
        """Fetch jars if needed, format storage on first start, start, wait until it serves."""
        if port_open(self.port):
            raise ServerError(f"port {self.port} is taken; is another Kafka running?")
        libs = run_script(DEPLOY / "fetch.sh")
        java = shutil.which("java")
        if java is None:
            raise ServerError("java not found: Kafka 4 needs Java 17 or newer")
        self.home.mkdir(parents=True, exist_ok=True)
        props = self.home / "server.properties"
        data = self.home / "data"
        props.write_text(
            _PROPERTIES.format(port=self.port, controller=self.controller_port, data=data)
        )
        classpath = f"{libs}/*"
        log4j = f"-Dlog4j2.configurationFile={DEPLOY / 'log4j2.yaml'}"
        if not (data / "meta.properties").exists():
            subprocess.run(  # noqa: S603 - fixed argv
                [
                    java,
                    "-cp",
                    classpath,
                    log4j,
                    "kafka.tools.StorageTool",
                    "format",
                    "-t",
                    uuid.uuid4().hex[:22],
                    "-c",
                    str(props),
                ],
                check=True,
                stdout=subprocess.DEVNULL,
            )
        self.child = Child(
            "kafka",
            [
                java,
                "-Xms256m",
                "-Xmx768m",
                # One small heap on few cores: the serial collector spends the least CPU
                # (G1's concurrent threads cost more than its pauses save here).
                "-XX:+UseSerialGC",
                log4j,
                "-cp",
                classpath,
                "kafka.Kafka",
                str(props),
            ],
            self.home / "kafka.log",
        )
        self.child.start()
        self.child.wait_ready(self._serves, timeout_s)

    def _serves(self) -> bool:
        if not port_open(self.port):
            return False
        return asyncio.run(_metadata_ok(self.bootstrap))

    def stop(self) -> None:
        """Controlled shutdown (SIGTERM), then kill if it hangs."""
        if self.child is not None:
            self.child.stop(timeout_s=30)


async def _metadata_ok(bootstrap: str) -> bool:
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.errors import KafkaError

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=3000)
    try:
        await admin.start()
        await admin.describe_cluster()
    except (KafkaError, OSError):
        return False
    finally:
        await admin.close()
    return True
