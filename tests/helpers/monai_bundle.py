"""A small MONAI bundle built on the spot: a tiny ``monai.networks.nets.Classifier`` with random weights, saved
as a state dict with ``configs/inference.json`` (``network_def``), or as TorchScript ``models/model.ts``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SPATIAL = (32, 32)
NETWORK_DEF = {
    "_target_": "Classifier",
    "in_shape": [1, *SPATIAL],
    "classes": 2,
    "channels": [4, 8],
    "strides": [2, 2],
}


def metadata(name: str = "tiny_ptx_classifier") -> dict[str, Any]:
    """``configs/metadata.json`` as MONAI's bundle specification lays it out."""
    return {
        "schema": "https://github.com/Project-MONAI/MONAI-extra-test-data/releases/download/0.8.1/meta_schema_20220324.json",
        "version": "0.2.0",
        "name": name,
        "monai_version": "1.6.0",
        "pytorch_version": "2.13.0",
        "task": "Pneumothorax classification on chest radiographs",
        "description": "A tiny classifier for tests, random weights",
        "authors": "radgate tests",
        "copyright": "Copyright (c) radgate tests",
        "license": "Apache-2.0",
        "data_source": "none: random weights",
        "intended_use": "Tests only: adult PA/AP chest radiographs",
        "network_data_format": {
            "inputs": {
                "image": {
                    "type": "image",
                    "format": "magnitude",
                    "num_channels": 1,
                    "spatial_shape": list(SPATIAL),
                    "dtype": "float32",
                    "value_range": [0, 1],
                    "is_patch_data": False,
                    "channel_def": {"0": "image"},
                }
            },
            "outputs": {
                "pred": {
                    "type": "probabilities",
                    "format": "classes",
                    "num_channels": 2,
                    "spatial_shape": [1],
                    "dtype": "float32",
                    "value_range": [0, 1],
                    "is_onehot": True,
                    "channel_def": {"0": "background", "1": "pneumothorax"},
                }
            },
        },
    }


def network(seed: int = 0) -> Any:
    import torch
    from monai.networks.nets import Classifier

    torch.manual_seed(seed)
    kwargs = {k: v for k, v in NETWORK_DEF.items() if k != "_target_"}
    return Classifier(**kwargs).eval()


def build_bundle(dest: Path, torchscript: bool = False, seed: int = 0) -> tuple[Path, Any]:
    """Write a bundle to ``dest``; returns it and the torch network it holds (to compare scores with)."""
    import torch

    net = network(seed)
    (dest / "configs").mkdir(parents=True)
    (dest / "models").mkdir()
    (dest / "configs" / "metadata.json").write_text(json.dumps(metadata(), indent=2))
    if torchscript:
        torch.jit.script(net).save(str(dest / "models" / "model.ts"))
    else:
        inference = {
            "bundle_root": ".",
            "device": "$torch.device('cpu')",
            "network_def": NETWORK_DEF,
            "network": "$@network_def.to(@device)",
        }
        (dest / "configs" / "inference.json").write_text(json.dumps(inference, indent=2))
        torch.save(net.state_dict(), dest / "models" / "model.pt")
    return dest, net
