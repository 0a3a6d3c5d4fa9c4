"""Honeybee's C-Abstractor (MM1.5's connector): convolutional resampling to a fixed grid."""

from __future__ import annotations

from functools import partial

import torch
from hydra.utils import get_class
from timm.layers import LayerNorm2d
from timm.models.regnet import RegStage
from torch import nn
from torch.nn import functional as F

from mmfw.models.connectors.base import Connector, mlp, square_grid


class CAbstractor(Connector):
    """Positional embedding → RegStage → adaptive average pool to ``num_queries`` (a square)
    → RegStage → MLP readout.

    The RegStages are timm RegNet stages of ``depth`` bottleneck blocks (depthwise 3×3 conv,
    squeeze-excite 0.25, LayerNorm2d, SiLU), as in kakaobrain/honeybee. For CLIP-L/14-336
    (576 tokens of 1024) → 4096 with 144 queries it has 37,398,016 parameters.

    Yaml keys:
      num_queries: output tokens per view (a perfect square; 144 → 12×12).
      depth: bottleneck blocks per RegStage.
      mlp_depth: Linear layers of the readout.
      hidden_dim: channels of the convolutional part (null: the encoder width).
      pos_emb: add a learnable positional embedding on the encoder's native token grid
        (bilinearly resized when the views are larger, e.g. 672-px views on a 378-px encoder).
      activation: class path of the activation (Honeybee: ``torch.nn.SiLU``).
    """

    def __init__(
        self,
        *,
        in_dim: int,
        out_dim: int,
        in_grid: tuple[int, int],
        num_queries: int = 144,
        depth: int = 3,
        mlp_depth: int = 2,
        hidden_dim: int | None = None,
        pos_emb: bool = True,
        activation: str = "torch.nn.SiLU",
    ) -> None:
        super().__init__()
        self.fixed_grid = square_grid(num_queries)
        side = self.fixed_grid[0]
        hidden = int(hidden_dim or in_dim)
        act = get_class(activation)
        self.in_grid = tuple(in_grid)
        self.pos_emb = nn.Parameter(torch.zeros(1, in_dim, *self.in_grid)) if pos_emb else None
        if self.pos_emb is not None:
            nn.init.trunc_normal_(self.pos_emb, std=0.02)
        stage = partial(RegStage, stride=1, dilation=1, act_layer=act, norm_layer=LayerNorm2d)
        self.net = nn.Sequential(
            stage(depth, in_dim, hidden),
            nn.AdaptiveAvgPool2d((side, side)),
            stage(depth, hidden, hidden),
        )
        self.readout = mlp(hidden, out_dim, mlp_depth, activation)

    def forward(self, x: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        n, _, c = x.shape
        maps = x.transpose(1, 2).reshape(n, c, *grid)
        if self.pos_emb is not None:
            pos = self.pos_emb
            if tuple(grid) != self.in_grid:
                pos = F.interpolate(
                    pos.float(), size=tuple(grid), mode="bilinear", align_corners=False
                ).to(x.dtype)
            maps = maps + pos
        out = self.net(maps)
        return self.readout(out.flatten(2).transpose(1, 2))
