"""Vendor/detector profiles: the header values and the image character of one kind of X-ray system.

A profile says two things about the images a detector produces:

* **the header** — SOP Class (CR Image Storage, PS3.3 A.2, or Digital X-Ray Image Storage - For
  Presentation, PS3.3 A.26), Photometric Interpretation (MONOCHROME1 or MONOCHROME2, PS3.3 C.7.6.3.1.2),
  Bits Stored, the Modality LUT (Rescale Slope / Intercept, PS3.3 C.11.1) and the VOI LUT (Window Center /
  Width or a VOI LUT Sequence, PS3.3 C.11.2), Imager Pixel Spacing (PS3.3 C.8.11.4, the detector plane),
  the matrix, and the equipment identification (Manufacturer, Manufacturer's Model Name, Software
  Versions, Station Name);
* **the image character** — detector sharpness (MTF), quantum noise, scatter, the vendor's multi-scale
  contrast / edge enhancement and its gradation (tone) curve, and how collimated borders are rendered.

The values are *typical of* each vendor's products as seen in public DICOM conformance statements and
public datasets, not copies of any one device. Matrices are reduced to about 512 pixels on the long side so
that a synthetic site is small and fast; Imager Pixel Spacing is scaled with it so that the physical field
of view (for example a 35 x 43 cm cassette) stays right. The native pitch is kept in ``native_pitch_mm`` for
the record.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pydicom.uid import UID, ExplicitVRLittleEndian, RLELossless

__all__ = [
    "CR_IMAGE_STORAGE",
    "DX_IMAGE_STORAGE_FOR_PRESENTATION",
    "PROFILES",
    "ImageCharacter",
    "Profile",
    "describe_profiles",
    "get_profile",
]

CR_IMAGE_STORAGE = UID("1.2.840.10008.5.1.4.1.1.1")  # PS3.4 B.5
DX_IMAGE_STORAGE_FOR_PRESENTATION = UID("1.2.840.10008.5.1.4.1.1.1.1")  # PS3.4 B.5


@dataclass(frozen=True)
class ImageCharacter:
    """How a detector and its vendor's processing turn X-ray transmission into a displayed image.

    ``mtf_sigma_px``: Gaussian blur of the detector (indirect scintillators and CR plates blur more than
    direct converters). ``noise``: standard deviation of the quantum noise in the log signal at the mean
    transmission of the lungs, for a PA exposure (AP portable exposures multiply it by ``ap_noise_factor``).
    ``scatter``: scatter-to-primary ratio with the anti-scatter grid; without a grid (portable) it is doubled.
    ``edge_gain`` / ``edge_sigma_mm``: unsharp-mask gain and kernel of the fine-detail enhancement (Fuji RE,
    Siemens DiamondView, Agfa MUSICA ...). ``equalisation`` / ``equalisation_sigma_mm``: large-kernel dynamic
    range compression (it flattens lungs vs mediastinum). ``contrast``: slope of the sigmoid gradation curve
    (Fuji GA). ``brightness``: shift of the curve's centre in units of the image's log range. ``shutter``:
    how the unexposed area outside the collimator is rendered: ``"white"`` (as exposed: unexposed film is
    clear), ``"black"`` (an electronic shutter masks it) or ``"none"`` (collimation at the detector edge).
    """

    mtf_sigma_px: float
    noise: float
    scatter: float
    edge_gain: float
    edge_sigma_mm: float
    equalisation: float
    equalisation_sigma_mm: float
    contrast: float
    brightness: float
    shutter: str
    ap_noise_factor: float = 1.6

    def __post_init__(self) -> None:
        if self.shutter not in ("white", "black", "none"):
            raise ValueError(
                f"ImageCharacter.shutter {self.shutter!r} is not one of 'white', 'black', 'none'."
            )
        for name in ("mtf_sigma_px", "noise", "scatter", "edge_gain", "equalisation", "contrast"):
            if getattr(self, name) < 0:
                raise ValueError(f"ImageCharacter.{name} is {getattr(self, name)}; expected >= 0.")


@dataclass(frozen=True)
class Profile:
    """One vendor/detector: header values (PS3.3 A.2 / A.26) and image character.

    ``voi`` is ``"window"`` (Window Center/Width pairs ``windows`` in Modality LUT output units, the first
    being the default, PS3.3 C.11.2.1.2) or ``"lut"`` (one VOI LUT Sequence item carrying the gradation
    curve, PS3.3 C.11.2.1.1; stored values are then the unprocessed log signal).
    ``rescale`` is ``(slope, intercept)`` or ``None`` for no Modality LUT attributes (CR only: the DX Image
    Module makes them Type 1 with the enumerated values 1 and 0, PS3.3 C.8.11.3). ``ap_fraction`` is the
    probability of an AP (rather than PA) frontal study on this system; a portable unit is AP only.
    """

    name: str
    description: str
    sop_class_uid: UID
    manufacturer: str
    model_name: str
    software_versions: str
    station_name: str
    device_serial_number: str
    detector_type: str  # DIRECT | SCINTILLATOR | STORAGE | FILM (PS3.3 C.8.11.4)
    photometric: str  # MONOCHROME1 | MONOCHROME2
    bits_stored: int
    rows: int
    columns: int
    pitch_mm: float  # Imager Pixel Spacing at the reduced matrix
    native_pitch_mm: float
    voi: str  # window | lut
    windows: tuple[tuple[float, float], ...] = ()  # (center, width) in Modality LUT output units
    window_explanations: tuple[str, ...] = ()
    rescale: tuple[float, float] | None = (1.0, 0.0)
    stored_range: tuple[float, float] = (0.0, 1.0)  # fraction of 0..2**BitsStored-1 the image spans
    kvp: tuple[float, float] = (110.0, 125.0)
    mas: tuple[float, float] = (1.0, 3.2)
    ap_fraction: float = 0.1
    portable: bool = False
    grid: str = "FOCUSED"
    transfer_syntax: UID = ExplicitVRLittleEndian
    processing_description: str = ""
    character: ImageCharacter = field(
        default_factory=lambda: ImageCharacter(0.8, 0.02, 0.3, 0.8, 3.0, 0.3, 40.0, 4.0, 0.0, "white")
    )

    def __post_init__(self) -> None:
        if self.sop_class_uid not in (CR_IMAGE_STORAGE, DX_IMAGE_STORAGE_FOR_PRESENTATION):
            raise ValueError(f"Profile {self.name!r}: SOP Class {self.sop_class_uid} is neither CR nor DX.")
        if self.photometric not in ("MONOCHROME1", "MONOCHROME2"):
            raise ValueError(f"Profile {self.name!r}: PhotometricInterpretation {self.photometric!r}.")
        if not 8 <= self.bits_stored <= 16:
            raise ValueError(f"Profile {self.name!r}: BitsStored {self.bits_stored} is outside 8..16.")
        if self.voi == "window":
            if not self.windows or len(self.windows) != len(self.window_explanations):
                raise ValueError(
                    f"Profile {self.name!r}: voi='window' needs windows and one explanation each."
                )
        elif self.voi == "lut":
            if self.windows:
                raise ValueError(f"Profile {self.name!r}: voi='lut' carries its VOI in the LUT, not windows.")
        else:
            raise ValueError(f"Profile {self.name!r}: voi {self.voi!r} is neither 'window' nor 'lut'.")
        if self.modality == "DX" and self.rescale != (1.0, 0.0):
            raise ValueError(
                f"Profile {self.name!r}: DX images need Rescale Slope 1 and Intercept 0 (enumerated values, "
                f"PS3.3 C.8.11.3); got {self.rescale}."
            )
        if not 0.0 <= self.ap_fraction <= 1.0:
            raise ValueError(f"Profile {self.name!r}: ap_fraction {self.ap_fraction} is outside [0, 1].")

    @property
    def modality(self) -> str:
        return "CR" if self.sop_class_uid == CR_IMAGE_STORAGE else "DX"

    @property
    def max_stored(self) -> int:
        return int(2**self.bits_stored - 1)

    @property
    def field_mm(self) -> tuple[float, float]:
        """Field of view (height, width) in millimetres at the detector."""
        return (self.rows * self.pitch_mm, self.columns * self.pitch_mm)


def _profiles() -> dict[str, Profile]:
    items = [
        Profile(
            name="fuji-cr",
            description="CR reader, 35x43 cm plates, 10-bit MONOCHROME1, S-value processing, RLE Lossless",
            sop_class_uid=CR_IMAGE_STORAGE,
            manufacturer="FUJIFILM Corporation",
            model_name="FCR CAPSULA XLII",
            software_versions="A12-01",
            station_name="CR-ED1",
            device_serial_number="SYN-FCR-0417",
            detector_type="STORAGE",
            photometric="MONOCHROME1",
            bits_stored=10,
            rows=512,
            columns=420,
            pitch_mm=0.84,
            native_pitch_mm=0.15,
            voi="window",
            windows=((512.0, 1024.0),),
            window_explanations=("NORMAL",),
            rescale=None,
            stored_range=(0.02, 0.98),
            kvp=(100.0, 120.0),
            mas=(2.0, 5.0),
            ap_fraction=0.25,
            transfer_syntax=RLELossless,
            processing_description="GA1.0 GT D GC1.6 GS-0.2 RN4 RE0.5 RT R",
            character=ImageCharacter(
                mtf_sigma_px=1.1,
                noise=0.035,
                scatter=0.35,
                edge_gain=0.5,
                edge_sigma_mm=4.0,
                equalisation=0.15,
                equalisation_sigma_mm=50.0,
                contrast=4.2,
                brightness=-0.08,
                shutter="white",
            ),
        ),
        Profile(
            name="siemens-dx",
            description="Ceiling-mounted DR room, 43x43 cm CsI flat panel, 12-bit MONOCHROME2, two windows",
            sop_class_uid=DX_IMAGE_STORAGE_FOR_PRESENTATION,
            manufacturer="SIEMENS",
            model_name="Ysio Max",
            software_versions="VF11C",
            station_name="XR-R01",
            device_serial_number="SYN-YSIO-20931",
            detector_type="SCINTILLATOR",
            photometric="MONOCHROME2",
            bits_stored=12,
            rows=512,
            columns=512,
            pitch_mm=0.84,
            native_pitch_mm=0.148,
            voi="window",
            windows=((2048.0, 3600.0), (2048.0, 4096.0)),
            window_explanations=("CHEST", "FULL"),
            rescale=(1.0, 0.0),
            stored_range=(0.04, 0.96),
            kvp=(117.0, 125.0),
            mas=(1.2, 2.8),
            ap_fraction=0.15,
            processing_description="DiamondView Plus Thorax PA",
            character=ImageCharacter(
                mtf_sigma_px=0.7,
                noise=0.02,
                scatter=0.25,
                edge_gain=0.8,
                edge_sigma_mm=3.0,
                equalisation=0.3,
                equalisation_sigma_mm=40.0,
                contrast=4.0,
                brightness=0.0,
                shutter="black",
            ),
        ),
        Profile(
            name="ge-dx",
            description="DR room, 41x41 cm CsI flat panel, 14-bit MONOCHROME1, one window",
            sop_class_uid=DX_IMAGE_STORAGE_FOR_PRESENTATION,
            manufacturer="GE Healthcare",
            model_name="Definium 656 HD",
            software_versions="dm_Platform_release_656HD_5.7",
            station_name="GEXR2",
            device_serial_number="SYN-GE-656-0112",
            detector_type="SCINTILLATOR",
            photometric="MONOCHROME1",
            bits_stored=14,
            rows=480,
            columns=480,
            pitch_mm=0.854,
            native_pitch_mm=0.2,
            voi="window",
            windows=((8192.0, 14000.0),),
            window_explanations=("WINDOW1",),
            rescale=(1.0, 0.0),
            stored_range=(0.05, 0.95),
            kvp=(110.0, 120.0),
            mas=(1.6, 3.2),
            ap_fraction=0.2,
            processing_description="Premium View; Tissue Equalization",
            character=ImageCharacter(
                mtf_sigma_px=0.8,
                noise=0.025,
                scatter=0.3,
                edge_gain=1.3,
                edge_sigma_mm=2.5,
                equalisation=0.45,
                equalisation_sigma_mm=30.0,
                contrast=4.8,
                brightness=0.1,
                shutter="white",
            ),
        ),
        Profile(
            name="agfa-dx",
            description="DR room, 35x43 cm panel, strong noise reduction, 12-bit MONOCHROME2, VOI LUT",
            sop_class_uid=DX_IMAGE_STORAGE_FOR_PRESENTATION,
            manufacturer="Agfa",
            model_name="DX-D 600",
            software_versions="NX 23.0.9200",
            station_name="AGFA-DR3",
            device_serial_number="SYN-DXD600-5521",
            detector_type="SCINTILLATOR",
            photometric="MONOCHROME2",
            bits_stored=12,
            rows=512,
            columns=416,
            pitch_mm=0.84,
            native_pitch_mm=0.148,
            voi="lut",
            rescale=(1.0, 0.0),
            stored_range=(0.0, 1.0),
            kvp=(115.0, 125.0),
            mas=(1.0, 2.5),
            ap_fraction=0.15,
            processing_description="MUSICA3 Chest PA",
            character=ImageCharacter(
                mtf_sigma_px=1.4,
                noise=0.035,
                scatter=0.25,
                edge_gain=0.6,
                edge_sigma_mm=2.0,
                equalisation=0.75,
                equalisation_sigma_mm=25.0,
                contrast=3.2,
                brightness=0.12,
                shutter="black",
            ),
        ),
        Profile(
            name="carestream-portable",
            description="Mobile DR for bedside AP chests, 35x43 cm panel, 12-bit MONOCHROME1, VOI LUT",
            sop_class_uid=DX_IMAGE_STORAGE_FOR_PRESENTATION,
            manufacturer="Carestream Health",
            model_name="DRX-Revolution",
            software_versions="5.7.412.7005",
            station_name="MOBILE-ICU2",
            device_serial_number="SYN-DRXR-3308",
            detector_type="SCINTILLATOR",
            photometric="MONOCHROME1",
            bits_stored=12,
            rows=512,
            columns=416,
            pitch_mm=0.84,
            native_pitch_mm=0.139,
            voi="lut",
            rescale=(1.0, 0.0),
            stored_range=(0.0, 1.0),
            kvp=(85.0, 100.0),
            mas=(1.6, 3.2),
            ap_fraction=1.0,
            portable=True,
            grid="NONE",
            processing_description="EVP Plus Portable Chest",
            character=ImageCharacter(
                mtf_sigma_px=0.9,
                noise=0.03,
                scatter=0.45,
                edge_gain=1.0,
                edge_sigma_mm=3.0,
                equalisation=0.35,
                equalisation_sigma_mm=40.0,
                contrast=3.6,
                brightness=0.03,
                shutter="white",
                ap_noise_factor=1.4,
            ),
        ),
        Profile(
            name="philips-dx",
            description="DR room, 43x43 cm panel, 15-bit MONOCHROME2, no collimation border",
            sop_class_uid=DX_IMAGE_STORAGE_FOR_PRESENTATION,
            manufacturer="Philips Medical Systems",
            model_name="DigitalDiagnost C90",
            software_versions="5.1.1.2",
            station_name="PHDD-ROOM4",
            device_serial_number="SYN-DDC90-0877",
            detector_type="SCINTILLATOR",
            photometric="MONOCHROME2",
            bits_stored=15,
            rows=496,
            columns=496,
            pitch_mm=0.867,
            native_pitch_mm=0.148,
            voi="window",
            windows=((16384.0, 30000.0),),
            window_explanations=("UNI-VIEW",),
            rescale=(1.0, 0.0),
            stored_range=(0.03, 0.97),
            kvp=(120.0, 125.0),
            mas=(1.0, 2.2),
            ap_fraction=0.1,
            processing_description="UNIQUE 2 Chest PA",
            character=ImageCharacter(
                mtf_sigma_px=0.65,
                noise=0.018,
                scatter=0.25,
                edge_gain=1.0,
                edge_sigma_mm=3.5,
                equalisation=0.5,
                equalisation_sigma_mm=35.0,
                contrast=4.4,
                brightness=0.0,
                shutter="none",
            ),
        ),
    ]
    return {p.name: p for p in items}


PROFILES: dict[str, Profile] = _profiles()


def describe_profiles() -> list[dict[str, str]]:
    """One row per profile with the header facts a user compares (for ``radgate synth profiles``)."""
    rows = []
    for p in PROFILES.values():
        voi = (
            "VOI LUT Sequence"
            if p.voi == "lut"
            else ", ".join(f"{c:g}/{w:g}" for c, w in p.windows) + " (WC/WW)"
        )
        rows.append(
            {
                "profile": p.name,
                "modality": p.modality,
                "manufacturer": p.manufacturer,
                "model": p.model_name,
                "photometric": p.photometric,
                "bits_stored": str(p.bits_stored),
                "rescale": "none" if p.rescale is None else f"{p.rescale[0]:g}/{p.rescale[1]:g}",
                "voi": voi,
                "matrix": f"{p.rows}x{p.columns}",
                "pixel_spacing_mm": f"{p.pitch_mm:g}",
                "transfer_syntax": p.transfer_syntax.name,
                "ap_fraction": f"{p.ap_fraction:g}",
                "description": p.description,
            }
        )
    return rows


def get_profile(name: str) -> Profile:
    """The profile called ``name``; the error lists the known names."""
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(
            f"Unknown synthetic profile {name!r}; known profiles: {', '.join(PROFILES)}."
        ) from None
