"""Site adaptation by retraining: ``radgate models finetune MODEL VERSION --site S`` (or ``--deployment D``).

Needs the ``train`` extra (torch, onnx, onnxscript). The site's labelled cases are the stored predictions of
MODEL VERSION at site S that have a reference label (:func:`radgate.validation.truth.reference_labels`:
imported ground truth, label requests answered, radiologists' final reads, by precedence). Each case's
scored image is rendered exactly as inference renders it (the tensor cache, else
:func:`radgate.imaging.to_display` + :func:`radgate.inference.preprocess.to_tensor` with the manifest's
preprocessing), so the fine-tuned model learns from what it will see.

The weights start from the champion's: the ONNX graph is read back into torch. This works for graphs of the
shape radgate's demo trainer exports (``scripts/train_demo_model.py``: a chain of Conv + ReLU, then the
class-activation head ``einsum(nchw,c->nhw) + b``, spatial mean, sigmoid; batch norm folded into the
convolutions by the exporter); any other graph is refused with a message, since a general ONNX-to-torch
conversion is not something radgate can promise. Fine-tune your own architecture in its framework and
bring it in with ``radgate models import``.

Training: a stratified split (``val_fraction`` held out, by ``seed``); the last ``trainable_layers``
convolutions and the head are trained (the earlier layers are frozen, so their output is computed once per
image and once for its left-right mirror: fine-tuning the top of a network on a few hundred site cases, on a
CPU, in about a minute), AdamW, class-balanced BCE, a fixed number of epochs; the weights with the best
held-out AUC
are kept (the starting weights count as epoch 0, so fine-tuning never returns worse-on-held-out weights than
it started from). The operating point is re-chosen on the held-out split: the highest threshold reaching the
champion's claimed sensitivity (as the trainer did). The result is a new model version: its ONNX (opset 18,
dynamic batch, the same input and outputs), a manifest with the new threshold and training data, and a model
card saying site, months, counts and scanners, with the held-out AUC before and after. It is installed in the
registry; deploy it in shadow beside the champion, ``radgate compare``, then ``radgate deployments promote``.

A synthetic demo model stays synthetic: nothing here makes it a medical device.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import tempfile
import time
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import select

from radgate import audit
from radgate.config import Settings
from radgate.db import Database
from radgate.db.schema import Instance, Study
from radgate.engine.tables import Prediction
from radgate.errors import Invalid
from radgate.imaging import to_display
from radgate.imaging.decode import DecodeError, read_dataset
from radgate.inference.cache import TensorCache
from radgate.inference.preprocess import to_tensor
from radgate.models.manifest import Manifest, ModelInfo, Preprocessing, TrainingData
from radgate.models.package import write_package
from radgate.models.registry import add_model, get_model, open_model
from radgate.routing.deployment import get_deployment
from radgate.stats import delong, threshold_for_sensitivity
from radgate.storage import blobs_for
from radgate.validation.truth import reference_labels

__all__ = ["FineTuned", "SiteCases", "finetune_model", "site_cases"]

MIN_CLASS = 10  # labelled positives and negatives needed (each), before the split


@dataclass(frozen=True)
class FineTuned:
    name: str
    version: str
    from_version: str
    site: str
    sha256: str
    n: int
    positives: int
    n_train: int
    n_validation: int
    epochs: int
    trainable_layers: int
    best_epoch: int
    auc_before: float  # held-out split, the starting weights
    auc_after: float  # held-out split, the kept weights
    threshold: float
    months: tuple[str, str]
    scanners: dict[str, int]
    seconds: float


@dataclass
class SiteCases:
    """The labelled cases of one model version at one site, rendered as the model's inputs."""

    x: NDArray[np.float32]  # [N, channels, H, W]
    y: NDArray[np.int64]
    scanners: list[str]
    dates: list[str]  # StudyDate (YYYYMMDD) where known
    skipped: int


def site_cases(
    db: Database, settings: Settings, model: str, version: str, site: str, prep: Preprocessing
) -> SiteCases:
    """Every stored prediction of ``model version`` at ``site`` with a reference label, as model inputs."""
    with db.session() as s:
        rows = s.execute(
            select(
                Prediction.StudyInstanceUID,
                Prediction.SeriesInstanceUID,
                Prediction.SOPInstanceUID,
                Prediction.features,
                Study.StudyDate,
            )
            .join(Study, Study.StudyInstanceUID == Prediction.StudyInstanceUID, isouter=True)
            .where(
                Prediction.model_name == model, Prediction.model_version == version, Prediction.site == site
            )
            .order_by(Prediction.id)
        ).all()
        instances: dict[str, tuple[int, str, str, str]] = {}
        uids = [r[2] for r in rows if r[2]]
        for i in range(0, len(uids), 500):
            for inst in s.execute(
                select(
                    Instance.SOPInstanceUID,
                    Instance.revision,
                    Instance.path,
                    Instance.sha256,
                    Instance.Manufacturer,
                    Instance.ManufacturerModelName,
                ).where(Instance.SOPInstanceUID.in_(uids[i : i + 500]))
            ):
                uid, revision, path, sha, manufacturer, model_name = inst
                if uid not in instances or revision > instances[uid][0]:
                    scanner = f"{manufacturer or ''} {model_name or ''}".strip() or "unknown"
                    instances[uid] = (revision, path, sha, scanner)
    by_series = reference_labels(db, [r[1] for r in rows])
    by_study = reference_labels(db, [r[0] for r in rows])
    cache = TensorCache(Path(settings.data_dir))
    blobs = blobs_for(settings)
    xs: list[np.ndarray] = []
    ys: list[int] = []
    scanners: list[str] = []
    dates: list[str] = []
    seen: set[str] = set()
    skipped = 0
    for study, series, sop, _features, study_date in rows:
        label = by_series.get(series, by_study.get(study))
        if label is None or sop is None or sop in seen or sop not in instances:
            continue
        seen.add(sop)
        _, path, sha, scanner = instances[sop]
        tensor = cache.get(prep, sop, sha)
        if tensor is None:
            try:
                ds = read_dataset(blobs.local_path(path))
                tensor = to_tensor(to_display(ds, max_bytes=settings.ingest.max_decoded_bytes), prep)
            except (DecodeError, ValueError, OSError):
                skipped += 1
                continue
        xs.append(np.asarray(tensor, dtype=np.float32))
        ys.append(int(label))
        scanners.append(scanner)
        dates.append(study_date or "")
    x = np.stack(xs) if xs else np.zeros((0, prep.channels, prep.height, prep.width), np.float32)
    return SiteCases(x, np.asarray(ys, dtype=np.int64), scanners, dates, skipped)


# -- the ONNX graph back into torch ----------------------------------------------------------------------


def _graph_layers(weights: bytes) -> tuple[list[dict[str, Any]], np.ndarray, float]:
    """The Conv + ReLU chain and the CAM head of a demo-trainer graph; :class:`Invalid` for anything else."""
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError as exc:  # pragma: no cover - the train extra is installed in the dev venv
        raise Invalid(_NEEDS_TRAIN) from exc
    graph = onnx.load_from_string(weights).graph
    init = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    nodes = list(graph.node)
    unsupported = Invalid(
        "models finetune supports the graphs radgate's demo trainer exports (Conv + ReLU chain, CAM head); "
        "this model's graph has another shape. Fine-tune it in its own framework and bring the result in "
        "with `radgate models import`."
    )
    layers: list[dict[str, Any]] = []
    i = 0
    current = graph.input[0].name if graph.input else ""
    while i + 1 < len(nodes) and nodes[i].op_type == "Conv" and nodes[i + 1].op_type == "Relu":
        conv = nodes[i]
        if conv.input[0] != current or len(conv.input) != 3 or nodes[i + 1].input[0] != conv.output[0]:
            raise unsupported
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in conv.attribute}
        if attrs.get("group", 1) != 1 or attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
            raise unsupported
        weight, bias = init.get(conv.input[1]), init.get(conv.input[2])
        pads = list(attrs.get("pads", [0, 0, 0, 0]))
        if (
            weight is None
            or bias is None
            or pads[:2] != pads[2:]
            or list(attrs.get("dilations", [1, 1])) != [1, 1]
        ):
            raise unsupported
        layers.append(
            {
                "weight": weight,
                "bias": bias,
                "stride": tuple(attrs.get("strides", [1, 1])),
                "pad": tuple(pads[:2]),
            }
        )
        current = nodes[i + 1].output[0]
        i += 2
    tail = [n.op_type for n in nodes[i:]]
    if not layers or tail != ["Einsum", "Add", "ReduceMean", "Sigmoid"]:
        raise unsupported
    einsum, add = nodes[i], nodes[i + 1]
    equation = {a.name: onnx.helper.get_attribute_value(a) for a in einsum.attribute}.get("equation")
    if equation not in (b"nchw,c->nhw", "nchw,c->nhw") or einsum.input[0] != current:
        raise unsupported
    head_w, head_b = init.get(einsum.input[1]), init.get(add.input[1])
    if head_w is None or head_b is None:
        raise unsupported
    return layers, np.asarray(head_w), float(np.asarray(head_b).reshape(-1)[0])


_NEEDS_TRAIN = (
    "models finetune needs the train extra (torch, onnx, onnxscript): "
    "`.venv/bin/pip install -e '.[train]'` (or `make train-extra`)"
)


def _torch_model(layers: list[dict[str, Any]], head_w: np.ndarray, head_b: float) -> Any:
    import torch
    from torch import nn

    class SiteCNN(nn.Module):
        """The champion's graph as trainable torch modules (folded batch norm: convolutions with bias)."""

        def __init__(self) -> None:
            super().__init__()
            mods: list[nn.Module] = []
            for layer in layers:
                cout, cin, kh, kw = layer["weight"].shape
                conv = nn.Conv2d(cin, cout, (kh, kw), layer["stride"], layer["pad"], bias=True)
                with torch.no_grad():
                    conv.weight.copy_(torch.from_numpy(np.array(layer["weight"], dtype=np.float32)))
                    assert conv.bias is not None
                    conv.bias.copy_(torch.from_numpy(np.array(layer["bias"], dtype=np.float32)))
                mods += [conv, nn.ReLU()]
            self.features = nn.Sequential(*mods)
            self.head_w = nn.Parameter(torch.from_numpy(np.array(head_w, dtype=np.float32)))
            self.head_b = nn.Parameter(torch.tensor(head_b, dtype=torch.float32))

        def cam(self, image: torch.Tensor) -> torch.Tensor:
            return torch.einsum("nchw,c->nhw", self.features(image), self.head_w) + self.head_b

        def forward(self, image: torch.Tensor) -> torch.Tensor:  # the logit
            return self.cam(image).mean(dim=(1, 2))

    class Exported(nn.Module):
        def __init__(self, net: SiteCNN) -> None:
            super().__init__()
            self.net = net

        def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            cam = self.net.cam(image)
            return torch.sigmoid(cam.mean(dim=(1, 2))), cam

    return SiteCNN(), Exported


def _logits(net: Any, x: np.ndarray, batch: int = 32) -> np.ndarray:
    import torch

    net.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(x), batch):
            out.append(net(torch.from_numpy(x[i : i + batch])).numpy())
    return np.concatenate(out) if out else np.zeros(0)


def _auc(y: np.ndarray, scores: np.ndarray) -> float:
    return float(delong(y, scores).auc)


def _export(exported: Any, prep: Preprocessing, outputs: tuple[str, str], input_name: str) -> bytes:
    import torch

    example = torch.zeros(2, prep.channels, prep.height, prep.width)
    batch = torch.export.Dim("N", min=1, max=1024)
    exporter_log = logging.getLogger("torch.onnx")
    level = exporter_log.level
    exporter_log.setLevel(logging.ERROR)  # "torchvision is not installed" and the like, on every export
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            program = _onnx_program(exported, example, batch, input_name, outputs)
    finally:
        exporter_log.setLevel(level)
    if program is None:
        raise RuntimeError("torch.onnx.export returned no program")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.onnx"
        program.save(path)
        return path.read_bytes()


def _onnx_program(exported: Any, example: Any, batch: Any, input_name: str, outputs: tuple[str, str]) -> Any:
    import torch

    return torch.onnx.export(
        exported.eval(),
        (example,),
        input_names=[input_name],
        output_names=list(outputs),
        dynamic_shapes={"image": {0: batch}},
        opset_version=18,
        dynamo=True,
        external_data=False,
        verbose=False,
    )


def _split(y: np.ndarray, val_fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    train, val = [], []
    for cls in (0, 1):
        idx = rng.permutation(np.flatnonzero(y == cls))
        k = max(2, int(round(len(idx) * val_fraction)))
        val.append(idx[:k])
        train.append(idx[k:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))


def finetune_model(
    db: Database,
    settings: Settings,
    model: str,
    version: str,
    site: str,
    *,
    by: str,
    new_version: str | None = None,
    epochs: int = 12,
    learning_rate: float = 1e-3,
    trainable_layers: int = 1,
    batch_size: int = 16,
    val_fraction: float = 0.3,
    seed: int = 0,
) -> FineTuned:
    """Fine-tune ``model version`` on ``site``'s labelled cases and install the result (module docstring)."""
    try:
        import torch
    except ImportError as exc:
        raise Invalid(_NEEDS_TRAIN) from exc
    bad_numbers = batch_size < 2 or learning_rate <= 0 or trainable_layers < 1
    if epochs < 1 or not 0.05 <= val_fraction <= 0.5 or bad_numbers:
        raise Invalid(
            f"--epochs must be >= 1 (got {epochs}), --layers >= 1 (got {trainable_layers}), the held-out "
            f"fraction 0.05-0.5 (got {val_fraction}), "
            f"the batch size >= 2 (got {batch_size}) and the learning rate > 0 (got {learning_rate})"
        )
    started = time.monotonic()
    target = new_version or f"{version}-ft.{re.sub(r'[^0-9A-Za-z]+', '-', site)}"
    with db.session() as s:
        installed = get_model(s, model, version)
    package = open_model(installed)
    manifest = package.manifest
    prep = manifest.preprocessing
    layers, head_w, head_b = _graph_layers(package.load_weights())
    cases = site_cases(db, settings, model, version, site, prep)
    pos, neg = int(cases.y.sum()), int(cases.y.size - cases.y.sum())
    if pos < MIN_CLASS or neg < MIN_CLASS:
        raise Invalid(
            f"{model} {version} at site {site!r} has {pos} labelled positive and {neg} negative case(s) with "
            f"a readable image; fine-tuning needs at least {MIN_CLASS} of each. Import labels with "
            "`radgate truth import` or answer label requests (`radgate learn queue`)."
        )
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    train_idx, val_idx = _split(cases.y, val_fraction, rng)
    net, exported_cls = _torch_model(layers, head_w, head_b)
    convs = [m for m in net.features if isinstance(m, torch.nn.Conv2d)]
    tune = max(1, min(trainable_layers, len(convs)))
    frozen = torch.nn.Sequential(*list(net.features)[: 2 * (len(convs) - tune)])
    top = torch.nn.Sequential(*list(net.features)[2 * (len(convs) - tune) :])
    for param in frozen.parameters():
        param.requires_grad_(False)
    frozen.eval()

    def features(x: np.ndarray) -> torch.Tensor:
        """The frozen layers' output, computed once per image (and once for its mirror image)."""
        out = []
        with torch.no_grad():
            for i in range(0, len(x), 32):
                out.append(frozen(torch.from_numpy(np.ascontiguousarray(x[i : i + 32]))))
        return torch.cat(out) if out else torch.zeros(0)

    def logit(f: torch.Tensor) -> torch.Tensor:
        return (torch.einsum("nchw,c->nhw", top(f), net.head_w) + net.head_b).mean(dim=(1, 2))

    def held_out_auc() -> float:
        top.eval()
        with torch.no_grad():
            return _auc(y_val, logit(f_val).numpy())

    x_val, y_val = cases.x[val_idx], cases.y[val_idx]
    f_val = features(x_val)
    auc_before = held_out_auc()
    best = (auc_before, 0, {k: v.detach().clone() for k, v in net.state_dict().items()})
    x_tr = cases.x[train_idx]
    f_train = torch.cat([features(x_tr), features(x_tr[..., ::-1])])  # left-right mirrors: either side
    y_train = torch.from_numpy(np.concatenate([cases.y[train_idx]] * 2).astype(np.float32))
    n_pos = float(y_train.sum())
    pos_weight = torch.tensor((len(y_train) - n_pos) / max(n_pos, 1.0))
    loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=pos_weight)
    params = [*top.parameters(), net.head_w, net.head_b]
    opt = torch.optim.AdamW(params, lr=learning_rate, weight_decay=1e-4)
    for epoch in range(1, epochs + 1):
        top.train()
        order = torch.from_numpy(rng.permutation(len(y_train)))
        for i in range(0, len(order), batch_size):
            idx = order[i : i + batch_size]
            loss = loss_fn(logit(f_train[idx]), y_train[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        auc = held_out_auc()
        if auc > best[0]:
            best = (auc, epoch, {k: v.detach().clone() for k, v in net.state_dict().items()})
    auc_after, best_epoch, state = best
    net.load_state_dict(state)
    net.eval()
    probs = 1.0 / (1.0 + np.exp(-_logits(net, x_val)))
    primary_ops = [
        op for op in manifest.operating_points if manifest.finding_for(op).name == manifest.primary.name
    ]
    claimed = next((op.sensitivity for op in primary_ops if op.sensitivity is not None), None) or 0.9
    point = threshold_for_sensitivity(y_val, probs, claimed)
    threshold = float(point.threshold)
    cam_outputs = [name for name, spec in manifest.outputs.items() if spec.kind == "class_activation_map"]
    weights = _export(
        exported_cls(net),
        prep,
        (manifest.primary.output, cam_outputs[0] if cam_outputs else "cam"),
        prep.input,
    )
    dates = sorted(d for d in cases.dates if d)
    months = (_month(dates[0]), _month(dates[-1])) if dates else ("", "")
    scanners = dict(Counter(cases.scanners).most_common())
    ops = tuple(
        dataclasses.replace(
            op,
            threshold=threshold,
            sensitivity=float(point.sensitivity.estimate),
            specificity=float(point.specificity.estimate),
        )
        if op in primary_ops
        else op
        for op in manifest.operating_points
    )
    outputs = dict(manifest.outputs)
    out_name = manifest.primary.output
    outputs[out_name] = dataclasses.replace(outputs[out_name], calibrated=False)
    summary = (
        f"{manifest.training_data.summary} Fine-tuned at site {site} on {cases.y.size} labelled cases "
        f"({pos} positive) from {months[0]} to {months[1]}; scanners: "
        + ", ".join(f"{k} {v}" for k, v in scanners.items())
        + "."
    )
    new_manifest: Manifest = dataclasses.replace(
        manifest,
        model=ModelInfo(**{**dataclasses.asdict(manifest.model), "version": target}),
        operating_points=ops,
        outputs=outputs,
        calibration=None,
        training_data=TrainingData(
            summary=summary[:2000],
            n_images=manifest.training_data.n_images + int(train_idx.size),
            profiles=manifest.training_data.profiles,
        ),
    )
    seconds = time.monotonic() - started
    result = FineTuned(
        name=model,
        version=target,
        from_version=version,
        site=site,
        sha256="",
        n=int(cases.y.size),
        positives=pos,
        n_train=int(train_idx.size),
        n_validation=int(val_idx.size),
        epochs=epochs,
        trainable_layers=tune,
        best_epoch=best_epoch,
        auc_before=auc_before,
        auc_after=auc_after,
        threshold=threshold,
        months=months,
        scanners=scanners,
        seconds=seconds,
    )
    card = package.model_card.rstrip() + "\n\n" + _card_section(result, learning_rate, batch_size, seed)
    with tempfile.TemporaryDirectory() as tmp:
        written = write_package(Path(tmp) / f"{model}-{target}", new_manifest, weights, card)
        with db.session() as s:
            added = add_model(s, written.root, settings.data_dir, registered_by=by)
            audit.record(
                s,
                by,
                "models.finetune",
                f"{model} {target}",
                {
                    "from_version": version,
                    "site": site,
                    "n": result.n,
                    "positives": pos,
                    "auc_before_heldout": auc_before,
                    "auc_after_heldout": auc_after,
                    "sha256": added.sha256,
                },
            )
    return dataclasses.replace(result, sha256=added.sha256, seconds=time.monotonic() - started)


def _month(study_date: str) -> str:
    return f"{study_date[:4]}-{study_date[4:6]}" if len(study_date) >= 6 else study_date


def _card_section(r: FineTuned, lr: float, batch: int, seed: int) -> str:
    lines = [
        f"## Site fine-tuning ({r.site})",
        "",
        f"Fine-tuned from version {r.from_version} on {r.n} labelled cases of site {r.site} ({r.positives} "
        f"positive), acquired {r.months[0]} to {r.months[1]}: {r.n_train} for training, "
        f"{r.n_validation} held out (stratified, seed {seed}). The last {r.trainable_layers} convolution(s) "
        "and the "
        "head trained (earlier layers frozen), left-right mirrored copies added; AdamW, learning rate "
        f"{lr:g}, batch {batch}, "
        f"{r.epochs} epoch(s), class-balanced loss; the weights of epoch {r.best_epoch} (best held-out AUC; "
        "epoch 0 = the starting weights) are these.",
        "",
        "Scanners of the site's cases: " + ", ".join(f"{k} ({v})" for k, v in r.scanners.items()) + ".",
        "",
        "| held-out split | AUC |",
        "|---|---|",
        f"| before (version {r.from_version}) | {r.auc_before:.3f} |",
        f"| after (this version) | {r.auc_after:.3f} |",
        "",
        f"Operating point re-chosen on the held-out split: threshold {r.threshold:.4f} (the highest reaching "
        "the original claimed sensitivity). The held-out split chose the epoch and the threshold, so its AUC "
        "is optimistic: judge this version by `radgate compare` on new cases scored in shadow.",
        "",
        "Synthetic model: not a medical device.",
    ]
    return "\n".join(lines) + "\n"


def deployment_target(db: Database, deployment: str) -> tuple[str, str, str]:
    """(model, version, site) of a deployment (``--deployment D``)."""
    with db.session() as s:
        d = get_deployment(s, deployment)
        return d.model_name, d.model_version, d.site
