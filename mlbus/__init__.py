"""The `mlbus` command line and the local stack (servers, services, dev token issuer)."""
