"""One R-GAP layer as a linear least-squares problem for its input, in float64.

For a layer z = W * x (a convolution; padding pinned to zero, so the unknowns are the
unpadded input) with known output z and known output gradient delta = dL/dz:
  * forward constraints: W * x = z, one per output unit whose value is known;
  * weight-gradient constraints: dL/dW = sum over positions of delta (x) patch(x), one per weight.
Both are linear in x. They are solved through their normal equations, built from convolutions
and batched dense products rather than a sparse operator: the forward block's Gram is a sum
of small per-position blocks, the gradient block's is identical for every input channel (block
diagonal, one small H*W x H*W matrix).
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
#: How far above the tolerance the estimated smallest eigenvalue must lie for plain Cholesky
#: to settle full rank (the estimate is a lower bound, usually within 10x of the truth).
CERTAINTY = 1e3
#: Ridge, relative to the Gram's mean diagonal, that picks a near minimum-norm solution
#: in rank-deficient directions and is negligible elsewhere.
RIDGE = 1e-12


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
        """The least-squares input (flattened) and the numerical rank of the constraints; the
        Gram is factorized in place.

        The rank is where Cholesky with full pivoting (LAPACK pstrf) would stop: at pivots below
        ``RANK_TOLERANCE`` of the largest diagonal. Every pivot of it is at least the smallest
        eigenvalue, so a system whose plain Cholesky (potrf, about twice as fast) succeeds and
        whose smallest eigenvalue, bounded from below by LAPACK's condition estimate (pocon),
        clears the tolerance by ``CERTAINTY`` is full rank and is solved with that factor. Any
        other system takes pstrf; a deficient one is solved with a tiny ridge, which picks a
        near minimum-norm solution.
        """
        # LAPACK reads the C-ordered symmetric Gram as its transpose, itself. potrf factorizes
        # in place (the Gram is consumed): it overwrites one triangle and the diagonal, and
        # leaves the other triangle, with the saved diagonal, for pstrf if it fails.
        gram, rhs = self.gram.numpy().T, self.rhs.numpy()
        diagonal = np.diag(gram).copy()
        largest = float(np.max(diagonal))
        factor, info = scipy.linalg.lapack.dpotrf(gram, lower=0, clean=0, overwrite_a=1)
        if info == 0:
            rcond, _ = scipy.linalg.lapack.dpocon(factor, 1.0)  # 1 / ||A^-1||_1 with anorm 1
            if rcond >= CERTAINTY * RANK_TOLERANCE * largest:
                return torch.from_numpy(scipy.linalg.cho_solve((factor, False), rhs)), self.unknowns
        np.fill_diagonal(gram, diagonal)
        factor, pivots, rank, _ = scipy.linalg.lapack.dpstrf(
            gram, lower=1, tol=RANK_TOLERANCE * largest
        )
        if rank == self.unknowns:
            order = pivots - 1
            solution = np.empty_like(rhs)
            solution[order] = scipy.linalg.cho_solve((factor, True), rhs[order])
        else:
            symmetric = np.tril(gram) + np.tril(gram, -1).T
            ridge = RIDGE * float(np.mean(diagonal))
            solution = scipy.linalg.solve(
                symmetric + ridge * np.eye(self.unknowns), rhs, assume_a="pos"
            )
        return torch.from_numpy(solution), int(rank)


def _forward_block(step: Step, z: torch.Tensor, known: torch.Tensor):
    """Gram and right-hand side of the forward constraints on the known output units.

    Output position p reads the input patch at its offset; its known units add
    ``w^T diag(known_p) w`` to the Gram on that patch's pixels. For one kernel tap t, those
    contributions of all positions land on distinct entries of the Gram of the zero-padded
    input that a strided view reaches, so the Gram is one small matrix product and one strided
    add per tap (dense BLAS, no index arrays), then cropped to the unpadded pixels.
    """
    channels, height, width = step.in_shape
    out, _, kh, kw = step.weight.shape
    (sh, sw), (ph, pw) = step.stride, step.padding
    hp, wp = height + 2 * ph, width + 2 * pw
    padded = channels * hp * wp
    rows, cols = step.out_shape[1:]
    keep = known.reshape(out, rows * cols).to(torch.float64)
    weight = step.weight.reshape(out, -1)  # taps in (channel, ky, kx) order
    target = z.reshape(out, rows * cols)
    if step.bias is not None:
        target = target - step.bias[:, None]
    patches = ((keep * target).T @ weight).T[None]  # (1, taps, positions)
    rhs = torch.nn.functional.fold(
        patches, (height, width), (kh, kw), padding=step.padding, stride=step.stride
    )
    if rows * cols == 1 and padded == step.unknowns:  # a linear layer: one patch
        return (keep * weight).T @ weight, rhs.flatten(), int(known.sum())
    gram = torch.zeros(padded * padded, dtype=torch.float64)
    strides = (sh * wp * (padded + 1), sw * (padded + 1), hp * wp, wp, 1)
    for tap in range(weight.shape[1]):
        channel, rest = divmod(tap, kh * kw)
        ky, kx = divmod(rest, kw)
        block = (keep * weight[:, tap, None]).T @ weight  # (positions, taps)
        offset = (channel * hp * wp + ky * wp + kx) * padded
        gram.as_strided((rows, cols, channels, kh, kw), strides, offset).add_(
            block.view(rows, cols, channels, kh, kw)
        )
    inner = (slice(None), slice(ph, ph + height), slice(pw, pw + width))
    gram = gram.view(channels, hp, wp, channels, hp, wp)[(*inner, *inner)].reshape(
        step.unknowns, -1
    )
    return gram, rhs.flatten(), int(known.sum())


def _gradient_block(step: Step, delta: torch.Tensor, weight_grad: torch.Tensor):
    """The weight-gradient constraints (linear in the input): one input channel's Gram (the
    same for every channel, so the full Gram is block diagonal), and the right-hand side."""
    channels, height, width = step.in_shape
    pixels = height * width
    out, _, kh, kw = step.weight.shape
    basis = torch.eye(pixels, dtype=torch.float64).view(1, pixels, height, width)
    jac = conv2d_weight(basis, (out, pixels, kh, kw), delta[None], step.stride, step.padding)
    jac = jac.permute(0, 2, 3, 1).reshape(-1, pixels)
    rhs = conv2d_input((1, *step.in_shape), weight_grad, delta[None], step.stride, step.padding)
    return jac.T @ jac, rhs.flatten(), weight_grad.numel()


def layer_system(
    step: Step, z: torch.Tensor, known: torch.Tensor, delta: torch.Tensor, weight_grad: torch.Tensor
) -> LayerSystem:
    """The constraints on ``step``'s input given its pre-activation ``z`` (valid where ``known``),
    its output gradient ``delta`` and the shared gradient of its weight, all float64."""
    gram, rhs, n_forward = _forward_block(step, z, known)
    channel_gram, g_rhs, n_gradient = _gradient_block(
        step, delta, weight_grad.reshape(step.weight.shape)
    )
    channels, pixels = step.in_shape[0], channel_gram.shape[0]
    f_scale = float(torch.linalg.matrix_norm(gram))
    g_scale = (
        float(torch.linalg.matrix_norm(channel_gram)) * channels**0.5
    )  # the block-diagonal Gram's
    if f_scale > 0:
        gram /= f_scale
        rhs /= f_scale
    if g_scale > 0:
        diagonal_blocks = gram.view(channels, pixels, channels, pixels).diagonal(dim1=0, dim2=2)
        diagonal_blocks += (channel_gram / g_scale)[:, :, None]
        rhs += g_rhs / g_scale
    return LayerSystem(gram, rhs, n_forward, n_gradient)
