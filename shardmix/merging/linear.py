"""Weighted parameter average: sum_i w_i * theta_i (the paper's merge; mergekit's `linear`)."""

from shardmix.merging.method import Method, register


@register
class Linear(Method):
    name = "linear"

    @classmethod
    def from_value(cls, value) -> dict:
        raise ValueError("merge method linear takes no value: write it as `linear`")

    def combine(self, weights, members, seed=None):
        acc = None
        for w, t in zip(weights, members):
            term = w * t.float()
            acc = term if acc is None else acc + term
        return acc

    def affine(self):
        return 1.0, 0.0

    def mergekit(self):
        return "linear", {"normalize": False}
