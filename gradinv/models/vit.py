"""The DIA authors' Vision Transformer (lucidrains' vit-pytorch as in their ``src/models/vit.py``).

Point by point as theirs: patch embedding by one linear layer, a class token and learned
positions both drawn from ``randn``, dropout on the embeddings, pre-norm blocks whose attention
has a bias-free qkv projection, dropout on the attention weights and after the output
projection, a feed-forward block with dropout after its GELU and after its output, and a
LayerNorm + linear head on the class token: 1 + 4 x depth dropout sites. Attention is written
out because ``F.scaled_dot_product_attention`` has no double backward on CPU and hides the
attention weights that carry a dropout site.
"""

from __future__ import annotations

import torch
from einops import rearrange
from einops.layers.torch import Rearrange
from torch import nn

from gradinv.errors import ConfigError
from gradinv.models.dropout import MaskedDropout


class Attention(nn.Module):
    """Multi-head self-attention: bias-free qkv, dropout on the weights and after the projection."""

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        if dim % heads:
            raise ConfigError(f"model.heads must divide model.dim, got dim={dim}, heads={heads}.")
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.attn_drop = MaskedDropout(dropout)
        self.proj = nn.Sequential(nn.Linear(dim, dim), MaskedDropout(dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = rearrange(self.qkv(x), "b n (three h d) -> three b h n d", three=3, h=self.heads)
        weights = self.attn_drop((q @ k.transpose(-2, -1) * self.scale).softmax(dim=-1))
        return self.proj(rearrange(weights @ v, "b h n d -> b n (h d)"))


class Block(nn.Module):
    """Pre-norm transformer block; the feed-forward part drops after its GELU and its output."""

    def __init__(self, dim: int, heads: int, mlp_dim: int, dropout: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads, dropout)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(
            nn.Linear(dim, mlp_dim),
            nn.GELU(),
            MaskedDropout(dropout),
            nn.Linear(mlp_dim, dim),
            MaskedDropout(dropout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class ClassTokenAndPositions(nn.Module):
    """Prepends the learned class token and adds the learned positions, both drawn from ``randn``.

    Its own module (not the ViT's) so that it owns its parameters without submodules, as
    folding problems into one batch requires (``gradinv.attacks.folded``).
    """

    def __init__(self, patches: int, dim: int) -> None:
        super().__init__()
        self.pos_embed = nn.Parameter(torch.randn(1, patches + 1, dim))
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        cls = self.cls_token.expand(tokens.shape[0], -1, -1)
        return torch.cat([cls, tokens], dim=1) + self.pos_embed


class ViT(nn.Module):
    """Patch embedding, class token, learned positions, ``depth`` blocks, head on the class token."""

    def __init__(
        self,
        input_shape: tuple[int, int, int],
        num_classes: int,
        dropout: float = 0.0,
        patch_size: int = 4,
        dim: int = 256,
        depth: int = 4,
        heads: int = 16,
        mlp_dim: int = 256,
    ) -> None:
        super().__init__()
        channels, size, _ = input_shape
        if not isinstance(patch_size, int) or patch_size < 1 or size % patch_size:
            raise ConfigError(
                f"model.patch_size must be a positive integer dividing the image size {size}, "
                f"got {patch_size}."
            )
        self.patch_embed = nn.Sequential(
            Rearrange("b c (h p1) (w p2) -> b (h w) (p1 p2 c)", p1=patch_size, p2=patch_size),
            nn.Linear(channels * patch_size * patch_size, dim),
        )
        self.tokens = ClassTokenAndPositions((size // patch_size) ** 2, dim)
        self.embed_drop = MaskedDropout(dropout)
        self.blocks = nn.Sequential(*(Block(dim, heads, mlp_dim, dropout) for _ in range(depth)))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.embed_drop(self.tokens(self.patch_embed(x)))
        return self.head(self.norm(self.blocks(tokens))[:, 0])
