"""Unit tests of shardmix.naming."""

from __future__ import annotations

import pytest

from shardmix import naming
from shardmix.naming import mixture_name, safe_name


def test_names_are_safe_and_mixtures_canonical():
    assert safe_name("Web / Text (en)") == "Web_Text_en"
    assert mixture_name(["b", "a", "c"]) == mixture_name(["c", "b", "a"]) == "a+b+c"


def test_weighted_names_are_canonical_and_uniform_weights_name_the_subset():
    assert mixture_name({"b": 0.75, "a": 0.25}) == mixture_name({"a": 3, "b": 9}) == "a@0.25+b@0.75"
    assert mixture_name({"c": 1, "a": 1, "b": 1}) == mixture_name(["a", "b", "c"]) == "a+b+c"
    assert mixture_name({"a": 1 / 3, "b": 1 / 3, "c": 1 / 3 + 1e-5}) == "a+b+c"
    assert mixture_name({"a": 0.5, "b": 0.5, "c": 0.0}) == "a+b"  # a zero weight leaves the mixture
    name = mixture_name({"x": 0.2, "y": 0.3, "z": 0.5})
    assert naming.weights(name) == {"x": 0.2, "y": 0.3, "z": 0.5}
    assert naming.weights_column(name) == "0.2+0.3+0.5" and naming.weights_column("a+b+c") == "0.3333+0.3333+0.3333"
    units = naming.quantize({"a": 1, "b": 1, "c": 1, "d": 4})
    assert sum(units.values()) == naming.UNITS
    with pytest.raises(naming.MixtureNameError):
        mixture_name({"a": 0, "b": 0})
