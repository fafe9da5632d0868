"""What a merge method is, and the registry that finds one by name.

A method combines the members' tensors of one parameter, given the mixture's weights (summing
to 1) and, for methods relative to the seed, the seed's tensor. Its `spec` is the JSON form
jobs receive and records keep: {"name", "label", "params"}; its `label` names the merged
models it builds (`merged[task_arithmetic:1.5]/a+b`).
"""

from __future__ import annotations

from typing import ClassVar

_REGISTRY: dict[str, type[Method]] = {}


class Method:
    name: ClassVar[str]
    needs_seed: ClassVar[bool] = False  # relative to the seed model: builders pass its tensors

    def __init__(self, **params):
        self.params = params

    @property
    def label(self) -> str:
        return self.name

    def spec(self) -> dict:
        return {"name": self.name, "label": self.label, "params": dict(self.params)}

    def combine(self, weights, members, seed=None):
        """The merged tensor (float32) of the members' tensors (an iterable, read one at a time)."""
        raise NotImplementedError

    def affine(self) -> tuple[float, float] | None:
        """(a, b) where the merge is a * (weighted average of the members) + b * seed, so a
        resident builder can keep a running sum; None for other methods."""
        return None

    def mergekit(self) -> tuple[str, dict]:
        """mergekit's merge_method and its global parameters for the same merge."""
        raise NotImplementedError(f"merge method {self.name} has no mergekit equivalent")

    def __eq__(self, other):
        return isinstance(other, Method) and self.spec() == other.spec()

    def __repr__(self):
        return f"Method({self.label})"


def register(cls: type[Method]) -> type[Method]:
    _REGISTRY[cls.name] = cls
    return cls


def names() -> list[str]:
    return sorted(_REGISTRY)


def method(entry) -> Method:
    """A Method from a `mixtures.methods` entry ("linear" or {"task_arithmetic": 1.5}), from the
    spec a job received, or a Method itself."""
    if isinstance(entry, Method):
        return entry
    if isinstance(entry, str):
        name, params = entry, {}
    elif isinstance(entry, dict) and "name" in entry:
        name, params = entry["name"], entry.get("params", {})
    elif isinstance(entry, dict) and len(entry) == 1:
        (name, value), = entry.items()
        params = None if name not in _REGISTRY else _REGISTRY[name].from_value(value)
    else:
        raise ValueError(f"merge method {entry!r}: expected a name or {{name: value}}")
    if name not in _REGISTRY:
        raise ValueError(f"unknown merge method {name!r} (known: {', '.join(names())})")
    return _REGISTRY[name](**params)
