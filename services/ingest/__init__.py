"""The HTTP bridge: authenticates, validates, resolves opaque ids, publishes to Kafka."""
