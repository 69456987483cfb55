"""Synthetic images for tests: one dataset per vendor profile, so a check runs on the whole variety."""

from __future__ import annotations

from functools import cache

from pydicom.dataset import Dataset

from radgate.synth import PROFILES
from radgate.synth.scenario import single_profile_scenario
from radgate.synth.site import image_jobs, render_job


@cache
def _first_frontal(profile: str) -> Dataset:
    for job in image_jobs(single_profile_scenario(profile, 4, prevalence=0.5), seed=5):
        if job.record.view in ("PA", "AP"):
            return render_job(job)
    raise AssertionError(f"profile {profile}: no frontal image in 4 studies")


def image_for(profile: str) -> Dataset:
    """A frontal chest radiograph of ``profile`` (a fresh copy each call)."""
    ds = _first_frontal(profile)
    copy = Dataset()
    copy.update(ds)
    copy.file_meta = ds.file_meta
    copy.PixelData = ds.PixelData
    return copy


def profile_names() -> list[str]:
    return sorted(PROFILES)


__all__ = ["image_for", "profile_names"]
