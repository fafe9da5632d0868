"""Merging checkpoints by named methods, in mergekit's shape: a reader of safetensors
checkpoints (`reader`), one small module per method registered by name (`method`, `linear`,
`task_arithmetic`), and two builders: `streamed` (one tensor of each member at a time, any
number of members) and `resident` (members held in memory, mixtures built by a running sum).

Method names resolve without importing torch (the workflow's planner uses them); the readers
and builders load torch on first use.
"""

from importlib import import_module

from shardmix.merging.method import Method, method, names, register  # noqa: F401
from shardmix.merging import linear, task_arithmetic  # noqa: F401,E402  (registers them)

_LAZY = {"MergeError": "reader", "Reader": "reader", "checkpoint_files": "reader", "read_header": "reader",
         "stored_bytes": "reader", "merge_into": "streamed", "check_compatible": "streamed",
         "ResidentPool": "resident", "resident_bytes": "resident", "coefficients": "resident",
         "update_order": "resident"}


def __getattr__(name):
    if name in _LAZY:
        return getattr(import_module(f"shardmix.merging.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'shardmix.merging' has no attribute {name!r}")


__all__ = ["Method", "method", "names", "register", *_LAZY]
