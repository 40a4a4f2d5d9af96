# The two commands of the README, and `make check` (format, lint, types, deploy/ manifests and rules).
.PHONY: run test check bootstrap

bootstrap:
	@bash scripts/bootstrap.sh

run: bootstrap
	@.venv/bin/mlbus up

test: bootstrap
	@.venv/bin/python -m pytest

check: bootstrap
	@.venv/bin/ruff format --check .
	@.venv/bin/ruff check .
	@.venv/bin/mypy .
	@bash deploy/check.sh
