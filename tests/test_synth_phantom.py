"""The phantom's parts: patients, scenarios, where a pneumothorax is drawn, and the image encoding."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import numpy as np
import pytest

from radgate.synth import ImageSpec, Pneumothorax, get_profile, render_image
from radgate.synth.findings import SIZE_RANGES_MM, sample_pneumothorax
from radgate.synth.population import PopulationMix, age_on, sample_patient
from radgate.synth.scenario import (
    ScenarioError,
    builtin_scenario,
    builtin_scenario_names,
    parse_scenario,
    resolve_scenario,
)
from radgate.synth.site import plan_site


def test_age_birth_date_and_study_date_agree_including_29_february() -> None:
    rng = np.random.default_rng(0)
    mix = PopulationMix(paediatric_fraction=0.3)
    for day in (dt.date(2024, 2, 29), dt.date(2025, 3, 1), dt.date(2025, 12, 31), dt.date(2025, 1, 1)):
        for n in range(300):
            p = sample_patient(rng, n, day, mix)
            assert age_on(p.PatientBirthDate, day) == p.age
            assert p.PatientAge == f"{p.age:03d}Y" and 1 <= p.age <= 99
            assert p.PatientName == f"SYNTHETIC^PHANTOM-{n:06d}"


def test_population_mix_is_respected() -> None:
    # 4,000 draws at p = 0.1 (children) and 0.6 (women): binomial SDs 19 and 31, so 5 SDs is a safe bound.
    rng = np.random.default_rng(1)
    mix = PopulationMix(paediatric_fraction=0.1, female_fraction=0.6)
    patients = [sample_patient(rng, n, dt.date(2025, 6, 1), mix) for n in range(4000)]
    children = sum(p.age < 18 for p in patients)
    women = sum(p.PatientSex == "F" for p in patients)
    assert abs(children - 400) < 5 * 19
    assert abs(women - 2400) < 5 * 31


def test_population_mix_rejects_impossible_fractions() -> None:
    with pytest.raises(ValueError, match="paediatric_fraction is 1.5"):
        PopulationMix(paediatric_fraction=1.5)


def test_builtin_scenarios_load_and_demo_site_gets_a_new_scanner_in_month_8() -> None:
    assert {"demo-site", "all-profiles"} <= set(builtin_scenario_names())
    demo = builtin_scenario("demo-site")
    assert demo.months == 12 and set(demo.prevalence) == {0.15}
    plans = plan_site(demo.with_total(240), seed=2)
    months_by_profile: dict[str, set[int]] = {}
    for st in plans:
        months_by_profile.setdefault(st.profile, set()).add(st.month)
    assert min(months_by_profile["agfa-dx"]) >= 7  # 0-based month 7 = calendar month 8
    assert len(plans) == 240
    assert [st.study_datetime for st in plans] == sorted(st.study_datetime for st in plans)


def test_with_total_keeps_the_calendar_shape() -> None:
    s = parse_scenario(
        {
            "scenario": {"name": "shape", "months": 3, "studies_per_month": [10, 20, 30]},
            "vendors": [{"from_month": 1, "mix": {"ge-dx": 1}}],
        }
    )
    assert s.with_total(6).studies_per_month == (1, 2, 3)
    assert sum(s.with_total(7).studies_per_month) == 7


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"scenario": {"name": "x", "months": 2}, "vendors": [{"from_month": 1, "mix": {"nope": 1}}]},
            "unknown profile",
        ),
        (
            {
                "scenario": {"name": "x", "months": 2, "prevalence": [0.1]},
                "vendors": [{"from_month": 1, "mix": {"ge-dx": 1}}],
            },
            "expected 2",
        ),
        (
            {
                "scenario": {"name": "x", "months": 2, "colour": 1},
                "vendors": [{"from_month": 1, "mix": {"ge-dx": 1}}],
            },
            "unknown key",
        ),
        (
            {"scenario": {"name": "x", "months": 2}, "vendors": [{"from_month": 2, "mix": {"ge-dx": 1}}]},
            "from_month = 1",
        ),
        (
            {
                "scenario": {"name": "x", "months": 2},
                "studies": {"lateral_fraction": 2.0},
                "vendors": [{"from_month": 1, "mix": {"ge-dx": 1}}],
            },
            "lateral_fraction is 2.0",
        ),
    ],
)
def test_scenario_errors_name_the_key_and_value(data: dict, message: str) -> None:
    with pytest.raises(ScenarioError, match=message):
        parse_scenario(data, "test.toml")


def test_resolve_scenario_prefers_profile_or_named_scenario() -> None:
    assert resolve_scenario(profile="ge-dx", studies=4).studies_per_month == (4,)
    assert resolve_scenario("all-profiles", studies=30).total_studies == 30
    with pytest.raises(ScenarioError, match="neither a file nor a built-in"):
        resolve_scenario("no-such-scenario")


def test_prevalence_of_planned_studies_matches_the_scenario() -> None:
    # 1,000 studies at prevalence 0.3: binomial SD 14.5; allow 5 SDs.
    plans = plan_site(builtin_scenario("all-profiles").with_total(1000), seed=9)
    positives = sum(st.pneumothorax is not None for st in plans)
    assert abs(positives - 300) < 5 * 14.5
    sizes = Counter(st.pneumothorax.size for st in plans if st.pneumothorax is not None)
    assert set(sizes) == set(SIZE_RANGES_MM)


def test_pneumothorax_rejects_a_depth_outside_its_size_class() -> None:
    with pytest.raises(ValueError, match="outside small"):
        Pneumothorax("left", "apical", "small", 40.0)
    p = sample_pneumothorax(np.random.default_rng(3))
    lo, hi = SIZE_RANGES_MM[p.size]
    assert lo <= p.depth_mm <= hi


def _changed_pixels(ptx: Pneumothorax, view: str = "PA") -> np.ndarray:
    spec = ImageSpec(get_profile("siemens-dx"), view, 45, "M")
    base = render_image(spec, np.random.default_rng(7)).pixels.astype(np.int64)
    with_ptx = render_image(
        ImageSpec(spec.profile, view, 45, "M", ptx), np.random.default_rng(7)
    ).pixels.astype(np.int64)
    return np.abs(with_ptx - base) > 0.02 * spec.profile.max_stored


@pytest.mark.parametrize("side", ["right", "left"])
def test_pneumothorax_is_drawn_on_the_labelled_side(side: str) -> None:
    # Frontal views are displayed with the patient's right on the image's left (Patient Orientation L\F).
    changed = _changed_pixels(Pneumothorax(side, "lateral", "large", 45.0))
    half = changed.shape[1] // 2
    left_half, right_half = changed[:, :half].sum(), changed[:, half:].sum()
    assert left_half + right_half > 200
    if side == "right":
        assert left_half > 10 * right_half
    else:
        assert right_half > 10 * left_half


def test_apical_pneumothorax_sits_above_a_lateral_one() -> None:
    apical = np.argwhere(_changed_pixels(Pneumothorax("right", "apical", "moderate", 30.0)))
    lateral = np.argwhere(_changed_pixels(Pneumothorax("right", "lateral", "moderate", 30.0)))
    # Mean row of the changed pixels: the apex is higher (smaller row) than the lateral chest wall.
    assert apical[:, 0].mean() < lateral[:, 0].mean() - 20
    # And a lateral pneumothorax lies further from the midline (smaller column on the patient's right).
    assert lateral[:, 1].mean() < apical[:, 1].mean()


def test_rendering_is_deterministic_and_independent_per_stream() -> None:
    spec = ImageSpec(get_profile("agfa-dx"), "AP", 70, "F", None, ("line", "skin_fold"))
    a = render_image(spec, np.random.default_rng(123))
    b = render_image(spec, np.random.default_rng(123))
    c = render_image(spec, np.random.default_rng(124))
    assert a.voi_lut is not None and b.voi_lut is not None
    assert np.array_equal(a.pixels, b.pixels) and np.array_equal(a.voi_lut, b.voi_lut)
    assert not np.array_equal(a.pixels, c.pixels)


def test_lungs_are_darker_than_the_mediastinum_on_every_profile() -> None:
    from radgate.synth import PROFILES

    for name, profile in PROFILES.items():
        img = render_image(ImageSpec(profile, "PA", 40, "M"), np.random.default_rng(5))
        p = img.pixels.astype(np.float64) / profile.max_stored
        if profile.voi == "lut":
            assert img.voi_lut is not None
            p = img.voi_lut[img.pixels] / 4095.0
        if profile.photometric == "MONOCHROME1":
            p = 1.0 - p
        rows, cols = p.shape
        band = p[int(0.35 * rows) : int(0.5 * rows)]
        centre = band[:, int(0.47 * cols) : int(0.53 * cols)].mean()
        lungs = np.concatenate(
            [band[:, int(0.22 * cols) : int(0.32 * cols)], band[:, int(0.68 * cols) : int(0.78 * cols)]]
        )
        assert lungs.mean() < centre - 0.2, name
