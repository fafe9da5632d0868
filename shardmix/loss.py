"""The training loss of a causal LM without its whole logits tensor.

Plain `cross_entropy(model(x).logits.float(), y)` holds, per micro-batch, the logits in the
compute dtype, their fp32 copy and its gradient: 3 x tokens x vocabulary values, 2.4 GB for
four 1,024-token windows over a 50 K vocabulary, more than a 124M model's activations.
`lean_nll` runs the model's body, then the output layer and the cross-entropy over chunks of
positions, computing each chunk's gradient while its logits exist (the approach of Liger's
fused linear cross-entropy): peak extra memory is one chunk's logits plus the output layer's
gradient, whatever the micro-batch. The sums are the same as the plain loss's to float
rounding (tests/test_training.py).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# logits per chunk: 2**25 values (128 MiB in fp32), e.g. 667 positions of a 50 K vocabulary
CHUNK_VALUES = 2 ** 25
# heads that scale or cap their logits apply more than a linear layer: they take the plain path
SCALED_HEAD_KEYS = ("final_logit_softcapping", "logit_scale", "logits_scaling", "output_multiplier_scale")


def supports(model) -> bool:
    """Whether `model`'s logits are a plain linear map of its body's last hidden state."""
    head = model.get_output_embeddings()
    config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    if not isinstance(head, torch.nn.Linear) or getattr(model, "base_model", None) is model:
        return False
    return all(getattr(config, key, None) in (None, 1, 1.0) for key in SCALED_HEAD_KEYS)


def lean_nll(model, body, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Summed next-token NLL of targets `y` after inputs `x`, never holding all logits.
    `body` is the model's base model (compiled or not)."""
    hidden = body(input_ids=x, use_cache=False).last_hidden_state
    head = model.get_output_embeddings()
    return _LinearNLL.apply(hidden.reshape(-1, hidden.shape[-1]), head.weight, head.bias, y.reshape(-1))


def plain_nll(model, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The same sum through the model's own logits, for heads `lean_nll` does not support."""
    logits = model(input_ids=x, use_cache=False).logits
    return F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), y.reshape(-1), reduction="sum")


class _LinearNLL(torch.autograd.Function):
    """sum_i -log softmax(h_i W^T + b)[y_i], its gradients computed in the forward pass chunk by
    chunk (the loss is a scalar, so backward only scales them)."""

    @staticmethod
    def forward(ctx, hidden, weight, bias, targets):
        compute = (torch.get_autocast_dtype(hidden.device.type)
                   if torch.is_autocast_enabled(hidden.device.type) else weight.dtype)
        w = weight.to(compute)
        grad_hidden = torch.empty_like(hidden)
        grad_weight = torch.zeros_like(weight, dtype=torch.float32)
        grad_bias = torch.zeros_like(bias, dtype=torch.float32) if bias is not None else None
        total = torch.zeros((), dtype=torch.float32, device=hidden.device)
        rows = max(1, CHUNK_VALUES // weight.shape[0])
        with torch.autocast(hidden.device.type, enabled=False):
            for start in range(0, hidden.shape[0], rows):
                h = hidden[start:start + rows].to(compute)
                t = targets[start:start + rows]
                logits = (h @ w.t()).float()
                if bias is not None:
                    logits += bias.float()
                logp = torch.log_softmax(logits, dim=-1)
                total += -logp.gather(1, t[:, None]).sum()
                grad = logp.exp_()  # d(sum NLL)/d logits = softmax - one-hot
                grad[torch.arange(len(t), device=t.device), t] -= 1
                g = grad.to(compute)
                grad_hidden[start:start + rows] = (g @ w).to(hidden.dtype)
                if compute == torch.float32:
                    grad_weight.addmm_(g.t(), h)  # no vocabulary x width temporary
                else:
                    grad_weight += (g.t() @ h).float()
                if bias is not None:
                    grad_bias += grad.sum(0)
        ctx.save_for_backward(grad_hidden, grad_weight, grad_bias)
        ctx.dtypes = (weight.dtype, bias.dtype if bias is not None else None)
        return total

    @staticmethod
    def backward(ctx, grad_output):
        grad_hidden, grad_weight, grad_bias = ctx.saved_tensors
        weight_dtype, bias_dtype = ctx.dtypes
        return (grad_hidden * grad_output.to(grad_hidden.dtype), (grad_weight * grad_output).to(weight_dtype),
                (grad_bias * grad_output).to(bias_dtype) if grad_bias is not None else None, None)
