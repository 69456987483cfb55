"""Synthetic site: phantom chest radiographs with realistic DICOM headers and known ground truth.

Everything here is synthetic and says so in every file it writes; none of it is patient data.
"""

from radgate.synth.findings import Pneumothorax
from radgate.synth.phantom import ImageSpec, RenderedImage, render_image
from radgate.synth.profiles import PROFILES, ImageCharacter, Profile, describe_profiles, get_profile
from radgate.synth.scenario import (
    Scenario,
    ScenarioError,
    builtin_scenario,
    builtin_scenario_names,
    load_scenario,
    resolve_scenario,
    single_profile_scenario,
)
from radgate.synth.site import ImageJob, SiteSummary, generate_site, image_jobs, plan_site, render_job
from radgate.synth.writer import IMAGE_COMMENT, LABEL_COLUMNS

__all__ = [
    "IMAGE_COMMENT",
    "LABEL_COLUMNS",
    "PROFILES",
    "ImageCharacter",
    "ImageJob",
    "ImageSpec",
    "Pneumothorax",
    "Profile",
    "RenderedImage",
    "Scenario",
    "ScenarioError",
    "SiteSummary",
    "builtin_scenario",
    "builtin_scenario_names",
    "describe_profiles",
    "generate_site",
    "get_profile",
    "image_jobs",
    "load_scenario",
    "plan_site",
    "render_image",
    "render_job",
    "resolve_scenario",
    "single_profile_scenario",
]
