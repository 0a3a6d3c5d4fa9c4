"""How much of a mixture each source is: weights, MM1.5's α and per-kind shares."""

from __future__ import annotations

from collections.abc import Mapping

from mmfw.errors import UserError


def source_weights(
    sources: Mapping[str, object], alpha_reference: str = "general"
) -> dict[str, float]:
    """Each source's sampling weight before normalisation: its ``weight`` (default 1), or
    ``alpha`` x the total weight of the reference category's sources (MM1.5: α relative
    to "general")."""
    fixed = {
        name: (1.0 if src.weight is None else src.weight)
        for name, src in sources.items()
        if src.alpha is None
    }
    if any(src.alpha is not None for src in sources.values()):
        refs = [n for n, src in sources.items() if src.category == alpha_reference]
        if not refs:
            raise UserError(
                f"data.sources use alpha, but no source has category={alpha_reference!r} "
                f"(data.alpha_reference): set a source's category or data.alpha_reference"
            )
        if any(sources[n].alpha is not None for n in refs):
            raise UserError(
                f"data.alpha_reference={alpha_reference!r}: its own sources take weight, not alpha "
                f"({[n for n in refs if sources[n].alpha is not None]})"
            )
        reference = sum(fixed[n] for n in refs)
    weights = {}
    for name, src in sources.items():
        weights[name] = src.alpha * reference if src.alpha is not None else fixed[name]
    return weights


def mixture_fractions(
    sources: Mapping[str, object],
    sizes: Mapping[str, int],
    alpha_reference: str = "general",
    kind_weights: Mapping[str, float] | None = None,
) -> dict[str, float]:
    """The configured share of samples drawn from each source (sums to 1).

    With ``kind_weights`` ({single_image: 0.8, multi_image: 0.1, text_only: 0.1}) each kind
    gets its share first and its sources split it by their weights."""
    weights = {n: w for n, w in source_weights(sources, alpha_reference).items() if sizes[n] > 0}
    if not weights or sum(weights.values()) <= 0:
        raise UserError("data.sources: every non-empty source has weight 0")
    if not kind_weights:
        total = sum(weights.values())
        return {n: weights.get(n, 0.0) / total for n in sources}
    kinds = {sources[n].kind for n in weights}
    missing = sorted(kinds - set(kind_weights))
    if missing:
        raise UserError(
            f"data.kind_weights has no share for kind(s) {missing} of the sources; "
            f"give data.kind_weights.<kind> or set the sources' kind"
        )
    share = {k: float(kind_weights[k]) for k in kinds}
    total_share = sum(share.values())
    out = dict.fromkeys(sources, 0.0)
    for kind in kinds:
        members = {n: w for n, w in weights.items() if sources[n].kind == kind}
        inside = sum(members.values())
        for n, w in members.items():
            out[n] = share[kind] / total_share * (w / inside if inside else 0.0)
    return out
