"""Generate a synthetic site: plan the studies of a scenario, render them, write DICOM and labels.csv.

Planning is cheap and sequential (one random stream for the calendar, patients, vendors, views and
findings); rendering draws each image from its own stream seeded by (seed, study, series, instance), so a
file does not depend on which others were generated before it. The output folder holds::

    DIR/dicom/<YYYY-MM>/<AccessionNumber>/SE<nn>/IM<nnnn>.dcm
    DIR/labels.csv   ground truth, one row per written image
    DIR/site.json    the resolved scenario, seed and counts (provenance; no timestamps)
"""

from __future__ import annotations

import calendar
import datetime as dt
import hashlib
import json
import logging
import shutil
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset
from pydicom.uid import UID

from radgate import __version__
from radgate.synth.findings import Pneumothorax, sample_pneumothorax
from radgate.synth.phantom import ImageSpec, render_image
from radgate.synth.population import Patient, sample_patient
from radgate.synth.profiles import PROFILES
from radgate.synth.scenario import Scenario
from radgate.synth.writer import ImageRecord, build_dataset, synthetic_uid, write_dataset, write_labels

__all__ = [
    "ImageJob",
    "InstancePlan",
    "SeriesPlan",
    "SiteSummary",
    "StudyPlan",
    "generate_site",
    "image_jobs",
    "plan_site",
    "render_job",
    "site_key",
]

log = logging.getLogger(__name__)

_DESCRIPTIONS = {
    "PA": ("XR CHEST PA", "SYNTHETIC CHEST PA"),
    "PA+LL": ("XR CHEST PA AND LATERAL", "SYNTHETIC CHEST PA AND LAT"),
    "AP": ("XR CHEST AP PORTABLE", "SYNTHETIC CHEST AP PORTABLE"),
}
_SERIES_LABEL = {"PA": "SYNTHETIC CHEST PA", "LL": "SYNTHETIC CHEST LAT", "AP": "SYNTHETIC CHEST AP PORTABLE"}


@dataclass(frozen=True)
class InstancePlan:
    view: str  # PA | AP | LL
    InstanceNumber: int
    written: bool  # False: the instance is missing from its series (an incomplete series)


@dataclass(frozen=True)
class SeriesPlan:
    SeriesNumber: int
    SeriesInstanceUID: UID
    SeriesDescription: str
    instances: tuple[InstancePlan, ...]

    @property
    def complete(self) -> bool:
        return all(i.written for i in self.instances)


@dataclass(frozen=True)
class StudyPlan:
    """One planned study; ``index`` orders studies by time across the whole site."""

    index: int
    month: int  # 0-based
    study_datetime: dt.datetime
    profile: str
    patient: Patient
    pneumothorax: Pneumothorax | None
    distractors: tuple[str, ...]
    StudyInstanceUID: UID
    AccessionNumber: str
    StudyDescription: str
    series: tuple[SeriesPlan, ...]


@dataclass
class SiteSummary:
    """What was written, for the CLI's summary (``seconds`` is the only non-reproducible value)."""

    out_dir: Path
    studies: int = 0
    images: int = 0
    missing_instances: int = 0
    positives: int = 0
    by_profile: Counter[str] = field(default_factory=Counter)
    by_view: Counter[str] = field(default_factory=Counter)
    by_month: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    @property
    def images_per_second(self) -> float:
        return self.images / self.seconds if self.seconds > 0 else 0.0


def site_key(scenario: Scenario, seed: int) -> str:
    """The identity of a generated site: the seed and the scenario's digest (all UIDs derive from it)."""
    return hashlib.sha256(f"radgate-synth/{seed}/{scenario.digest()}".encode()).hexdigest()


def plan_site(scenario: Scenario, seed: int) -> list[StudyPlan]:
    """Plan every study of ``scenario`` with ``seed`` (deterministic; nothing is rendered)."""
    if seed < 0:
        raise ValueError(f"seed {seed} is negative; expected a non-negative integer.")
    key = site_key(scenario, seed)
    tag = key[:4].upper()
    rng = np.random.default_rng([seed, int(key[:8], 16)])
    mix_studies = scenario.studies
    drafts: list[tuple[dt.datetime, int, str, bool]] = []
    for month in range(scenario.months):
        first = scenario.month_start(month)
        days = calendar.monthrange(first.year, first.month)[1]
        phase = scenario.phase(month)
        names = sorted(phase.mix)
        weights = np.array([phase.mix[n] for n in names], float)
        weights /= weights.sum()
        for _ in range(scenario.studies_per_month[month]):
            profile = names[int(rng.choice(len(names), p=weights))]
            ap = bool(rng.random() < PROFILES[profile].ap_fraction)
            day = first + dt.timedelta(days=int(rng.integers(days)))
            minute = int(rng.integers(0, 24 * 60)) if ap else int(rng.integers(7 * 60 + 30, 19 * 60 + 30))
            when = dt.datetime.combine(day, dt.time(minute // 60, minute % 60, int(rng.integers(60))))
            drafts.append((when, month, profile, ap))
    drafts.sort(key=lambda d: d[0])

    plans: list[StudyPlan] = []
    for index, (when, month, profile, ap) in enumerate(drafts):
        number = index + 1
        patient = sample_patient(rng, number, when.date(), scenario.population, id_prefix=f"SYN-{tag}")
        positive = bool(rng.random() < scenario.prevalence[month])
        ptx = sample_pneumothorax(rng) if positive else None
        distractors: list[str] = []
        if rng.random() < mix_studies.skin_fold_fraction:
            distractors.append("skin_fold")
        line_p = min(0.9, mix_studies.line_fraction * (3.0 if ap else 1.0))
        if rng.random() < line_p:
            distractors.append("line")
        study_uid = synthetic_uid(key, number)
        if ap:
            kind, layout = "AP", [["AP"]]
        elif rng.random() < mix_studies.lateral_fraction:
            kind = "PA+LL"
            layout = [["PA"], ["LL"]] if rng.random() < mix_studies.two_series_fraction else [["PA", "LL"]]
        else:
            kind, layout = "PA", [["PA"]]
        series: list[SeriesPlan] = []
        for s_no, views in enumerate(layout, start=1):
            missing = -1
            if len(views) > 1 and rng.random() < mix_studies.missing_instance_fraction:
                missing = int(rng.integers(len(views)))
            instances = tuple(InstancePlan(v, i + 1, i != missing) for i, v in enumerate(views))
            description = _DESCRIPTIONS[kind][1] if len(views) > 1 else _SERIES_LABEL[views[0]]
            series.append(SeriesPlan(s_no, synthetic_uid(key, number, s_no), description, instances))
        plans.append(
            StudyPlan(
                index=index,
                month=month,
                study_datetime=when,
                profile=profile,
                patient=patient,
                pneumothorax=ptx,
                distractors=tuple(distractors),
                StudyInstanceUID=study_uid,
                AccessionNumber=f"A{tag}{number:07d}",
                StudyDescription=_DESCRIPTIONS[kind][0],
                series=tuple(series),
            )
        )
    return plans


@dataclass(frozen=True)
class ImageJob:
    """One image to render: its header/label record, what to draw, and its random stream's key.

    Jobs are independent and picklable, so a caller may render them in any order or in worker processes
    (the demo model's training script does) and get the same bytes.
    """

    record: ImageRecord
    spec: ImageSpec
    stream: tuple[int, ...]


def image_jobs(scenario: Scenario, seed: int, plans: list[StudyPlan] | None = None) -> list[ImageJob]:
    """The written images of ``scenario`` (planned with ``seed`` unless ``plans`` are given), in order."""
    plans = plan_site(scenario, seed) if plans is None else plans
    key = site_key(scenario, seed)
    jobs: list[ImageJob] = []
    for st in plans:
        profile = PROFILES[st.profile]
        month = scenario.month_start(st.month).strftime("%Y-%m")
        for se in st.series:
            series_time = st.study_datetime + dt.timedelta(minutes=2 * (se.SeriesNumber - 1), seconds=30)
            for inst in se.instances:
                if not inst.written:
                    continue
                folder = f"dicom/{month}/{st.AccessionNumber}/SE{se.SeriesNumber:02d}"
                rel = f"{folder}/IM{inst.InstanceNumber:04d}.dcm"
                rec = ImageRecord(
                    path=rel,
                    profile=profile,
                    patient=st.patient,
                    pneumothorax=st.pneumothorax,
                    view=inst.view,
                    distractors=st.distractors,
                    StudyInstanceUID=st.StudyInstanceUID,
                    SeriesInstanceUID=se.SeriesInstanceUID,
                    SOPInstanceUID=synthetic_uid(key, st.index + 1, se.SeriesNumber, inst.InstanceNumber),
                    AccessionNumber=st.AccessionNumber,
                    StudyID=str(st.index + 1),
                    study_datetime=st.study_datetime,
                    series_datetime=series_time,
                    SeriesNumber=se.SeriesNumber,
                    InstanceNumber=inst.InstanceNumber,
                    series_expected_instances=len(se.instances),
                    series_complete=se.complete,
                    SeriesDescription=se.SeriesDescription,
                    StudyDescription=st.StudyDescription,
                    institution=scenario.institution,
                    month=month,
                )
                spec = ImageSpec(
                    profile, inst.view, st.patient.age, st.patient.PatientSex, st.pneumothorax, st.distractors
                )
                jobs.append(ImageJob(rec, spec, (seed, st.index, se.SeriesNumber, inst.InstanceNumber)))
    return jobs


def render_job(job: ImageJob) -> Dataset:
    """Render ``job`` into its complete DICOM dataset (not written anywhere)."""
    return build_dataset(job.record, render_image(job.spec, np.random.default_rng(list(job.stream))))


def generate_site(
    out_dir: Path,
    scenario: Scenario,
    seed: int,
    *,
    overwrite: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> SiteSummary:
    """Render and write the site for ``scenario`` and ``seed`` into ``out_dir``.

    Refuses to write into a folder that already holds a generated site unless ``overwrite`` (which removes
    the previous ``dicom/`` folder, ``labels.csv`` and ``site.json`` first). ``progress(done, total)`` is
    called after each image.
    """
    out_dir = Path(out_dir)
    labels_path = out_dir / "labels.csv"
    dicom_dir = out_dir / "dicom"
    if labels_path.exists() or dicom_dir.exists():
        if not overwrite:
            raise FileExistsError(
                f"{out_dir} already holds a synthetic site (labels.csv or dicom/); choose another folder or "
                "pass overwrite=True (--overwrite) to replace it."
            )
        shutil.rmtree(dicom_dir, ignore_errors=True)
        labels_path.unlink(missing_ok=True)
        (out_dir / "site.json").unlink(missing_ok=True)
    out_dir.mkdir(parents=True, exist_ok=True)

    plans = plan_site(scenario, seed)
    jobs = image_jobs(scenario, seed, plans)
    summary = SiteSummary(out_dir=out_dir, studies=len(plans))
    summary.positives = sum(st.pneumothorax is not None for st in plans)
    summary.missing_instances = sum(
        1 for st in plans for se in st.series for i in se.instances if not i.written
    )
    records: list[ImageRecord] = []
    started = time.perf_counter()
    for job in jobs:
        rec = job.record
        write_dataset(render_job(job), out_dir / rec.path)
        records.append(rec)
        summary.images += 1
        summary.by_profile[rec.profile.name] += 1
        summary.by_view[rec.view] += 1
        summary.by_month[rec.month] += 1
        if progress is not None:
            progress(summary.images, len(jobs))
    write_labels(labels_path, records)
    provenance = {
        "generator": f"radgate {__version__} synthetic site",
        "synthetic": True,
        "note": "Synthetic phantoms - not patient data; no clinical validity.",
        "seed": seed,
        "site_key": site_key(scenario, seed),
        "scenario": scenario.to_dict(),
        "studies": summary.studies,
        "images": summary.images,
        "missing_instances": summary.missing_instances,
        "positive_studies": summary.positives,
        "images_by_profile": dict(sorted(summary.by_profile.items())),
    }
    (out_dir / "site.json").write_text(
        json.dumps(provenance, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    summary.seconds = time.perf_counter() - started
    log.debug(
        "synthetic site %s: %d studies, %d images in %.1f s",
        site_key(scenario, seed)[:12],
        summary.studies,
        summary.images,
        summary.seconds,
    )
    return summary
