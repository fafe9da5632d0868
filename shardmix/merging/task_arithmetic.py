"""Task arithmetic (Ilharco et al. 2023): the seed plus lam times the weighted sum of the members'
deltas from it; lam = 1 is the weighted average, lam > 1 undoes the averaging's dilution."""

from shardmix.merging.linear import Linear
from shardmix.merging.method import Method, register


@register
class TaskArithmetic(Method):
    name = "task_arithmetic"
    needs_seed = True

    def __init__(self, lam: float):
        super().__init__(lam=float(lam))

    @classmethod
    def from_value(cls, value) -> dict:
        return {"lam": float(value)}

    @property
    def label(self) -> str:
        return f"{self.name}:{self.params['lam']:g}"

    def combine(self, weights, members, seed=None):
        seed = seed.float()
        return seed + self.params["lam"] * (Linear().combine(weights, members) - seed)

    def affine(self):
        lam = self.params["lam"]
        return lam, 1.0 - lam

    def mergekit(self):
        # mergekit scales each member's delta by its weight and the sum by lambda
        return "task_arithmetic", {"normalize": False, "lambda": self.params["lam"]}
