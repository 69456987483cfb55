"""Train radgate's bundled demo pneumothorax model on synthetic phantoms and write its model package.

Run (needs the ``train`` extra: ``.venv/bin/pip install torch==2.13.0 onnx onnxscript``)::

    .venv/bin/python scripts/train_demo_model.py            # the committed package, ~10 min on 2 cores
    .venv/bin/python scripts/train_demo_model.py --images 64 --steps 5 --out /tmp/pkg   # a smoke test

What it does, reproducibly from ``--seed``:

1. renders phantom chest radiographs (:mod:`radgate.synth`) of the training profile(s) only — adults, PA and
   AP views, pneumothorax in half of them, skin folds and central lines as look-alikes — as complete DICOM
   datasets, and turns each into the model input exactly as inference will
   (:func:`radgate.inference.preprocess.preprocess`: Modality LUT, first VOI, MONOCHROME1 inverted, area
   resize to 256 x 256);
2. trains a small CNN (strided 3x3 convolutions, batch norm, ReLU, global average pooling, one linear
   unit) with AdamW and a one-cycle learning rate, keeping the weights with the best AUC on an in-domain
   validation set;
3. exports ONNX (opset 18, dynamic batch) with two outputs: ``probability`` [N] and ``cam`` [N, 16, 16], the
   class activation map of Zhou et al., "Learning Deep Features for Discriminative Localization", CVPR
   2016: the last feature maps weighted by the linear unit's weights (its spatial mean is the logit);
4. scores held-out sets of *every* vendor profile with onnxruntime on the exported file, so the reported
   numbers are those of the shipped weights: AUC with DeLong 95 % intervals (:func:`radgate.stats.delong`),
   and sensitivity/specificity with Wilson intervals at the operating threshold, which is chosen on the
   in-domain validation set as the highest threshold reaching 90 % sensitivity (a triage operating point);
5. writes ``model.onnx``, ``manifest.toml`` (docs/model-package.md; SHA-256 of the weights) and
   ``MODEL_CARD.md`` with :func:`radgate.models.package.write_package`.

The profiles it was not trained on usually score lower: that domain gap is the point of the demo, and the
model card reports it rather than hiding it. Nothing here has clinical validity.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import warnings
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402

from radgate.inference.preprocess import preprocess  # noqa: E402
from radgate.models.manifest import Manifest, Preprocessing  # noqa: E402
from radgate.models.package import write_package  # noqa: E402
from radgate.stats import delong, operating_point, threshold_for_sensitivity  # noqa: E402
from radgate.synth import PROFILES, ImageJob, Scenario, image_jobs, render_job  # noqa: E402
from radgate.synth.scenario import parse_scenario  # noqa: E402

DEFAULT_OUT = ROOT / "radgate" / "data" / "models" / "demo-pneumothorax" / "1.0.0"
INPUT_SIZE = 256
TARGET_SENSITIVITY = 0.90
PREP = Preprocessing(height=INPUT_SIZE, width=INPUT_SIZE)


# -- data ----------------------------------------------------------------------------------------------------


@dataclass
class ImageSet:
    """Model inputs (float16 [N, H, W] in [0, 1]), labels, and the attributes results are broken down by."""

    name: str
    x: np.ndarray
    y: np.ndarray
    profile: list[str]
    view: list[str]
    size: list[str]
    manufacturer: list[str]


def scenario_for(name: str, profiles: Sequence[str], images: int, prevalence: float = 0.5) -> Scenario:
    """Adults, frontal views only (one image per study), the given profiles in equal shares."""
    return parse_scenario(
        {
            "scenario": {
                "name": name,
                "months": 1,
                "studies_per_month": images,
                "prevalence": prevalence,
                "description": "Training/evaluation phantoms for the demo model.",
            },
            "population": {"paediatric_fraction": 0.0},
            "studies": {"lateral_fraction": 0.0, "missing_instance_fraction": 0.0},
            "vendors": [{"from_month": 1, "mix": {p: 1.0 for p in profiles}}],
        },
        f"train_demo_model:{name}",
    )


def _render_inputs(jobs: list[ImageJob]) -> np.ndarray:
    """Worker: render each job to DICOM and preprocess it exactly as inference does."""
    # pydicom warns when a VOI LUT is applied to the float output of the Modality LUT; the lookup is exact
    # for the integer-valued arrays radgate.imaging passes (tests/test_synth_site.py compares it with a
    # direct table look-up).
    warnings.filterwarnings("ignore", message="Applying a VOI LUT on a float input array")
    out = np.empty((len(jobs), INPUT_SIZE, INPUT_SIZE), np.float16)
    for i, job in enumerate(jobs):
        out[i] = preprocess(render_job(job), PREP)[0]
    return out


def make_set(name: str, profiles: Sequence[str], images: int, seed: int, workers: int) -> ImageSet:
    jobs = image_jobs(scenario_for(name, profiles, images), seed)
    chunk = max(1, -(-len(jobs) // max(1, workers * 4)))
    chunks = [jobs[i : i + chunk] for i in range(0, len(jobs), chunk)]
    if workers > 1:
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
            parts = list(pool.map(_render_inputs, chunks))
    else:
        parts = [_render_inputs(c) for c in chunks]
    recs = [j.record for j in jobs]
    return ImageSet(
        name=name,
        x=np.concatenate(parts),
        y=np.array([r.pneumothorax is not None for r in recs], np.int64),
        profile=[r.profile.name for r in recs],
        view=[r.view for r in recs],
        size=[r.pneumothorax.size if r.pneumothorax else "" for r in recs],
        manufacturer=[r.profile.manufacturer for r in recs],
    )


# -- model ---------------------------------------------------------------------------------------------------


def build_model(widths: Sequence[int] = (16, 32, 64, 96)) -> tuple[Any, Any]:
    import torch
    from torch import nn

    def block(cin: int, cout: int, k: int, stride: int) -> list[nn.Module]:
        return [
            nn.Conv2d(cin, cout, k, stride, k // 2, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
        ]

    a, b, c, d = widths

    class DemoCNN(nn.Module):
        """Strided convolutions to a 16 x 16 grid of ``d`` features, global average pooling, one logit."""

        def __init__(self) -> None:
            super().__init__()
            self.features = nn.Sequential(
                *block(1, a, 5, 2),  # 128
                *block(a, b, 3, 2),  # 64
                *block(b, b, 3, 1),
                *block(b, c, 3, 2),  # 32
                *block(c, c, 3, 1),
                *block(c, d, 3, 2),  # 16
                *block(d, d, 3, 1),
            )
            self.head = nn.Linear(d, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.features(x).mean(dim=(2, 3))).squeeze(1)

    class Exported(nn.Module):
        """``probability`` = sigmoid(logit); ``cam`` = sum_c w_c F_c + b, whose spatial mean is the logit."""

        def __init__(self, net: DemoCNN) -> None:
            super().__init__()
            self.net = net

        def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            feats = self.net.features(image)
            w = self.net.head.weight[0]
            cam = torch.einsum("nchw,c->nhw", feats, w) + self.net.head.bias[0]
            logit = cam.mean(dim=(1, 2))
            return torch.sigmoid(logit), cam

    return DemoCNN, Exported


def train(
    train_set: ImageSet, val_set: ImageSet, steps: int, batch: int, lr: float, seed: int, log: bool = True
) -> tuple[Any, list[tuple[int, float, float]]]:
    import torch
    from torch import nn

    torch.manual_seed(seed)
    DemoCNN, Exported = build_model()
    net = DemoCNN()
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=max(steps, 1), pct_start=0.2)
    loss_fn = nn.BCEWithLogitsLoss()
    rng = np.random.default_rng(seed)
    n = len(train_set.y)
    order: list[int] = []
    eval_every = max(1, min(100, steps // 6))
    best_auc, best_state, history = -1.0, None, []
    xs = torch.from_numpy(train_set.x)
    ys = torch.from_numpy(train_set.y.astype(np.float32))
    for step in range(1, steps + 1):
        if len(order) < batch:
            order.extend(rng.permutation(n).tolist())
        idx, order = order[:batch], order[batch:]
        xb = xs[idx].float().unsqueeze(1)
        net.train()
        loss = loss_fn(net(xb), ys[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % eval_every == 0 or step == steps:
            # Rank by the logit (a saturated sigmoid would tie); sklearn scores ties and constants as 0.5.
            logits = predict_torch(net, val_set.x, logits=True)
            both = 0 < val_set.y.sum() < len(val_set.y)
            val_auc = float(roc_auc_score(val_set.y, logits)) if both else float("nan")
            history.append((step, loss.item(), val_auc))
            if log:
                print(f"  step {step:4d}/{steps}  loss {loss.item():.3f}  val AUC {val_auc:.3f}", flush=True)
            if not np.isnan(val_auc) and val_auc > best_auc or best_state is None:
                best_auc = val_auc if not np.isnan(val_auc) else best_auc
                best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
    assert best_state is not None
    net.load_state_dict(best_state)
    net.eval()
    return Exported(net).eval(), history


def predict_torch(net: Any, x: np.ndarray, batch: int = 64, logits: bool = False) -> np.ndarray:
    """Scores of the torch model (probabilities, or logits when ``logits``) for float16 images [N, H, W]."""
    import torch

    net.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(x), batch):
            z = net(torch.from_numpy(x[i : i + batch]).float().unsqueeze(1))
            out.append((z if logits else torch.sigmoid(z)).numpy())
    return np.concatenate(out)


def export_onnx(model: Any) -> bytes:
    import torch

    example = torch.zeros(2, 1, INPUT_SIZE, INPUT_SIZE)
    batch = torch.export.Dim("N", min=1, max=1024)
    program = torch.onnx.export(
        model,
        (example,),
        input_names=["image"],
        output_names=["probability", "cam"],
        dynamic_shapes={"image": {0: batch}},
        opset_version=18,
        dynamo=True,
        external_data=False,
    )
    if program is None:
        raise RuntimeError("torch.onnx.export returned no program")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.onnx"
        program.save(path)
        return path.read_bytes()


def predict_onnx(weights: bytes, x: np.ndarray, batch: int = 64) -> tuple[np.ndarray, tuple[int, ...]]:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    sess = ort.InferenceSession(weights, opts, providers=["CPUExecutionProvider"])
    probs, cam_shape = [], ()
    for i in range(0, len(x), batch):
        p, cam = sess.run(["probability", "cam"], {"image": x[i : i + batch].astype(np.float32)[:, None]})
        probs.append(p)
        cam_shape = cam.shape[1:]
    return np.concatenate(probs).astype(np.float64), cam_shape


# -- report --------------------------------------------------------------------------------------------------


@dataclass
class Row:
    group: str
    n_pos: int
    n_neg: int
    auc: float
    lo: float
    hi: float
    sens: float
    spec: float


def evaluate(y: np.ndarray, scores: np.ndarray, threshold: float, group: str) -> Row:
    pos, neg = int(y.sum()), int(len(y) - y.sum())
    if pos >= 2 and neg >= 2:
        res = delong(y, scores)
        auc, lo, hi = res.auc, res.ci[0], res.ci[1]
    else:
        auc = lo = hi = float("nan")
    if pos and neg:
        op = operating_point(y, scores, threshold)
        sens, spec = op.sensitivity.estimate, op.specificity.estimate
    else:
        sens = spec = float("nan")
    return Row(group, pos, neg, auc, lo, hi, sens, spec)


def fmt_table(rows: list[Row], first: str) -> str:
    lines = [
        f"| {first} | positives | negatives | AUC (95% CI, DeLong) | sensitivity | specificity |",
        "|---|---:|---:|---|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r.group} | {r.n_pos} | {r.n_neg} | {r.auc:.3f} ({r.lo:.3f}-{r.hi:.3f}) | "
            f"{r.sens:.3f} | {r.spec:.3f} |"
        )
    return "\n".join(lines)


def model_card(
    *,
    training: ImageSet,
    train_profiles: Sequence[str],
    threshold: float,
    in_domain: Row,
    per_profile: list[Row],
    per_view: list[Row],
    by_size: dict[str, float],
    steps: int,
    seed: int,
    minutes: float,
    args: argparse.Namespace,
) -> str:
    manufacturers = sorted({PROFILES[p].manufacturer for p in train_profiles})
    n_pos = int(training.y.sum())
    others = [r.sens for r in per_profile if "(trained)" not in r.group and not np.isnan(r.sens)]
    other_lo, other_hi = (min(others), max(others)) if others else (float("nan"), float("nan"))
    misses = round(in_domain.n_pos * (1.0 - in_domain.sens)) if in_domain.n_pos else 0
    false_alarms = round(in_domain.n_neg * (1.0 - in_domain.spec)) if in_domain.n_neg else 0
    views = {v: training.view.count(v) for v in sorted(set(training.view))}
    size_line = ", ".join(f"{k} {v:.2f}" for k, v in by_size.items())
    trained = ", ".join(
        f"`{p}` ({PROFILES[p].manufacturer} {PROFILES[p].model_name})" for p in train_profiles
    )
    return f"""# Model card: demo-pneumothorax 1.0.0

> **Synthetic demo model. No clinical validity. Not for clinical use.** It was trained and tested only on
> synthetic phantom images generated by radgate; it has never seen a patient's radiograph. It exists so that
> radgate's gateway, validation and monitoring can be demonstrated end to end on one machine.

## Intended use (of the demo)
- Task: **triage** — flag adult **PA or AP chest radiographs** (CR or DX) that may show a **pneumothorax**,
  so that a worklist can bring them forward. It does not diagnose and does not rule out.
- Population: adults (18+), any sex. Lateral views, children and other body parts are out of scope and
  are routed away by radgate.
- Validated subgroups: Manufacturer {", ".join(manufacturers)}; ViewPosition PA and AP. Live results
  outside them are to be withheld by radgate's policy stage (the deployment policy is not built yet;
  until then a deployment's mode alone decides what is sent).

## Training data
- {len(training.y)} synthetic phantom images ({n_pos} with pneumothorax), profile(s) {trained};
  views {", ".join(f"{k} {v}" for k, v in views.items())}; adults only; skin folds and central lines
  present as look-alikes. Pneumothorax apical or lateral, left or right, small / moderate / large
  (rim 5-15 / 15-30 / 30-55 mm) and of varying conspicuity.
- Phantoms: projected anatomy (body, lungs, heart, mediastinum, diaphragm, ribs, clavicles, vessels),
  quantum noise, vendor-style processing and DICOM encoding (`radgate synth`, `radgate/synth/`).
- Validation for model selection and the operating point: {args.val_images} further in-domain images.

## Model
- Input: `image` float32 [N, 1, {INPUT_SIZE}, {INPUT_SIZE}], the display rendering of the DICOM image
  (Modality LUT, first VOI LUT item or window, MONOCHROME1 inverted) area-resized, values in [0, 1]
  (`radgate.inference.preprocess`).
- Architecture: 7 convolutions (5x5/3x3, four with stride 2, batch norm, ReLU), global average pooling,
  one linear unit; {steps} AdamW steps, one-cycle learning rate, seed {seed}.
- Outputs: `probability` [N] (sigmoid of the logit; **not calibrated**), and `cam` [N, 16, 16], the class
  activation map (Zhou et al., CVPR 2016) whose mean is the logit. The map is a rough guide to where the
  model looked, not proof of a finding.

## Operating point
- Threshold **{threshold:.4f}** on `probability`: the highest threshold reaching {TARGET_SENSITIVITY:.0%}
  sensitivity on the in-domain validation set. On the held-out in-domain test set: sensitivity
  {in_domain.sens:.3f}, specificity {in_domain.spec:.3f}.

## Held-out performance per vendor profile
Scored with onnxruntime on the shipped `model.onnx`; {args.eval_images} fresh phantom images per profile
(adults, PA/AP, prevalence 0.5); sensitivity and specificity at the threshold above. Profiles marked
**trained** are in-domain; the others show the domain gap a new scanner opens — the demo's point.

{fmt_table(per_profile, "profile")}

Per view, all profiles pooled:

{fmt_table(per_view, "view")}

Sensitivity by size on the in-domain test set: {size_line}.

## Limitations
- Synthetic anatomy and physics: real radiographs have far more variety (disease, devices, positioning,
  body habitus); performance here says nothing about performance on patients.
- In-domain at the operating threshold it missed {misses} of {in_domain.n_pos} pneumothoraces and raised
  {false_alarms} false alarm(s) in {in_domain.n_neg} negatives; small and inconspicuous pneumothoraces are
  the usual misses, and skin folds and central lines are the look-alikes in the data.
- On other vendors' images the scores shift (see the table): at this threshold the sensitivity there
  ranges from {other_lo:.2f} to {other_hi:.2f}. Validate and set the threshold locally before any use.
- Scores are uncalibrated; recalibrate on local data (`radgate` validation) before reading them as risks.

## Reproduce
`.venv/bin/python scripts/train_demo_model.py --seed {seed} --images {args.images} --steps {steps}`
(about {minutes:.0f} min on 2 CPU threads when this package was made).
"""


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="package folder to write")
    ap.add_argument("--profiles", default="siemens-dx", help="training profile(s), comma-separated")
    ap.add_argument("--images", type=int, default=2400, help="training images")
    ap.add_argument("--val-images", type=int, default=400, help="in-domain validation images")
    ap.add_argument("--eval-images", type=int, default=300, help="held-out images per profile")
    ap.add_argument("--steps", type=int, default=600, help="optimiser steps")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--seed", type=int, default=2025)
    ap.add_argument("--threads", type=int, default=2, help="torch threads")
    ap.add_argument("--workers", type=int, default=2, help="processes rendering phantoms")
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    train_profiles = [p.strip() for p in args.profiles.split(",") if p.strip()]
    unknown = [p for p in train_profiles if p not in PROFILES]
    if unknown or not train_profiles:
        ap.error(f"unknown training profile(s) {unknown}; known: {', '.join(PROFILES)}")
    started = time.perf_counter()

    print(f"Rendering phantoms ({args.workers} worker(s)) ...", flush=True)
    training = make_set("demo-train", train_profiles, args.images, args.seed, args.workers)
    validation = make_set("demo-val", train_profiles, args.val_images, args.seed + 1, args.workers)
    tests = {
        p: make_set(f"demo-test-{p}", [p], args.eval_images, args.seed + 2 + i, args.workers)
        for i, p in enumerate(PROFILES)
    }
    t_data = time.perf_counter() - started
    print(
        f"  {len(training.y) + len(validation.y) + sum(len(t.y) for t in tests.values())} images "
        f"in {t_data:.0f} s",
        flush=True,
    )

    print(f"Training {args.steps} steps on {', '.join(train_profiles)} ...", flush=True)
    model, _history = train(training, validation, args.steps, args.batch, args.lr, args.seed)
    weights = export_onnx(model)
    print(f"Exported ONNX: {len(weights) / 1e6:.2f} MB", flush=True)

    val_scores, cam_shape = predict_onnx(weights, validation.x)
    if cam_shape != (INPUT_SIZE // 16, INPUT_SIZE // 16):
        raise RuntimeError(f"the exported cam output has shape {cam_shape}, expected (16, 16)")
    if 0 < validation.y.sum() < len(validation.y):
        threshold = threshold_for_sensitivity(validation.y, val_scores, TARGET_SENSITIVITY).threshold
    else:
        threshold = 0.5
    threshold = float(np.clip(threshold, 0.0, 1.0))

    per_profile, pooled_y, pooled_s, pooled_view = [], [], [], []
    in_domain_y, in_domain_s, in_domain_size = [], [], []
    for p, ts in tests.items():
        scores, _ = predict_onnx(weights, ts.x)
        tag = f"`{p}`" + (" (trained)" if p in train_profiles else "")
        per_profile.append(evaluate(ts.y, scores, threshold, tag))
        pooled_y.append(ts.y)
        pooled_s.append(scores)
        pooled_view.extend(ts.view)
        if p in train_profiles:
            in_domain_y.append(ts.y)
            in_domain_s.append(scores)
            in_domain_size.extend(ts.size)
    y_all, s_all = np.concatenate(pooled_y), np.concatenate(pooled_s)
    views = np.array(pooled_view)
    per_view = [evaluate(y_all[views == v], s_all[views == v], threshold, v) for v in ("PA", "AP")]
    y_in, s_in = np.concatenate(in_domain_y), np.concatenate(in_domain_s)
    in_domain = evaluate(y_in, s_in, threshold, "in-domain")
    sizes = np.array(in_domain_size)
    by_size = {}
    for size in ("small", "moderate", "large"):
        sel = sizes == size
        if sel.any():
            by_size[size] = float((s_in[sel] >= threshold).mean())

    minutes = (time.perf_counter() - started) / 60.0
    sens = None if np.isnan(in_domain.sens) else round(in_domain.sens, 4)
    spec = None if np.isnan(in_domain.spec) else round(in_domain.spec, 4)
    manufacturers = sorted({PROFILES[p].manufacturer for p in train_profiles})
    op: dict[str, object] = {"name": "default", "threshold": round(threshold, 6)}
    if sens is not None:
        op["sensitivity"] = sens
    if spec is not None:
        op["specificity"] = spec
    manifest = Manifest.from_dict(
        {
            "schema_version": 1,
            "model": {
                "name": "demo-pneumothorax",
                "version": "1.0.0",
                "task": "triage",
                "description": "Synthetic demo model: pneumothorax triage on adult PA/AP chest radiographs, "
                "trained on radgate phantoms. No clinical validity.",
                "synthetic_training_data": True,
                "licence": "Apache-2.0",
            },
            "findings": [
                {
                    "name": "pneumothorax",
                    "output": "probability",
                    "code": {"scheme": "SCT", "value": "36118008", "meaning": "Pneumothorax"},
                    "site": {"scheme": "SCT", "value": "39607008", "meaning": "Lung structure"},
                }
            ],
            "intended_use": {
                "modalities": ["CR", "DX"],
                "sop_classes": ["1.2.840.10008.5.1.4.1.1.1", "1.2.840.10008.5.1.4.1.1.1.1"],
                "body_parts": ["CHEST"],
                "views": ["PA", "AP"],
                "age_min": 18,
                "age_max": 120,
                "sexes": ["F", "M", "O"],
                "summary": "Adult PA/AP chest radiographs; pneumothorax triage. "
                "Synthetic demo, not for clinical use.",
            },
            "preprocessing": {
                "height": INPUT_SIZE,
                "width": INPUT_SIZE,
                "channels": 1,
                "input": "image",
                "voi": "first_window",
                "monochrome1": "invert",
                "normalisation": "none",
                "mean": 0.0,
                "std": 1.0,
            },
            "outputs": {
                "probability": {
                    "kind": "probability",
                    "meaning": "Probability of pneumothorax",
                    "calibrated": False,
                },
                "cam": {
                    "kind": "class_activation_map",
                    "meaning": "Class activation map (16 x 16) of the pneumothorax logit; "
                    "a rough guide, not proof",
                },
            },
            "operating_points": [op],
            "explanation": {"method": "cam", "output": "cam"},
            "validated_subgroups": {"Manufacturer": manufacturers, "ViewPosition": ["PA", "AP"]},
            "training_data": {
                "summary": f"{len(training.y)} synthetic phantom chest radiographs "
                "(adult PA/AP, prevalence 0.5) "
                f"from radgate.synth profile(s) {', '.join(train_profiles)}; no patient data.",
                "n_images": len(training.y),
                "profiles": train_profiles,
            },
            "weights": {"file": "model.onnx", "sha256": "0" * 64},
        }
    )
    card = model_card(
        training=training,
        train_profiles=train_profiles,
        threshold=threshold,
        in_domain=in_domain,
        per_profile=per_profile,
        per_view=per_view,
        by_size=by_size,
        steps=args.steps,
        seed=args.seed,
        minutes=minutes,
        args=args,
    )
    package = write_package(args.out, manifest, weights, card)
    print(f"\nWrote {package.label}")
    print(fmt_table(per_profile, "profile"))
    print(
        f"threshold {threshold:.4f}; in-domain sensitivity {in_domain.sens:.3f}, "
        f"specificity {in_domain.spec:.3f}"
    )
    print(f"total {minutes:.1f} min (data {t_data / 60:.1f} min)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
