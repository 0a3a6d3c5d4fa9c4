"""Offline ``--filters``: the subset of the wandb public API's MongoDB-style filter syntax
that :func:`matches` documents (fields such as group, tags, state, name, ``config.<key>`` and
``summary_metrics.<key>``; comparison, membership, ``$exists``, ``$regex`` and ``$and $or
$nor``), checked against a :class:`WandbRun`; anything else raises :class:`FilterError`.
"""

from __future__ import annotations

import re
from typing import Any

from mmfw.report.wandb_run import WandbRun

_MISSING = object()


class FilterError(ValueError):
    """A --filters the offline reader cannot apply (or no JSON object)."""


def _field(run: WandbRun, name: str) -> Any:
    """A filter's field: group, tags, state, name (the run id, as in the API), display_name,
    config.<dotted key>, summary_metrics.<key>."""
    simple = {"group": run.group, "tags": run.tags, "state": run.state, "name": run.id,
              "display_name": run.name, "displayName": run.name, "project": run.project,
              "entity": run.entity}  # fmt: skip
    if name in simple:
        return simple[name]
    head, _, rest = name.partition(".")
    if head == "summary_metrics" and rest:
        return run.summary.get(rest, _MISSING)
    if head == "config" and rest:
        parts = rest.split(".")
        if len(parts) > 1 and parts[1] == "value":  # the API's stored form, config.<k>.value.…
            parts = parts[:1] + parts[2:]
        node: Any = run.config
        for part in parts:
            if not isinstance(node, dict) or part not in node:
                return _MISSING
            node = node[part]
        return node
    raise FilterError(
        f"--filters: field {name!r} is not supported offline; use group, tags, state, name, "
        "display_name, config.<key> or summary_metrics.<key>"
    )


def _compare(op: str, value: Any, arg: Any) -> bool:
    """One operator on one value (a list field matches when the list or an element does)."""
    candidates = [value] + (value if isinstance(value, list) else [])
    if op == "$eq":
        return any(c == arg for c in candidates) or (value is _MISSING and arg is None)
    if op == "$ne":
        return not _compare("$eq", value, arg)
    if op == "$in":
        return any(_compare("$eq", value, a) for a in arg)
    if op == "$nin":
        return not _compare("$in", value, arg)
    if op == "$exists":
        return (value is not _MISSING) == bool(arg)
    if op == "$regex":
        return any(isinstance(c, str) and re.search(arg, c) for c in candidates)
    if op in ("$gt", "$gte", "$lt", "$lte"):
        test = {"$gt": lambda a, b: a > b, "$gte": lambda a, b: a >= b,
                "$lt": lambda a, b: a < b, "$lte": lambda a, b: a <= b}[op]  # fmt: skip
        try:
            return any(c is not _MISSING and test(c, arg) for c in candidates)
        except TypeError:
            return False
    raise FilterError(
        f"--filters: operator {op!r} is not supported offline; use $and, $or, $nor, $eq, $ne, "
        "$in, $nin, $gt, $gte, $lt, $lte, $exists, $regex"
    )


def matches(run: WandbRun, filters: dict) -> bool:
    """MongoDB-style filters as the public API takes them, offline subset: fields as
    :func:`_field` lists, a plain value is equality (for ``tags``: has that tag), operators
    ``$eq $ne $in $nin $gt $gte $lt $lte $exists $regex`` (Python ``re``) and ``$and $or $nor``
    over lists of filters; the keys of one filter all have to hold."""
    for key, cond in filters.items():
        if key in ("$and", "$or", "$nor"):
            results = [matches(run, f) for f in cond]
            ok = {"$and": all, "$or": any, "$nor": lambda r: not any(r)}[key](results)
        elif isinstance(cond, dict) and cond and all(k.startswith("$") for k in cond):
            value = _field(run, key)
            ok = all(_compare(op, value, arg) for op, arg in cond.items())
        else:
            ok = _compare("$eq", _field(run, key), cond)
        if not ok:
            return False
    return True
