"""Real servers the project starts itself: Kafka (KRaft) and FerretDB (MongoDB wire protocol).

Used by `mlbus up` and by the test fixtures, so tests run against exactly what users run.
"""
