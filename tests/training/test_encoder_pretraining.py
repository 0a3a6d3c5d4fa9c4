"""The toy CLIP stand-in: scene views with dense labels, a pretraining that learns them, cached by
recipe, loaded through encoder.pretrained; nothing runs on the meta device."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from hydra.utils import instantiate

import mmfw
from mmfw.data.synthetic.scenes import IGNORE, SURFACES, cut_view, draw_scene
from mmfw.training.encoder_pretraining import ScenePretraining

CLIP = "transformers.CLIPVisionModel"
TOWER = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
         "num_attention_heads": 2, "image_size": 32, "patch_size": 8}  # fmt: skip
MEAN, STD = [0.5, 0.5, 0.5], [0.25, 0.25, 0.25]


def scene(seed: int = 0):
    return draw_scene(np.random.default_rng(seed), 64, (2, 2), (12, 12), (0, 0), (10, 10),
                      1.0, 0.0, 0)  # fmt: skip


def test_view_labels_follow_the_objects():
    s = scene()
    view, labels = cut_view(s, np.random.default_rng(0), 64, 8, 1.0)  # the whole scene, native
    assert view.shape == (3, 64, 64) and view.dtype == torch.uint8
    assert torch.equal(view.permute(1, 2, 0), torch.from_numpy(s.pixels))
    for k in range(2):
        rows, cols = np.nonzero(s.ids == k)
        r, c = (rows.min() + rows.max()) // 2 // 8, (cols.min() + cols.max()) // 2 // 8
        assert labels["colour"][r * 8 + c] == s.colour[k] + 1  # the object's centre patch
        assert labels["surface"][r * 8 + c] == s.surface[k] and s.surface[k] >= 2  # textured
    assert (labels["colour"] == 0).sum() > 40  # background patches name nothing
    _, low = cut_view(s, np.random.default_rng(0), 32, 8, 0.5)  # downsampled 2x
    assert (low["surface"] == IGNORE).any() and not (low["surface"] >= 2).any()


@pytest.mark.slow  # ~26 s; make demo runs the same pretraining, make test-full this test
def test_pretraining_learns_caches_and_loads(tmp_path):
    recipe = ScenePretraining(steps=150, batch_size=32, lr=3e-3, scales=[1.0], objects=[1, 2],
                              clutter=[0, 1], cache_dir=str(tmp_path))  # fmt: skip
    path = recipe(CLIP, TOWER, MEAN, STD)
    record = json.loads((tmp_path / path / "pretraining.json").read_text())
    acc = record["held_out_accuracy"]
    # chance: 1/9 colours, 1/5 shapes, 1/4 textures (of textured patches), 1/4 rows/cols
    assert acc["colour"] > 0.5 and acc["row"] > 0.9 and acc["col"] > 0.9, acc
    stamp = (tmp_path / path / "model.safetensors").stat().st_mtime_ns
    assert recipe(CLIP, TOWER, MEAN, STD) == path  # cached: not trained again
    assert (tmp_path / path / "model.safetensors").stat().st_mtime_ns == stamp
    other = ScenePretraining(steps=2, batch_size=2, scales=[1.0], cache_dir=str(tmp_path))
    assert other(CLIP, TOWER, MEAN, STD) != path  # another recipe, another folder
    assert recipe.folder(CLIP, {**TOWER, "hidden_size": 16}, MEAN, STD) != recipe.folder(
        CLIP, TOWER, MEAN, STD
    )

    cfg = mmfw.compose(["experiment=tiny_llava", "encoder=tiny_vit_scenes",
                        *(f"encoder.config.{k}={v}" for k, v in TOWER.items()),
                        "encoder.pretrained.steps=150", "encoder.pretrained.batch_size=32",
                        "encoder.pretrained.lr=3e-3", "encoder.pretrained.scales=[1.0]",
                        "encoder.pretrained.objects=[1,2]", "encoder.pretrained.clutter=[0,1]",
                        "encoder.image_mean=[0.5,0.5,0.5]", "encoder.image_std=[0.25,0.25,0.25]",
                        f"paths.cache={tmp_path}"])  # fmt: skip
    encoder = instantiate(cfg.encoder)  # the same recipe through the yaml: the cached tower
    from safetensors.torch import load_file

    saved = load_file(str(tmp_path / path / "model.safetensors"))
    for name, tensor in encoder.model.state_dict().items():
        assert torch.equal(tensor, saved[name]), name


def test_planning_does_not_pretrain(tmp_path):
    cfg = mmfw.compose(
        ["experiment=tiny_llava", "encoder=tiny_vit_scenes", f"paths.cache={tmp_path}"]
    )
    with torch.device("meta"):
        encoder = instantiate(cfg.encoder)
    assert next(encoder.parameters()).device.type == "meta"
    assert not (tmp_path / "encoders").exists()


def test_bad_recipe_names_the_key():
    with pytest.raises(ValueError, match="heads"):
        ScenePretraining(heads=["texture"])
    with pytest.raises(ValueError, match="object_size"):
        ScenePretraining(object_size=[9, 3])
    assert len(SURFACES) == 6


def test_a_tower_without_position_embeddings_stays_placeless(tmp_path):
    """encoder.position_embedding=false: pretrained and used with the table held at zero, so a
    patch token says what it shows, not where; a row/column head is refused."""
    recipe = ScenePretraining(steps=3, batch_size=4, scales=[1.0], cache_dir=str(tmp_path),
                              heads=["colour", "shape", "surface"])  # fmt: skip
    with pytest.raises(ValueError, match="drop 'position'"):
        ScenePretraining(steps=1, batch_size=1, cache_dir=str(tmp_path))(
            CLIP, TOWER, MEAN, STD, position_embedding=False
        )
    placed = recipe.folder(CLIP, TOWER, MEAN, STD)
    assert recipe.folder(CLIP, TOWER, MEAN, STD, position_embedding=True) == placed
    assert recipe.folder(CLIP, TOWER, MEAN, STD, position_embedding=False) != placed

    cfg = mmfw.compose(["experiment=tiny_llava", "encoder=tiny_vit_scenes_unplaced",
                        *(f"encoder.config.{k}={v}" for k, v in TOWER.items()),
                        "encoder.pretrained.steps=3", "encoder.pretrained.batch_size=4",
                        f"encoder.image_mean={MEAN}", f"encoder.image_std={STD}",
                        f"paths.cache={tmp_path}"])  # fmt: skip
    encoder = instantiate(cfg.encoder)
    table = encoder.model.embeddings.position_embedding.weight
    assert not table.any() and not table.requires_grad
    assert "model.embeddings.position_embedding.weight" in encoder.unused_parameters()
    record = json.loads(next((tmp_path / "encoders").glob("*/pretraining.json")).read_text())
    assert record["position_embedding"] is False and "row" not in record["held_out_accuracy"]
    # Same patch content at two places in the view: the same token (a placed tower differs).
    x = torch.full((1, 3, 32, 32), 0.5)
    x[..., 0:8, 0:8] = 1.0
    y = torch.full((1, 3, 32, 32), 0.5)
    y[..., 16:24, 8:16] = 1.0
    fx, fy = encoder.encode(x)[0], encoder.encode(y)[0]
    assert torch.allclose(fx[0], fy[2 * 4 + 1], atol=1e-5)
    assert torch.allclose(fx[5], fy[0], atol=1e-5)  # two background patches
