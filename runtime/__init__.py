"""Runtime helpers every mlbus worker needs: settings base, Kafka producer and consumer loop,
retries, logging context, metrics, MongoDB client, HTTP plumbing. No business logic lives here."""
