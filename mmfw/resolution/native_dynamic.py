"""OtterHD's dynamic-resolution training on top of Fuyu's native patches."""

from __future__ import annotations

from mmfw.resolution.native import NativeResolution, capped_size


class NativeDynamic(NativeResolution):
    """Training: every image of a batch is resized to one square size drawn from ``sizes``;
    evaluation: a square ``eval_size``, or the native rule when it is null.

    Yaml keys (besides native's):
      sizes: square sides to draw from per training batch (OtterHD: 448, 512, 768).
      eval_size: square side at evaluation (e.g. 1024 or 1440); null keeps the native size.
    """

    def __init__(
        self,
        *,
        sizes: list[int],
        eval_size: int | None = None,
        patch_size: int = 30,
        max_size: list[int] | tuple[int, int] = (1920, 1080),
        newline: bool = True,
        fill: list[int] | tuple[int, int, int] = (0, 0, 0),
        interpolation: str = "bilinear",
    ) -> None:
        super().__init__(
            patch_size=patch_size,
            max_size=max_size,
            newline=newline,
            fill=fill,
            interpolation=interpolation,
        )
        if not sizes:
            raise ValueError("resolution.sizes is empty: give at least one square side")
        self.sizes = [int(s) for s in sizes]
        self.eval_size = eval_size

    def batch_options(self, rng) -> dict:
        return {"size": rng.choice(self.sizes)}

    def content_size(
        self, width: int, height: int, size: int | None = None, **options
    ) -> tuple[int, int]:
        side = size or self.eval_size
        if side:
            return int(side), int(side)
        return capped_size(width, height, *self.max_size)
