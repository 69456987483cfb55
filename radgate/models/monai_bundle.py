"""A MONAI bundle as a radgate model: read ``configs/metadata.json``, convert the network, map the rest.

A MONAI bundle (https://docs.monai.io/en/stable/mb_specification.html) is a folder with
``configs/metadata.json`` (``network_data_format``: the inputs' and outputs' channels, spatial shape, value
range and channel meanings; ``intended_use``, ``description``, ``version``, ``data_source`` ...) and the
network as either ``models/model.ts`` (TorchScript) or ``models/model.pt`` (a state dict) with the network's
definition in ``configs/inference.json`` (``network_def``, instantiated by MONAI's ``ConfigParser``).

Conversion needs the ``train`` extra (torch, monai). The network's output ``[N, C]`` (class logits) becomes
one ONNX output ``probability`` ``[N]``: softmax over the channels (``C > 1``) or a sigmoid (``C = 1``), then
the channel of the finding — the one ``channel_def`` names that is not ``background``, unless ``channel`` is
given. The exported graph is run beside the torch network on the same random batch and must agree (to
1e-4), so a conversion that changed the model never becomes a package.
"""

from __future__ import annotations

import json
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from radgate.models.importer import (
    ImportAnswers,
    ImportPlan,
    ModelImportError,
    _slug,
    defaults_from_signature,
    read_signature,
)
from radgate.models.versions import VERSION_RE

__all__ = ["ACTIVATIONS", "BundleInfo", "plan_monai_import", "read_metadata"]

ACTIVATIONS = ("softmax", "sigmoid", "none")
INPUT_NAME = "image"
OUTPUT_NAME = "probability"
TOLERANCE = 1e-4


class BundleInfo:
    """What ``configs/metadata.json`` says, read defensively (bundles in the wild vary)."""

    def __init__(self, bundle: Path, meta: dict[str, Any]) -> None:
        self.bundle, self.meta = bundle, meta
        where = f"{bundle / 'configs' / 'metadata.json'}"
        ndf = meta.get("network_data_format") or {}
        inputs, outputs = ndf.get("inputs") or {}, ndf.get("outputs") or {}
        if not isinstance(inputs, dict) or not inputs or not isinstance(outputs, dict) or not outputs:
            raise ModelImportError(
                f"{where}: network_data_format needs 'inputs' and 'outputs' tables; radgate reads the "
                f"network's input size and output channels from them."
            )
        self.input_key, self.input = next(iter(inputs.items()))
        self.output_key, self.output = next(iter(outputs.items()))
        spatial = self.input.get("spatial_shape") or []
        if len(spatial) != 2 or not all(isinstance(v, int) and v > 0 for v in spatial):
            raise ModelImportError(
                f"{where}: inputs.{self.input_key}.spatial_shape is {spatial!r}; radgate feeds 2-D images, "
                f"expected [height, width] with fixed sizes."
            )
        self.height, self.width = spatial
        self.channels = int(self.input.get("num_channels", 1))
        self.out_channels = int(self.output.get("num_channels", 1))
        channel_def = self.output.get("channel_def") or {}
        self.channel_names = {int(k): str(v) for k, v in channel_def.items() if str(k).isdigit()}

    def finding_channel(self) -> int:
        """The channel carrying the finding: the last one that is not called background."""
        named = [
            c for c, n in sorted(self.channel_names.items()) if n.lower() not in ("background", "normal")
        ]
        if named:
            return named[-1]
        return self.out_channels - 1

    def defaults(self) -> ImportAnswers:
        m = self.meta
        version = str(m.get("version", ""))
        value_range = self.input.get("value_range")
        channel = self.finding_channel()
        finding = self.channel_names.get(channel)
        return ImportAnswers(
            name=_slug(str(m.get("name") or self.bundle.name)) or None,
            version=version if VERSION_RE.match(version) else None,
            description=_text(m.get("description")) or _text(m.get("task")),
            licence=_text(m.get("license")) or _licence_file(self.bundle),
            intended_use=_text(m.get("intended_use")),
            training_data=_text(m.get("data_source")),
            finding=_slug(finding) if finding else None,
            height=self.height,
            width=self.width,
            channels=self.channels,
            normalisation="none" if value_range in (None, [0, 1], [0.0, 1.0]) else None,
        )


def _text(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def _licence_file(bundle: Path) -> str | None:
    for name in ("LICENSE", "LICENSE.txt", "docs/LICENSE"):
        path = bundle / name
        if path.is_file():
            for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
                if line.strip():
                    return line.strip()[:120]
    return None


def read_metadata(bundle: Path) -> BundleInfo:
    bundle = Path(bundle)
    path = bundle / "configs" / "metadata.json"
    if not bundle.is_dir():
        raise ModelImportError(f"MONAI bundle {str(bundle)!r} is not a folder.")
    if not path.is_file():
        raise ModelImportError(f"{str(bundle)!r} has no configs/metadata.json; is it a MONAI bundle?")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelImportError(f"{path}: not readable JSON: {exc}") from None
    if not isinstance(meta, dict):
        raise ModelImportError(f"{path}: expected a JSON object.")
    return BundleInfo(bundle, meta)


# -- the network ------------------------------------------------------------------------------------------


def _torch() -> Any:
    try:
        import torch
    except ImportError:
        raise ModelImportError(
            "--monai-bundle converts the network with torch and monai: install the train extra "
            "(pip install 'radgate[train]')."
        ) from None
    return torch


def load_network(bundle: Path) -> tuple[Any, str]:
    """The bundle's network in eval mode, and where it came from."""
    torch = _torch()
    ts = bundle / "models" / "model.ts"
    if ts.is_file():
        try:
            with warnings.catch_warnings():  # torch deprecates TorchScript; bundles still ship it
                warnings.simplefilter("ignore", DeprecationWarning)
                return torch.jit.load(str(ts), map_location="cpu").eval(), "models/model.ts (TorchScript)"
        except Exception as exc:  # torch raises RuntimeError and its own types
            raise ModelImportError(f"{ts}: not a TorchScript model torch can load: {_first(exc)}") from None
    pt = bundle / "models" / "model.pt"
    config = next(
        (c for c in (bundle / "configs" / f"inference.{e}" for e in ("json", "yaml")) if c.is_file()), None
    )
    if not pt.is_file() or config is None:
        raise ModelImportError(
            f"{str(bundle)!r} has neither models/model.ts nor models/model.pt with configs/inference.json; "
            f"radgate needs one of them to convert the network."
        )
    try:
        from monai.bundle import ConfigParser
    except ImportError:
        raise ModelImportError(
            "--monai-bundle needs monai: install the train extra (pip install 'radgate[train]')."
        ) from None
    parser = ConfigParser()
    try:
        parser.read_config(str(config))
        parser["bundle_root"] = str(bundle)
        if "network_def" not in parser.get():
            raise ModelImportError(f"{config}: no 'network_def'; radgate instantiates the network from it.")
        net = parser.get_parsed_content("network_def", instantiate=True)
    except ModelImportError:
        raise
    except Exception as exc:  # MONAI's config errors are of many types
        raise ModelImportError(f"{config}: cannot instantiate network_def: {_first(exc)}") from None
    try:
        state = torch.load(str(pt), map_location="cpu", weights_only=True)
        if isinstance(state, dict) and isinstance(state.get("model"), dict):
            state = state["model"]  # a checkpoint saved by MONAI's CheckpointSaver: {"model": state_dict}
        net.load_state_dict(state)
    except Exception as exc:  # torch raises RuntimeError for a mismatched state dict
        raise ModelImportError(
            f"{pt}: the weights do not fit network_def in {config.name}: {_first(exc)}"
        ) from None
    definition = parser.get("network_def")
    target = definition.get("_target_", "?") if isinstance(definition, dict) else "?"
    return net.eval(), f"models/model.pt with network_def {target} ({config.name})"


def _first(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _scorer(torch: Any, net: Any, activation: str, channel: int) -> Any:
    class Score(torch.nn.Module):
        """The network's channel ``channel`` after ``activation``: one score per image, ``[N]``."""

        def __init__(self) -> None:
            super().__init__()
            self.net = net
            self.activation = activation
            self.channel = channel

        # TorchScript reads this annotation from the source and resolves ``torch`` in the closure.
        def forward(self, image: torch.Tensor) -> torch.Tensor:
            out = self.net(image)
            out = out.reshape(out.shape[0], -1)
            if self.activation == "softmax":
                out = torch.softmax(out, dim=1)
            elif self.activation == "sigmoid":
                out = torch.sigmoid(out)
            return out[:, self.channel]

    score = Score().eval()
    if not isinstance(net, torch.jit.ScriptModule):
        return score
    with warnings.catch_warnings():  # a ScriptModule can only be wrapped by scripting the wrapper
        warnings.simplefilter("ignore", DeprecationWarning)
        return torch.jit.script(score)


def export_onnx(info: BundleInfo, net: Any, activation: str, channel: int) -> bytes:
    """The scored network as ONNX (opset 18, dynamic batch), checked against torch on a random batch."""
    torch = _torch()
    example = torch.zeros(2, info.channels, info.height, info.width)
    with torch.no_grad():
        try:
            raw = net(example)
        except Exception as exc:  # whatever the network raises on a wrong input
            raise ModelImportError(
                f"the bundle's network fails on a batch [2, {info.channels}, {info.height}, {info.width}] "
                f"(from network_data_format): {_first(exc)}"
            ) from None
    if not hasattr(raw, "shape") or raw.shape[0] != 2:
        raise ModelImportError("the bundle's network does not return one tensor with a row per image.")
    channels = int(np.prod(raw.shape[1:]))
    if not 0 <= channel < channels:
        raise ModelImportError(
            f"--channel is {channel}; the network gives {channels} value(s) per image (0 to {channels - 1})."
        )
    model = _scorer(torch, net, activation, channel)
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        path = Path(tmp) / "model.onnx"
        try:
            torch.onnx.export(
                model,
                (example,),
                str(path),
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_axes={INPUT_NAME: {0: "N"}, OUTPUT_NAME: {0: "N"}},
                opset_version=18,
                dynamo=False,
            )
        except Exception as exc:  # the exporter raises many types for unsupported operators
            raise ModelImportError(
                f"torch cannot export the bundle's network to ONNX: {_first(exc)}"
            ) from None
        weights = path.read_bytes()
    _check_against_torch(torch, model, weights, info)
    return weights


def _check_against_torch(torch: Any, model: Any, weights: bytes, info: BundleInfo) -> None:
    import onnxruntime as ort

    batch = np.random.default_rng(0).random((3, info.channels, info.height, info.width), dtype=np.float32)
    with torch.no_grad():
        expected = model(torch.from_numpy(batch)).numpy()
    session = ort.InferenceSession(weights, providers=["CPUExecutionProvider"])
    got = session.run([OUTPUT_NAME], {INPUT_NAME: batch})[0]
    diff = float(np.max(np.abs(np.asarray(got) - expected)))
    if not diff <= TOLERANCE:
        raise ModelImportError(
            f"the ONNX export differs from the torch network by {diff:.2g} (more than {TOLERANCE:g}); "
            f"not writing a package that would score differently."
        )


def plan_monai_import(
    bundle: Path, given: ImportAnswers, channel: int | None = None, activation: str | None = None
) -> ImportPlan:
    """Read the bundle, convert its network and combine the answers given with what the bundle says."""
    info = read_metadata(Path(bundle))
    channel = info.finding_channel() if channel is None else channel
    activation = activation or ("softmax" if info.out_channels > 1 else "sigmoid")
    if activation not in ACTIVATIONS:
        raise ModelImportError(f"--activation is {activation!r}; expected one of {', '.join(ACTIVATIONS)}.")
    net, origin = load_network(info.bundle)
    weights = export_onnx(info, net, activation, channel)
    sig = read_signature(weights, f"the ONNX export of {info.bundle}")
    defaults = info.defaults().merged(defaults_from_signature(sig))
    defaults.output_kind = "probability" if activation != "none" else "score"
    if info.channel_names.get(channel) and channel != info.finding_channel():
        defaults.finding = _slug(info.channel_names[channel])
    m = info.meta
    notes = [
        f"Converted from the MONAI bundle `{info.bundle.name}`"
        + (f" version {m['version']}" if m.get("version") else "")
        + f": {origin}, output `{info.output_key}` channel {channel} after {activation}, exported to ONNX "
        f"opset 18 and checked against torch to {TOLERANCE:g}.",
    ]
    for key, label in (("authors", "Authors"), ("copyright", "Copyright"), ("references", "References")):
        value = m.get(key)
        if value:
            notes.append(f"{label}: {', '.join(map(str, value)) if isinstance(value, list) else value}.")
    if info.input.get("value_range") not in (None, [0, 1], [0.0, 1.0]):
        notes.append(
            f"The bundle's input value range is {info.input.get('value_range')}; radgate feeds [0, 1] "
            f"(set --normalisation zscore --mean --std if the network expects other values)."
        )
    return ImportPlan(weights, sig, given.merged(defaults), f"the ONNX export of {info.bundle}", notes)
