"""The GPU agent: reads NVML on a GPU machine and publishes heartbeats to mlbus.heartbeats."""
