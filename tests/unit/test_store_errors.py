"""runtime.mongo.store_errors: pymongo's transient errors leave as StoreUnavailable, others as
they are; each service's error tree names the same class."""

from __future__ import annotations

import pytest
from pymongo.errors import AutoReconnect, DuplicateKeyError, ServerSelectionTimeoutError

from runtime.mongo import StoreUnavailable, store_errors
from runtime.retry import RetriableError
from services.enqueuer import errors as enqueuer_errors
from services.ingest import store as ingest_store
from services.logger import errors as logger_errors
from services.monitor import errors as monitor_errors
from services.notifier import errors as notifier_errors


@pytest.mark.parametrize("raw", [AutoReconnect("primary gone"), ServerSelectionTimeoutError("x")])
def test_transient_errors_become_store_unavailable(raw: Exception) -> None:
    with pytest.raises(StoreUnavailable) as caught, store_errors():
        raise raw
    assert isinstance(caught.value, RetriableError)
    assert caught.value.__cause__ is raw
    assert str(caught.value) == str(raw)


def test_other_errors_pass_through() -> None:
    with pytest.raises(DuplicateKeyError), store_errors():
        raise DuplicateKeyError("E11000")


def test_every_service_catches_the_same_class() -> None:
    for module in (enqueuer_errors, ingest_store, logger_errors, monitor_errors, notifier_errors):
        assert module.StoreUnavailable is StoreUnavailable
