"""Turns heartbeats, queue state and task events into deduplicated, grouped notifications, and
delivers every notification to MongoDB and to configured webhooks."""
