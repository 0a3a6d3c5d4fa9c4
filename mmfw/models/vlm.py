"""The vision-language model: encoder → connector → layout assembly → fusion → LLM."""

from __future__ import annotations

import time
import warnings

import torch
from torch import nn
from transformers import PreTrainedModel

from mmfw.models.adapters.image_positions import ImagePositions
from mmfw.models.connectors.base import Connector
from mmfw.models.context_parallel import (
    ONE_PROCESS,
    PREFIX,
    ContextParallel,
    checkpoint_contexts,
    forward_sharded,
    use_context_parallel,
)
from mmfw.models.encoder_balance import EncoderBalance, EncoderStats, balanced_features
from mmfw.models.encoders.base import VisionEncoder
from mmfw.models.fusion.base import Fusion
from mmfw.models.loss import causal_lm_loss
from mmfw.resolution.layout import (
    FeatureGrid,
    ImageLayout,
    Separator,
    count_image_tokens,
    part_shape,
    unpadded_hw,
)


class VisionLanguageModel(nn.Module):
    """A plain ``nn.Module`` (no Lightning): tests and exports build it directly.

    ``newline`` / ``separator`` create the learnable embeddings that layouts may ask for
    (one after each row of a token map; one between parts). ``center_image_tokens``
    subtracts each view's mean token from its tokens after the connector (what the view has in
    common, e.g. its background, is removed; what stands out is kept).
    """

    def __init__(
        self,
        *,
        encoder: VisionEncoder,
        connector: Connector,
        fusion: Fusion,
        llm: PreTrainedModel,
        image_token_id: int,
        newline: bool = False,
        separator: bool = False,
        center_image_tokens: bool = False,
    ) -> None:
        super().__init__()
        self.center_image_tokens = bool(center_image_tokens)
        self.encoder = encoder
        self.connector = connector
        self.fusion = fusion
        self.llm = llm
        self.image_token_id = int(image_token_id)
        self.hidden_size = int(llm.config.hidden_size)
        std = self.hidden_size**-0.5
        self.image_newline = nn.Parameter(torch.randn(self.hidden_size) * std) if newline else None
        self.image_separator = (
            nn.Parameter(torch.randn(self.hidden_size) * std) if separator else None
        )
        # Image-token positions for adapters inside the LLM (Partial LoRA), and the names of
        # adapter parameters, which train even where their module is frozen.
        self.image_positions = ImagePositions()
        # Set by the training module under trainer.context_parallel > 1 and
        # trainer.encoder_balance (training forwards only).
        self.context_parallel: ContextParallel | None = None
        # packed SDPA training batches attend sample by sample (False: transformers' mask)
        self.segment_attention = True
        # data.fixed_views: in training the encoder runs on exactly this many views per call
        self.view_budget: int | None = None
        self.encoder_balance: EncoderBalance | None = None
        self._balance_anchor: torch.Tensor | None = None
        self.encoder_stats = EncoderStats()
        self.adapter_params: set[str] = set()
        # Parameters that live inside another module but belong to a stage module (e.g. the
        # hyper-attention projections inside LLM layers belong to "fusion").
        self.param_owners: dict[str, str] = {}
        fusion.attach(self)

    def unused_parameters(self) -> set[str]:
        """Parameters no output depends on (see ``VisionEncoder.unused_parameters``)."""
        return {f"encoder.{n}" for n in self.encoder.unused_parameters()}

    def enable_gradient_checkpointing(self, modules: list[str]) -> None:
        """Recompute the activations of the blocks of ``modules`` (encoder, llm) in backward."""
        for name in modules:
            part = getattr(self, name, None)
            hf = part if isinstance(part, PreTrainedModel) else getattr(part, "model", None)
            if isinstance(hf, PreTrainedModel) and hf.supports_gradient_checkpointing:
                hf.gradient_checkpointing_enable(
                    gradient_checkpointing_kwargs={
                        "use_reentrant": False,
                        "context_fn": checkpoint_contexts,
                    }
                )
            elif hasattr(hf, "set_grad_checkpointing"):  # timm
                hf.set_grad_checkpointing(True)
            else:  # e.g. Fuyu's patch projection: nothing deep enough to recompute
                warnings.warn(
                    f"gradient checkpointing of {name!r}: {type(part).__name__} has no blocks to "
                    "checkpoint; it runs without",
                    stacklevel=2,
                )

    @property
    def feature_grid(self) -> FeatureGrid:
        """Pixel view size → token grid; shared with the data pipeline (it is picklable)."""
        return FeatureGrid(
            patch=self.encoder.patch_size,
            merge=self.connector.merge,
            fixed=self.connector.fixed_grid,
        )

    def encode_images(
        self, images: list[torch.Tensor], layouts: list[ImageLayout]
    ) -> list[torch.Tensor]:
        """One (tokens, hidden) tensor per image, exactly ``count_image_tokens`` long."""
        return [torch.cat(parts) for parts in self.encode_image_parts(images, layouts)]

    def encode_image_parts(
        self, images: list[torch.Tensor], layouts: list[ImageLayout]
    ) -> list[list[torch.Tensor]]:
        """Per image, one (tokens, hidden) tensor per part of its layout; the total is checked
        against the token accounting."""
        balancing = self.encoder_balance is not None and self.training
        if not images and not balancing:  # a balanced rank takes part even without images
            return []
        if balancing:
            view_feats, anchor = balanced_features(
                self.encoder_balance,
                images,
                self._encode_views,
                self.hidden_size,
                self._feature_dtype(),
                self.encoder_stats,
            )
            if not images:
                self._balance_anchor = anchor
        else:
            t0 = time.perf_counter()
            view_feats = self._encode_views(images)
            if self.training:
                views = sum(int(v.shape[0]) for v in images)
                self.encoder_stats.own_views += views
                self.encoder_stats.views += views
                self.encoder_stats.seconds += time.perf_counter() - t0
        grid = self.feature_grid
        out = []
        for feats, layout in zip(view_feats, layouts, strict=True):
            parts = self._assemble(feats, layout, grid)
            produced = sum(int(p.shape[0]) for p in parts)
            expected = count_image_tokens(layout, grid)
            if produced != expected:
                raise AssertionError(
                    f"image of size {layout.image_size} produced {produced} embeddings, "
                    f"the token accounting says {expected}"
                )
            out.append(parts)
        return out

    def _feature_dtype(self) -> torch.dtype:
        """The dtype the connector's features have in this forward (autocast's, if on)."""
        weight = next(self.connector.parameters(), None)
        device = weight.device.type if weight is not None else "cpu"
        if torch.is_autocast_enabled(device):
            return torch.get_autocast_dtype(device)
        return weight.dtype if weight is not None else torch.float32

    def _encode_views(self, images: list[torch.Tensor]) -> list[torch.Tensor]:
        """Run encoder + connector over all views, batched by view size; split per image."""
        by_size: dict[tuple[int, int], list[int]] = {}
        for i, views in enumerate(images):
            by_size.setdefault(tuple(views.shape[-2:]), []).append(i)
        result: list[torch.Tensor | None] = [None] * len(images)
        patch = self.encoder.patch_size
        for hw, idx in by_size.items():
            if hw[0] % patch or hw[1] % patch:
                raise ValueError(
                    f"views of {hw[0]}x{hw[1]} px are not multiples of the encoder's {patch}-px "
                    "patches: set the resolution strategy's size/patch_size to a multiple of it"
                )
            pixels = torch.cat([images[i] for i in idx])
            grid = (hw[0] // patch, hw[1] // patch)
            budget, n = self.view_budget, int(pixels.shape[0])
            if budget and self.training:  # every call sees `budget` views: static shapes
                blank = pixels.new_zeros(((-n) % budget, *pixels.shape[1:]))
                chunks = torch.cat([pixels, blank]).split(budget)
                tokens = torch.cat([self._encode_pixels(c, grid) for c in chunks])[:n]
            else:
                tokens = self._encode_pixels(pixels, grid)
            for i, chunk in zip(idx, tokens.split([images[i].shape[0] for i in idx]), strict=True):
                result[i] = chunk
        return result  # type: ignore[return-value]

    def _encode_pixels(self, pixels: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        """Encoder and connector over views of one size: (views, tokens, hidden)."""
        tokens = self.encoder(pixels)
        weight = next(self.connector.parameters(), None)
        if weight is not None:  # e.g. a bf16 encoder feeding an fp32 connector
            tokens = tokens.to(weight.dtype)
        tokens = self.connector(tokens, grid)
        if self.center_image_tokens:
            tokens = tokens - tokens.mean(dim=1, keepdim=True)
        return tokens

    def _assemble(
        self, feats: torch.Tensor, layout: ImageLayout, grid: FeatureGrid
    ) -> list[torch.Tensor]:
        """Arrange one image's view tokens (V, n, d) into one token sequence per layout part."""
        fh, fw = grid(layout.view_hw)
        pieces = []
        for part in layout.parts:
            if isinstance(part, Separator):
                pieces.append(self._slot(self.image_separator, "separator"))
                continue
            maps = feats[part.views].view(part.rows, part.cols, fh, fw, -1)
            stitched = maps.permute(0, 2, 1, 3, 4).reshape(part.rows * fh, part.cols * fw, -1)
            if part.unpad:
                h, w = unpadded_hw(*stitched.shape[:2], layout.image_size)
                top = (stitched.shape[0] - h) // 2
                left = (stitched.shape[1] - w) // 2
                stitched = stitched[top : top + h, left : left + w]
            assert stitched.shape[:2] == part_shape(part, layout, grid)
            if part.newline:
                nl = self._slot(self.image_newline, "newline")
                stitched = torch.cat([stitched, nl.expand(stitched.shape[0], 1, -1)], dim=1)
            pieces.append(stitched.reshape(-1, stitched.shape[-1]))
        return pieces

    @staticmethod
    def _slot(param: nn.Parameter | None, name: str) -> torch.Tensor:
        if param is None:
            raise ValueError(
                f"the layout asks for a {name} embedding but the model was built without one; "
                "build the model with the same resolution strategy as the data"
            )
        return param.view(1, -1)

    def embed_inputs(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        images: list[torch.Tensor] | None,
        layouts: list[ImageLayout] | None,
    ) -> tuple[torch.Tensor, dict]:
        """``inputs_embeds`` with the images fused in, and extra LLM keyword arguments.

        Position ids count real tokens only, so left- and right-padded rows get the same
        positions (as generation computes them)."""
        self.image_positions.stage(input_ids == self.image_token_id)
        embeds = self.llm.get_input_embeddings()(input_ids)
        parts = self.encode_image_parts(images or [], layouts or [])
        embeds, extra = self.fusion(
            embeds, input_ids, attention_mask, parts, layouts or [], self.image_token_id
        )
        anchor, self._balance_anchor = self._balance_anchor, None
        if anchor is not None:  # a text-only rank under encoder balance: see balanced_features
            embeds = embeds + anchor.to(embeds.dtype)
        return embeds, extra

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        labels: torch.Tensor | None = None,
        images: list[torch.Tensor] | None = None,
        layouts: list[ImageLayout] | None = None,
        position_ids: torch.Tensor | None = None,
        sample_ids: torch.Tensor | None = None,
        loss_reduction: str = "token",
    ):
        """Logits and, with ``labels``, the loss. A packed batch (see
        ``mmfw.data.packing``) comes with ``position_ids`` that restart at every sample; the
        LLM then gets no padding mask and builds the block-diagonal one from them.
        ``loss_reduction``: token | square | sample (see ``mmfw.models.loss``)."""
        embeds, extra = self.embed_inputs(input_ids, attention_mask, images, layouts)
        packed = position_ids is not None
        if packed and self.fusion.placeholders_per_image != "layout":
            raise ValueError(
                "data.packing=true needs inline fusion: hyper attention keeps one sample per row"
            )
        if labels is not None and (
            self.context_parallel is not None or (packed and self._segment_attention())
        ):
            return self._forward_sharded(
                embeds, input_ids, attention_mask, labels, position_ids, sample_ids, loss_reduction
            )
        if not packed:
            position_ids = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)
        custom = labels is not None and loss_reduction != "token"
        out = self.llm(
            inputs_embeds=embeds,
            attention_mask=None if packed else attention_mask,
            position_ids=position_ids,
            labels=None if custom else labels,
            # A cache would switch off transformers' packed-sequence (block-diagonal) mask.
            **({"use_cache": False} if packed else {}),
            **extra,
        )
        if custom:
            if sample_ids is None:
                rows = torch.arange(input_ids.shape[0], device=input_ids.device).unsqueeze(1)
                sample_ids = torch.where(attention_mask.bool(), rows, -1)
            out.loss = causal_lm_loss(out.logits, labels, sample_ids, loss_reduction)
        return out

    def _segment_attention(self) -> bool:
        """Packed rows under SDPA attend sample by sample (the context-parallel path with a
        group of one) instead of through transformers' dense (S x S) block-diagonal mask, which
        SDPA on a CPU runs at the masked kernel's speed over the whole row (5x slower at 4k)."""
        name = self.llm.config._attn_implementation
        if not self.segment_attention:
            return False
        if name == "sdpa":
            use_context_parallel(self.llm)
            name = self.llm.config._attn_implementation
        return name == PREFIX + "sdpa"

    def _forward_sharded(
        self, embeds, input_ids, attention_mask, labels, position_ids, sample_ids, reduction
    ):
        """Training forward with ``trainer.context_parallel``: the LLM runs on this rank's
        share of the sequence (see ``mmfw.models.context_parallel``); in one process, a packed
        SDPA batch takes the same path with a group of one."""
        if self.fusion.placeholders_per_image != "layout":
            raise ValueError(
                "trainer.context_parallel needs inline fusion: hyper attention's cross-attention "
                "to the image features is not split over ranks; use trainer.context_parallel=1"
            )
        return forward_sharded(
            self.llm,
            self.context_parallel or ONE_PROCESS,
            embeds,
            attention_mask=attention_mask,
            labels=labels,
            position_ids=position_ids,
            sample_ids=sample_ids,
            reduction=reduction,
            image_mask=input_ids == self.image_token_id,
            stage_image_mask=self.image_positions.stage,
        )

    @torch.no_grad()
    def generate(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        images: list[torch.Tensor] | None = None,
        layouts: list[ImageLayout] | None = None,
        *,
        max_new_tokens: int = 16,
        eos_token_id: int | list[int] | None = None,
        pad_token_id: int | None = None,
        use_cache: bool = True,
        synced: bool = False,
    ) -> torch.Tensor:
        """Greedy decoding (with the KV cache unless ``use_cache=False``); input must be
        LEFT-padded. ``synced``: keep stepping until every rank is done (ZeRO-3 / FSDP, where
        each forward gathers weights collectively). Returns new ids only."""
        embeds, extra = self.embed_inputs(input_ids, attention_mask, images, layouts)
        return self.llm.generate(
            inputs_embeds=embeds,
            attention_mask=attention_mask,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            use_cache=use_cache,
            eos_token_id=eos_token_id,
            pad_token_id=pad_token_id,
            synced_gpus=True if synced else None,  # None: transformers detects ZeRO-3 / FSDP
            **extra,
        )
