"""One R-GAP layer as a linear least-squares problem for its input, in float64.

For a layer z = W * x (a convolution; padding pinned to zero, so the unknowns are the
unpadded input) with known output z and known output gradient delta = dL/dz:
  * forward constraints: W * x = z, one per output unit whose value is known;
  * weight-gradient constraints: dL/dW = sum over positions of delta (x) patch(x), one per weight.
Both are linear in x. They are solved through their normal equations, built from convolutions
rather than dense matrices: the gradient block's Gram is identical for every input channel,
so it is the Kronecker product of the identity with one small (H*W x H*W) matrix.
Each block is scaled to unit Frobenius norm of its Gram so that neither dominates the rank.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg
import scipy.sparse
import torch
from torch.nn.grad import conv2d_input, conv2d_weight

from gradinv.attacks.rgap_chain import Step

#: Pivots of the Gram matrix below this fraction of its largest diagonal count as rank loss
#: (singular values of the stacked system below about 1e-5 of the largest).
RANK_TOLERANCE = 1e-10
#: Ridge, relative to the Gram's mean diagonal, that picks a near minimum-norm solution
#: in rank-deficient directions and is negligible elsewhere.
RIDGE = 1e-12
#: Forward matrices denser than this (linear layers) are multiplied as dense arrays.
DENSE_FRACTION = 0.05


@dataclass
class LayerSystem:
    """The normal equations of one layer's constraints and the counts for the rank table."""

    gram: torch.Tensor
    rhs: torch.Tensor
    forward_constraints: int
    weight_gradient_constraints: int

    @property
    def unknowns(self) -> int:
        return self.gram.shape[0]

    def solve(self) -> tuple[torch.Tensor, int]:
        """The least-squares input (flattened) and the numerical rank of the constraints.

        Cholesky with full pivoting (LAPACK pstrf) stops at pivots below ``RANK_TOLERANCE``
        of the largest diagonal: that is the rank. A full-rank system is solved with that
        factor; a deficient one with a tiny ridge, which picks a near minimum-norm solution.
        """
        gram, rhs = self.gram.numpy(), self.rhs.numpy()
        tol = RANK_TOLERANCE * float(np.max(np.diag(gram)))
        factor, pivots, rank, _ = scipy.linalg.lapack.dpstrf(gram, tol=tol)
        if rank == self.unknowns:
            order = pivots - 1
            solution = np.empty_like(rhs)
            solution[order] = scipy.linalg.cho_solve((factor, False), rhs[order])
        else:
            ridge = RIDGE * float(np.mean(np.diag(gram)))
            solution = scipy.linalg.solve(gram + ridge * np.eye(self.unknowns), rhs, assume_a="pos")
        return torch.from_numpy(solution), int(rank)


def forward_matrix(step: Step) -> scipy.sparse.csr_matrix:
    """The layer as a sparse (outputs x inputs) matrix; padded positions are zero, not unknowns.

    Unfolding an image of pixel numbers tells which input pixel each kernel tap reads at each
    output position (0 = padding); the weight of that tap is the matrix entry.
    """
    channels, height, width = step.in_shape
    out, _, kh, kw = step.weight.shape
    numbers = torch.arange(1, step.unknowns + 1, dtype=torch.float64).view(1, channels, height, width)
    taps = torch.nn.functional.unfold(numbers, (kh, kw), padding=step.padding, stride=step.stride)
    taps = taps[0].long() - 1                                   # (C*kh*kw, positions)
    positions = taps.shape[1]
    tap, position = torch.nonzero(taps >= 0, as_tuple=True)
    o = torch.arange(out).repeat_interleave(len(tap))
    rows = o * positions + position.repeat(out)
    cols = taps[tap, position].repeat(out)
    values = step.weight.reshape(out, -1)[o, tap.repeat(out)]
    shape = (out * positions, step.unknowns)
    return scipy.sparse.csr_matrix((values.numpy(), (rows.numpy(), cols.numpy())), shape=shape)


def _forward_block(step: Step, z: torch.Tensor, known: torch.Tensor):
    """Gram and right-hand side of the forward constraints on the known output units."""
    keep = known.flatten().numpy()
    matrix = forward_matrix(step)[keep]
    target = z.flatten()
    if step.bias is not None:
        target = target - step.bias[:, None, None].expand(step.out_shape).flatten()
    target = target.numpy()[keep]
    if matrix.nnz > DENSE_FRACTION * np.prod(matrix.shape):
        matrix = matrix.toarray()
        gram = matrix.T @ matrix
    else:
        gram = (matrix.T @ matrix).toarray()
    return torch.from_numpy(gram), torch.from_numpy(matrix.T @ target), int(keep.sum())


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
