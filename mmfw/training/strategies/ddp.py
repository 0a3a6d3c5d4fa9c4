"""Distributed data parallel: every rank holds the whole model; gradients are all-reduced."""

from __future__ import annotations

from datetime import timedelta

from lightning.pytorch.strategies import DDPStrategy

from mmfw.training.strategies.base import BatchPlan, StrategySpec


class DDP(StrategySpec):
    """Lightning's DDPStrategy (NCCL on GPUs, gloo on CPUs).

    Yaml keys:
      find_unused_parameters: needed only when some trainable parameters get no gradient in
        a step (e.g. hyper-attention layers on a text-only batch).
      static_graph: DDP's static-graph optimisation (same used parameters every step).
      gradient_as_bucket_view: gradients alias the all-reduce buckets (saves one copy).
      timeout_minutes: collective timeout.
    """

    name = "ddp"

    def __init__(
        self,
        *,
        find_unused_parameters: bool = False,
        static_graph: bool = False,
        gradient_as_bucket_view: bool = True,
        timeout_minutes: int = 30,
    ) -> None:
        self.find_unused_parameters = find_unused_parameters
        self.static_graph = static_graph
        self.gradient_as_bucket_view = gradient_as_bucket_view
        self.timeout_minutes = timeout_minutes

    def lightning(self, plan: BatchPlan, accelerator: str) -> DDPStrategy:
        return DDPStrategy(
            find_unused_parameters=self.find_unused_parameters,
            static_graph=self.static_graph,
            gradient_as_bucket_view=self.gradient_as_bucket_view,
            timeout=timedelta(minutes=self.timeout_minutes),
        )
