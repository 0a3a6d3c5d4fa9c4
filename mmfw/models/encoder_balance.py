"""Vision-encoder balance (``trainer.encoder_balance``): every rank encodes an equal share.

With dynamic resolution one rank's batch may hold 5 views and another's 40; under data
parallelism every rank then waits for the one that drew the most. Under context parallelism
each rank of a group would encode the group's whole batch. Here, once per forward:

1. every rank publishes the views of its batch (sizes only);
2. all ranks compute the same plan: each view of each data-parallel replica (the ranks of a
   context-parallel group share theirs) goes to the rank with the least pixels so far,
   largest views first, a rank of its own replica on ties;
3. the pixels of views encoded elsewhere travel there (one all-to-all of uint8);
4. each rank runs the encoder and connector on its views;
5. the features go back to every rank of the replica that owns them (an all-to-all whose
   backward returns their gradients to the rank that encoded them).

A rank's loss therefore reaches the encoder weights on other ranks; data-parallel gradient
averaging sums them as before, so the gradients are those of the unbalanced run.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.distributed._functional_collectives as funcol


@dataclass
class EncoderStats:
    """This rank's encoder work since the last :meth:`take` (for the logs): the views of its
    own batch, the views it encoded and the encoder's forward seconds."""

    own_views: int = 0
    views: int = 0
    seconds: float = 0.0

    def take(self) -> tuple[int, int, float]:
        out = (self.own_views, self.views, self.seconds)
        self.own_views, self.views, self.seconds = 0, 0, 0.0
        return out


@dataclass(frozen=True)
class EncoderBalance:
    """``group``: every rank, on a communicator of its own; ``replica_size``: ranks of one
    context-parallel group (they hold the same batch)."""

    group: dist.ProcessGroup
    world: int
    rank: int
    replica_size: int = 1

    def replica(self, rank: int) -> int:
        return rank // self.replica_size


def plan_views(manifests: list[list[tuple[int, int]]], world: int, replica_size: int) -> dict:
    """Which rank encodes each view: ``{(replica, index): rank}`` for the views (h, w) listed
    by the first rank of each replica. Deterministic: every rank computes the same plan."""
    items = []
    for replica in range(world // replica_size):
        for index, (h, w) in enumerate(manifests[replica * replica_size]):
            items.append((h * w, replica, index))
    items.sort(key=lambda t: (-t[0], t[1], t[2]))
    load = [0] * world
    owner = {}
    for cost, replica, index in items:
        home = range(replica * replica_size, (replica + 1) * replica_size)
        rank = min(range(world), key=lambda r: (load[r], r not in home, r))
        load[rank] += cost
        owner[(replica, index)] = rank
    return owner


def balanced_features(
    balance: EncoderBalance,
    images: list[torch.Tensor],
    encode: Callable[[list[torch.Tensor]], list[torch.Tensor]],
    width: int,
    dtype: torch.dtype,
    stats: EncoderStats,
) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Per image of this rank, its views' features (V, n, width), encoded where the plan says;
    and a zero that depends on the features' exchange. A rank without images must add it to
    its loss: its backward then joins the exchange's backward, which the ranks whose views it
    encoded wait for (and its encoder gets their gradients)."""
    b, me = balance, balance.rank
    views = [v for image in images for v in image]  # (3, h, w) each, in image order
    manifest = [tuple(int(s) for s in v.shape[-2:]) for v in views]
    manifests: list = [None] * b.world
    dist.all_gather_object(manifests, manifest, group=b.group)
    owner = plan_views(manifests, b.world, b.replica_size)
    home = b.replica(me)
    device = images[0].device if images else torch.device("cpu")

    def size(key: tuple[int, int]) -> tuple[int, int]:
        return manifests[key[0] * b.replica_size][key[1]]

    def sender(key: tuple[int, int]) -> int:
        """The rank of the view's replica that ships its pixels."""
        return key[0] * b.replica_size + key[1] % b.replica_size

    keys = sorted(owner)  # (replica, index): the order every list below follows
    to_encode = [k for k in keys if owner[k] == me]

    # 1. pixels of views encoded outside their replica
    pixels = {k: views[k[1]] for k in to_encode if k[0] == home}
    if any(b.replica(owner[k]) != k[0] for k in keys):
        away = [k for k in keys if b.replica(owner[k]) != k[0]]
        send = [
            [k for k in away if sender(k) == me and owner[k] == dest] for dest in range(b.world)
        ]
        recv = [[k for k in away if owner[k] == me and sender(k) == src] for src in range(b.world)]
        flat = [views[k[1]].reshape(-1) for per in send for k in per]
        inp = torch.cat(flat) if flat else torch.zeros(0, dtype=torch.uint8, device=device)
        in_splits = [sum(3 * h * w for h, w in map(size, per)) for per in send]
        out_splits = [sum(3 * h * w for h, w in map(size, per)) for per in recv]
        out = torch.empty(sum(out_splits), dtype=torch.uint8, device=device)
        dist.all_to_all_single(out, inp, out_splits, in_splits, group=b.group)
        at = 0
        for k in (k for per in recv for k in per):
            h, w = size(k)
            pixels[k] = out[at : at + 3 * h * w].view(3, h, w)
            at += 3 * h * w

    # 2. this rank's share
    t0 = time.perf_counter()
    encoded = encode([pixels[k].unsqueeze(0) for k in to_encode]) if to_encode else []
    stats.seconds += time.perf_counter() - t0
    stats.views += len(to_encode)
    stats.own_views += len(views)
    feats = {k: f[0] for k, f in zip(to_encode, encoded, strict=True)}

    # 3. features to every rank of the owning replica: their token counts, then the rows
    send = [[k for k in to_encode if b.replica(dest) == k[0]] for dest in range(b.world)]
    recv = [[k for k in keys if owner[k] == src and k[0] == home] for src in range(b.world)]
    counts = torch.tensor([feats[k].shape[0] for per in send for k in per], dtype=torch.long)
    got_counts = torch.empty(sum(map(len, recv)), dtype=torch.long, device=device)
    dist.all_to_all_single(
        got_counts,
        counts.to(device),
        [len(per) for per in recv],
        [len(per) for per in send],
        group=b.group,
    )
    got_counts = got_counts.cpu()
    rows = [feats[k] for per in send for k in per]
    inp = torch.cat(rows) if rows else torch.zeros(0, width, dtype=dtype, device=device)
    in_splits = [sum(feats[k].shape[0] for k in per) for per in send]
    out_splits, at = [], 0
    for per in recv:
        out_splits.append(int(got_counts[at : at + len(per)].sum()))
        at += len(per)
    got = funcol.all_to_all_single_autograd(inp.contiguous(), out_splits, in_splits, b.group)
    got = funcol.wait_tensor(got)
    by_index, at, t = {}, 0, 0
    for k in (k for per in recv for k in per):
        n = int(got_counts[t])
        by_index[k[1]] = got[at : at + n]
        at, t = at + n, t + 1
    out, first = [], 0
    for image in images:
        out.append(torch.stack([by_index[first + j] for j in range(image.shape[0])]))
        first += image.shape[0]
    return out, got.sum() * 0
