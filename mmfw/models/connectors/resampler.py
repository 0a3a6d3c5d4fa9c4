"""A Perceiver-style resampler: learnable queries cross-attend to the encoder tokens."""

from __future__ import annotations

import torch
from torch import nn

from mmfw.models.connectors.base import Connector, square_grid


def sincos_2d(h: int, w: int, dim: int, device=None) -> torch.Tensor:
    """(h·w, dim) fixed 2-D sine-cosine position embedding (half the channels per axis)."""
    quarter = dim // 4
    omega = 1.0 / (
        10000 ** (torch.arange(quarter, dtype=torch.float32, device=device) / max(1, quarter))
    )
    ys, xs = torch.meshgrid(
        torch.arange(h, dtype=torch.float32, device=device),
        torch.arange(w, dtype=torch.float32, device=device),
        indexing="ij",
    )
    parts = []
    for coord in (ys.reshape(-1), xs.reshape(-1)):
        angles = coord[:, None] * omega[None, :]
        parts += [angles.sin(), angles.cos()]
    emb = torch.cat(parts, dim=1)
    return torch.nn.functional.pad(emb, (0, dim - emb.shape[1]))


class ResamplerLayer(nn.Module):
    """Pre-norm cross-attention from the queries to the tokens, then an MLP, both residual."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.norm_q = nn.LayerNorm(dim)
        self.norm_kv = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.norm_mlp = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

    def forward(self, q: torch.Tensor, kv: torch.Tensor) -> torch.Tensor:
        kv = self.norm_kv(kv)
        q = q + self.attn(self.norm_q(q), kv, kv, need_weights=False)[0]
        return q + self.mlp(self.norm_mlp(q))


class ResamplerConnector(Connector):
    """``num_queries`` learnable queries (a square grid) read the view's tokens through
    ``depth`` cross-attention layers; the tokens carry a 2-D sine-cosine position embedding.
    Output: a fixed ``sqrt(num_queries)``² grid per view, whatever the input size.

    Yaml keys:
      num_queries: output tokens per view (a perfect square, e.g. 144).
      depth: cross-attention layers.
      heads: attention heads (must divide ``hidden_dim``).
      hidden_dim: width of the queries and attention (null: the LLM width).
    """

    def __init__(
        self,
        *,
        in_dim: int,
        out_dim: int,
        num_queries: int = 144,
        depth: int = 1,
        heads: int = 8,
        hidden_dim: int | None = None,
    ) -> None:
        super().__init__()
        self.fixed_grid = square_grid(num_queries)
        dim = int(hidden_dim or out_dim)
        if dim % heads:
            raise ValueError(f"connector.heads={heads} must divide the width {dim}")
        self.queries = nn.Parameter(torch.randn(num_queries, dim) * 0.02)
        self.kv_proj = nn.Linear(in_dim, dim) if in_dim != dim else nn.Identity()
        self.layers = nn.ModuleList(ResamplerLayer(dim, heads) for _ in range(depth))
        self.norm_out = nn.LayerNorm(dim)
        self.proj = nn.Linear(dim, out_dim)

    def forward(self, x: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        kv = self.kv_proj(x)
        kv = kv + sincos_2d(*grid, kv.shape[-1], device=kv.device).to(kv.dtype)
        q = self.queries.unsqueeze(0).expand(x.shape[0], -1, -1)
        for layer in self.layers:
            q = layer(q, kv)
        return self.proj(self.norm_out(q))
