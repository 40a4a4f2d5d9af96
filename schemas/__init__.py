"""The shared contract of mlbus: every message on every topic, and the topic registry.

Services import only this package and `runtime`; never each other.
"""
