"""Environment facts for the GPU check (``scripts/gpu_check.py``): Python, torch and CUDA, the
GPU, where each package mmfw needs is imported from, and (``--attention``) which attention
kernels run and agree with a float32 reference. Prints one JSON object on its last line.

Runs on a CPU too (the check's dry run): the CUDA-only kernels are then reported as not run.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import importlib.util
import inspect
import json
import platform
import sys
from pathlib import Path

# import name -> distribution name (for the version when the module has no __version__)
PACKAGES = {
    "torch": "torch",
    "lightning": "lightning",
    "transformers": "transformers",
    "tokenizers": "tokenizers",
    "huggingface_hub": "huggingface_hub",
    "peft": "peft",
    "timm": "timm",
    "deepspeed": "deepspeed",
    "hydra": "hydra-core",
    "omegaconf": "omegaconf",
    "pydantic": "pydantic",
    "safetensors": "safetensors",
    "numpy": "numpy",
    "triton": "triton",
    "flash_attn": "flash-attn",
    "pytest": "pytest",
    "mmfw": "mmfw",
}


def packages() -> dict:
    """Version and import location of each package (or the import error)."""
    out = {}
    for name, dist in PACKAGES.items():
        try:
            mod = importlib.import_module(name)
        except Exception as e:  # a missing or broken package is a fact to report
            out[name] = {"error": f"{type(e).__name__}: {e}"[:300]}
            continue
        version = getattr(mod, "__version__", None)
        if version is None:
            try:
                version = importlib.metadata.version(dist)
            except importlib.metadata.PackageNotFoundError:
                version = None
        out[name] = {"version": str(version), "path": str(Path(mod.__file__ or "?").parent)}
    return out


def torch_facts() -> dict:
    import torch

    facts: dict = {
        "version": torch.__version__,
        "cuda": torch.version.cuda,
        "cuda_available": torch.cuda.is_available(),
        "device_count": torch.cuda.device_count(),
    }
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        facts.update(
            gpu=props.name,
            capability=f"{props.major}.{props.minor}",
            memory_bytes=props.total_memory,
            multiprocessors=props.multi_processor_count,
            bf16=torch.cuda.is_bf16_supported(),
            cudnn=torch.backends.cudnn.version(),
            nccl=".".join(map(str, torch.cuda.nccl.version())),
        )
    return facts


def _rel_err(out, ref) -> float:
    return float((out.float() - ref).norm() / ref.norm())


def _try(fn) -> dict:
    try:
        return {"ok": True, "rel_err": round(fn(), 6)}
    except Exception as e:  # an unsupported kernel is a fact to report
        return {"ok": False, "error": f"{type(e).__name__}: {e}"[:300]}


def attention() -> dict:
    """Run each kernel mmfw may use on a small causal problem; report ok and the error against
    float32 math (bf16 on a GPU: expect 1e-3 to 1e-2)."""
    import torch
    import torch.nn.functional as F
    from torch.nn.attention import SDPBackend

    cuda = torch.cuda.is_available()
    device, dtype = ("cuda", torch.bfloat16) if cuda else ("cpu", torch.float32)
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 8, 256, 64, device=device, dtype=dtype) for _ in range(3))
    ref = F.scaled_dot_product_attention(q.float(), k.float(), v.float(), is_causal=True)
    out: dict = {"device": device, "dtype": str(dtype)}
    for name in ("FLASH_ATTENTION", "EFFICIENT_ATTENTION", "CUDNN_ATTENTION", "MATH"):
        if not cuda and name != "MATH":
            out[f"sdpa_{name.lower()}"] = {"ok": False, "error": "not run: no CUDA"}
            continue
        backend = getattr(SDPBackend, name)
        out[f"sdpa_{name.lower()}"] = _try(lambda b=backend: _sdpa(b, q, k, v, ref))
    # Two documents packed in one row of 256: causal inside each, nothing across.
    lengths = [96, 160]
    doc = torch.cat([torch.full((n,), i, device=device) for i, n in enumerate(lengths)])
    mask = (doc[:, None] == doc[None, :]) & torch.ones(256, 256, device=device).tril().bool()
    packed_ref = F.scaled_dot_product_attention(q.float(), k.float(), v.float(), attn_mask=mask)
    out["flex_attention_document_mask"] = _try(lambda: _flex(q, k, v, doc, packed_ref, cuda))
    out["varlen_attn"] = (
        _try(lambda: _varlen(q, k, v, lengths, packed_ref))
        if cuda
        else {"ok": False, "error": "not run: no CUDA"}
    )
    out["flash_attn_installed"] = importlib.util.find_spec("flash_attn") is not None
    return out


def _sdpa(backend, q, k, v, ref) -> float:
    import torch.nn.functional as F
    from torch.nn.attention import sdpa_kernel

    with sdpa_kernel(backend):
        return _rel_err(F.scaled_dot_product_attention(q, k, v, is_causal=True), ref)


def _flex(q, k, v, doc, ref, cuda: bool) -> float:
    import torch
    from torch.nn.attention.flex_attention import create_block_mask, flex_attention

    def keep(b, h, qi, ki):
        return (doc[qi] == doc[ki]) & (qi >= ki)

    n = q.shape[-2]
    block = create_block_mask(keep, None, None, n, n, device=q.device.type)
    fn = torch.compile(flex_attention) if cuda else flex_attention
    return _rel_err(fn(q, k, v, block_mask=block), ref)


def _varlen(q, k, v, lengths: list[int], ref) -> float:
    """torch's varlen kernel on row 0 as two sequences ((tokens, heads, dim) layout)."""
    import torch
    from torch.nn.attention.varlen import varlen_attn

    qs, ks, vs = (t[0].transpose(0, 1).contiguous() for t in (q, k, v))
    cu = torch.tensor([0, lengths[0], sum(lengths)], device=q.device, dtype=torch.int32)
    params = inspect.signature(varlen_attn).parameters
    # The causal switch was renamed between torch releases.
    causal = {"is_causal": True} if "is_causal" in params else {"window_size": (-1, 0)}
    got = varlen_attn(qs, ks, vs, cu, cu, max(lengths), max(lengths), **causal)
    return _rel_err(got.transpose(0, 1), ref[0])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--attention", action="store_true", help="probe the attention kernels")
    parser.add_argument("--json", type=Path, help="also write the JSON object to this file")
    args = parser.parse_args(argv)
    facts = (
        attention()
        if args.attention
        else {
            "python": sys.version.split()[0],
            "executable": sys.executable,
            "platform": platform.platform(),
            "torch": torch_facts(),
            "packages": packages(),
        }
    )
    print(json.dumps(facts))
    if args.json:
        args.json.write_text(json.dumps(facts))


if __name__ == "__main__":
    main()
