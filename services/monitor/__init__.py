"""Follows the ClearML tasks mlbus enqueued: running, completed, failed, stopped."""
