"""One R-GAP layer as a linear least-squares problem for its input, in float64.

For a layer z = W * x (a convolution; padding pinned to zero, so the unknowns are the
unpadded input) with known output z and known output gradient delta = dL/dz:
  * forward (weight) constraints: W * x = z, one per output unit whose value is known;
  * gradient constraints: dL/dW = sum over positions of delta (x) patch(x), one per weight.
Both are linear in x. They are solved through their normal equations, built from convolutions
rather than dense matrices: the gradient block's Gram is identical for every input channel,
so it is the Kronecker product of the identity with one small (H*W x H*W) matrix.
Each block is scaled to unit Frobenius norm of its Gram so that neither dominates the rank.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg
import torch
from torch.nn.grad import conv2d_input, conv2d_weight

from gradinv.attacks.rgap_chain import Step

#: Pivots of the Gram matrix below this fraction of its largest diagonal count as rank loss
#: (singular values of the stacked system below about 1e-5 of the largest).
RANK_TOLERANCE = 1e-10
#: Ridge, relative to the Gram's mean diagonal, that picks a near minimum-norm solution
#: in rank-deficient directions and is negligible elsewhere.
RIDGE = 1e-12


@dataclass
class LayerSystem:
    """The normal equations of one layer's constraints and the counts for the rank table."""

    gram: torch.Tensor
    rhs: torch.Tensor
    weight_constraints: int
    gradient_constraints: int

    @property
    def unknowns(self) -> int:
        return self.gram.shape[0]

    def rank(self) -> int:
        """Numerical rank of the stacked constraints, by Cholesky with full pivoting (LAPACK pstrf)."""
        gram = self.gram.numpy()
        tol = RANK_TOLERANCE * float(np.max(np.diag(gram)))
        _, _, rank, _ = scipy.linalg.lapack.dpstrf(gram, tol=tol)
        return int(rank)

    def solve(self) -> torch.Tensor:
        """The least-squares input (flattened), with a tiny ridge for deficient directions."""
        ridge = RIDGE * float(self.gram.diagonal().mean())
        eye = torch.eye(self.unknowns, dtype=self.gram.dtype)
        factor = torch.linalg.cholesky(self.gram + ridge * eye)
        return torch.cholesky_solve(self.rhs[:, None], factor)[:, 0]


def _forward_block(step: Step, z: torch.Tensor, known: torch.Tensor):
    """Gram and right-hand side of the forward constraints on the known output units."""
    n = step.unknowns
    basis = torch.eye(n, dtype=torch.float64).view(n, *step.in_shape)
    columns = torch.nn.functional.conv2d(basis, step.weight, None, step.stride, step.padding)
    columns = columns.reshape(n, -1)[:, known.flatten()]
    target = z.flatten()[known.flatten()]
    if step.bias is not None:
        target = target - step.bias[:, None, None].expand(step.out_shape).flatten()[known.flatten()]
    return columns @ columns.T, columns @ target, int(known.sum())


def _gradient_block(step: Step, delta: torch.Tensor, weight_grad: torch.Tensor):
    """Gram and right-hand side of the weight-gradient constraints (linear in the input)."""
    channels, height, width = step.in_shape
    pixels = height * width
    out, _, kh, kw = step.weight.shape
    basis = torch.eye(pixels, dtype=torch.float64).view(1, pixels, height, width)
    jac = conv2d_weight(basis, (out, pixels, kh, kw), delta[None], step.stride, step.padding)
    jac = jac.permute(0, 2, 3, 1).reshape(-1, pixels)
    gram = torch.kron(torch.eye(channels, dtype=torch.float64), jac.T @ jac)
    rhs = conv2d_input((1, *step.in_shape), weight_grad, delta[None], step.stride, step.padding)
    return gram, rhs.flatten(), weight_grad.numel()


def layer_system(
    step: Step, z: torch.Tensor, known: torch.Tensor, delta: torch.Tensor, weight_grad: torch.Tensor
) -> LayerSystem:
    """The constraints on ``step``'s input given its pre-activation ``z`` (valid where ``known``),
    its output gradient ``delta`` and the shared gradient of its weight, all float64."""
    f_gram, f_rhs, n_forward = _forward_block(step, z, known)
    g_gram, g_rhs, n_gradient = _gradient_block(step, delta, weight_grad.reshape(step.weight.shape))
    gram = torch.zeros_like(g_gram)
    rhs = torch.zeros_like(g_rhs)
    for block, block_rhs in ((f_gram, f_rhs), (g_gram, g_rhs)):
        scale = float(torch.linalg.matrix_norm(block))
        if scale > 0:
            gram += block / scale
            rhs += block_rhs / scale
    return LayerSystem(gram, rhs, n_forward, n_gradient)
