"""How a request's `input` becomes ClearML hyperparameters, and how opaque ids are made."""

from __future__ import annotations

from services.enqueuer.params import to_hyperparams
from services.ingest.mappings import opaque_id


def test_plain_keys_go_to_general_and_slashed_keys_to_their_section() -> None:
    params = to_hyperparams({"lr": 0.01, "Args/batch_size": 64, "Args": {"epochs": 3}})
    assert params == [
        {"section": "General", "name": "lr", "value": "0.01", "type": "float"},
        {"section": "Args", "name": "batch_size", "value": "64", "type": "int"},
        {"section": "Args", "name": "epochs", "value": "3", "type": "int"},
    ]


def test_values_are_strings_with_a_type_hint() -> None:
    params = {
        p["name"]: p
        for p in to_hyperparams(
            {
                "flag": True,
                "name": "resnet",
                "layers": [64, 32],
                "none": None,
                "deep": {"a": {"b": 1}},
            }
        )
    }
    assert (params["flag"]["value"], params["flag"]["type"]) == ("true", "bool")
    assert (params["name"]["value"], params["name"]["type"]) == ("resnet", "str")
    assert (params["layers"]["value"], params["layers"]["type"]) == ("[64,32]", "list")
    assert params["none"]["value"] == ""
    assert params["a"] == {"section": "deep", "name": "a", "value": '{"b":1}', "type": "dict"}


def test_opaque_ids_are_stable_secret_dependent_and_not_the_real_id() -> None:
    real = "ee28605ba52eca2f944da36b799378d3"
    one, again = opaque_id(b"secret-1", real), opaque_id(b"secret-1", real)
    other = opaque_id(b"secret-2", real)
    assert one == again
    assert one != other
    assert len(one) == 64
    assert real not in one
