"""Follows the ClearML tasks mlbus enqueued (running, completed, failed, stopped), and joins
ClearML workers and queues with GPU heartbeats into resource and queue state."""
