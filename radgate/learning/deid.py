"""De-identification: DICOM PS3.15 Annex E, Basic Application Level Confidentiality Profile, with the
Retain Device Identity, Retain Longitudinal Temporal Information with Modified Dates, Clean Graphics and
Clean Structured Content options (the last two only for radgate's own GSPS and SR, whose text radgate wrote).

Why not a library: the maintained candidates (``dicognito``, ``deid``/pydicom-deid) are not among the
project's approved dependencies (pydicom, highdicom ...), and neither exposes the Annex E action table with
per-option actions as data that a test can walk; pydicom itself ships no profile. So the table below is
written from PS3.15 Table E.1-1 (2024 edition): one row per attribute with the Basic Profile action and, where
the standard gives one, the action under Retain Device Identity (``rdi``) and Retain Longitudinal Temporal
Information with Modified Dates (``dates``). Where the standard leaves a choice (``X/Z``, ``Z/D``,
``X/Z/D``, ``X/Z/U*``) the column ``use`` is the one radgate applies (Z or D where the IODs radgate exports
need the attribute, type 1 → D, type 2 → Z; else X). One deviation, for IOD validity: Acquisition Context
Sequence (X in the table) is emptied (Z) because it is type 2 in the DX and CR IODs; an empty sequence
carries nothing.

Beyond the table, as the profile requires: every private element is removed (the Retain Safe Private
option is not offered); overlay (60xx) and curve (50xx) groups are removed; every UID that is not a
well-known DICOM UID (``1.2.840.10008.*``) is replaced by ``2.25.<HMAC-SHA256 of the original>`` so one
original UID maps to one new UID throughout an export (files, references, labels CSV); any remaining
Person Name value (VR PN) is replaced. Patient ID and Name become one pseudonym per original patient
(the standard's Z permits a dummy value), so the studies of one patient stay linked inside an export.
Dates: without the dates option, attributes the table lists lose them (X, Z or a dummy); with it, every
date (DA and the date part of DT) is shifted by a per-patient whole number of days (HMAC of the key), so
intervals within a patient are kept. Burned-in annotation (BurnedInAnnotation YES) is refused (the Clean
Pixel Data option is not implemented).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from dataclasses import dataclass, field

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.tag import Tag
from pydicom.uid import UID

from radgate.errors import Invalid

__all__ = ["ANNEX_E", "DeidOptions", "Deidentifier", "Rule"]


@dataclass(frozen=True)
class Rule:
    tag: int
    name: str
    basic: str  # the standard's code in the Basic Profile column
    use: str  # what radgate applies: D Z X K C U
    rdi: str | None = None  # Retain Device Identity Option
    dates: str | None = None  # Retain Longitudinal Temporal Information with Modified Dates Option


def _r(
    group: int,
    element: int,
    name: str,
    basic: str,
    use: str | None = None,
    rdi: str | None = None,
    dates: str | None = None,
) -> Rule:
    return Rule((group << 16) | element, name, basic, use or basic, rdi, dates)


# PS3.15 Table E.1-1 (attributes the Basic Profile acts on; the 50xx/60xx groups and private tags by rule)
ANNEX_E: tuple[Rule, ...] = (
    _r(0x0008, 0x0050, "Accession Number", "Z"),
    _r(0x0018, 0x4000, "Acquisition Comments", "X"),
    _r(0x0040, 0x0555, "Acquisition Context Sequence", "X", "Z"),  # type 2 in DX/CR: emptied, not removed
    _r(0x0008, 0x0022, "Acquisition Date", "X/Z", "Z", dates="C"),
    _r(0x0008, 0x002A, "Acquisition DateTime", "X/D", "X", dates="C"),
    _r(0x0018, 0x1400, "Acquisition Device Processing Description", "X/D", "X", rdi="K"),
    _r(0x0018, 0x9424, "Acquisition Protocol Description", "X"),
    _r(0x0008, 0x0032, "Acquisition Time", "X/Z", "Z", dates="K"),
    _r(0x0040, 0x4035, "Actual Human Performers Sequence", "X"),
    _r(0x0010, 0x21B0, "Additional Patient History", "X"),
    _r(0x0038, 0x0010, "Admission ID", "X"),
    _r(0x0038, 0x0020, "Admitting Date", "X", dates="C"),
    _r(0x0008, 0x1084, "Admitting Diagnoses Code Sequence", "X"),
    _r(0x0008, 0x1080, "Admitting Diagnoses Description", "X"),
    _r(0x0038, 0x0021, "Admitting Time", "X", dates="K"),
    _r(0x0010, 0x2110, "Allergies", "X"),
    _r(0x4000, 0x0010, "Arbitrary", "X"),
    _r(0x0040, 0xA078, "Author Observer Sequence", "X"),
    _r(0x0010, 0x1081, "Branch of Service", "X"),
    _r(0x0018, 0x1007, "Cassette ID", "X", rdi="K"),
    _r(0x0040, 0x0280, "Comments on the Performed Procedure Step", "X"),
    _r(0x0020, 0x9161, "Concatenation UID", "U"),
    _r(0x0040, 0x3001, "Confidentiality Constraint on Patient Data Description", "X"),
    _r(0x0008, 0x009C, "Consulting Physician's Name", "X"),
    _r(0x0008, 0x009D, "Consulting Physician Identification Sequence", "X"),
    _r(0x0070, 0x0084, "Content Creator's Name", "Z"),
    _r(0x0070, 0x0086, "Content Creator's Identification Code Sequence", "X"),
    _r(0x0008, 0x0023, "Content Date", "Z/D", "D", dates="C"),
    _r(0x0040, 0xA730, "Content Sequence", "X"),
    _r(0x0008, 0x0033, "Content Time", "Z/D", "D", dates="K"),
    _r(0x0008, 0x010D, "Context Group Extension Creator UID", "U"),
    _r(0x0018, 0x0010, "Contrast/Bolus Agent", "Z/D", "Z"),
    _r(0x0018, 0xA003, "Contribution Description", "X"),
    _r(0x0010, 0x2150, "Country of Residence", "X"),
    _r(0x0008, 0x9123, "Creator-Version UID", "U"),
    _r(0x0038, 0x0300, "Current Patient Location", "X"),
    _r(0x0008, 0x0025, "Curve Date", "X", dates="C"),
    _r(0x0008, 0x0035, "Curve Time", "X", dates="K"),
    _r(0x0040, 0xA07C, "Custodial Organization Sequence", "X"),
    _r(0x0018, 0x1200, "Date of Last Calibration", "X", dates="C"),
    _r(0x0018, 0x700C, "Date of Last Detector Calibration", "X", dates="C"),
    _r(0x0018, 0x1012, "Date of Secondary Capture", "X", dates="C"),
    _r(0x0018, 0x1000, "Device Serial Number", "X/Z/D", "X", rdi="K"),
    _r(0x0018, 0x1002, "Device UID", "U", rdi="K"),
    _r(0x0018, 0x700A, "Detector ID", "X/D", "X", rdi="K"),
    _r(0x0400, 0x0100, "Digital Signature UID", "X"),
    _r(0xFFFA, 0xFFFA, "Digital Signatures Sequence", "X"),
    _r(0x0020, 0x9164, "Dimension Organization UID", "U"),
    _r(0x0038, 0x0040, "Discharge Diagnosis Description", "X"),
    _r(0x4008, 0x011A, "Distribution Address", "X"),
    _r(0x4008, 0x0119, "Distribution Name", "X"),
    _r(0x300A, 0x0013, "Dose Reference UID", "U"),
    _r(0x0010, 0x2160, "Ethnic Group", "X"),
    _r(0x0008, 0x0058, "Failed SOP Instance UID List", "U"),
    _r(0x0070, 0x031A, "Fiducial UID", "U"),
    _r(0x0040, 0x2017, "Filler Order Number / Imaging Service Request", "Z"),
    _r(0x0020, 0x9158, "Frame Comments", "X"),
    _r(0x0020, 0x0052, "Frame of Reference UID", "U"),
    _r(0x0018, 0x1008, "Gantry ID", "X", rdi="K"),
    _r(0x0018, 0x1005, "Generator ID", "X", rdi="K"),
    _r(0x0070, 0x0001, "Graphic Annotation Sequence", "D"),
    _r(0x0040, 0x4037, "Human Performer's Name", "X"),
    _r(0x0040, 0x4036, "Human Performer's Organization", "X"),
    _r(0x0088, 0x0200, "Icon Image Sequence", "X"),
    _r(0x0008, 0x4000, "Identifying Comments", "X"),
    _r(0x0020, 0x4000, "Image Comments", "X"),
    _r(0x0028, 0x4000, "Image Presentation Comments", "X"),
    _r(0x0040, 0x2400, "Imaging Service Request Comments", "X"),
    _r(0x4008, 0x0300, "Impressions", "X"),
    _r(0x0008, 0x0012, "Instance Creation Date", "X/D", "X", dates="C"),
    _r(0x0008, 0x0013, "Instance Creation Time", "X/Z/D", "X", dates="K"),
    _r(0x0008, 0x0014, "Instance Creator UID", "U"),
    _r(0x0008, 0x0081, "Institution Address", "X"),
    _r(0x0008, 0x0082, "Institution Code Sequence", "X/Z/D", "X"),
    _r(0x0008, 0x0080, "Institution Name", "X/Z/D", "X"),
    _r(0x0008, 0x1040, "Institutional Department Name", "X"),
    _r(0x0010, 0x1050, "Insurance Plan Identification", "X"),
    _r(0x0040, 0x1011, "Intended Recipients of Results Identification Sequence", "X"),
    _r(0x4008, 0x0111, "Interpretation Approver Sequence", "X"),
    _r(0x4008, 0x010C, "Interpretation Author", "X"),
    _r(0x4008, 0x0115, "Interpretation Diagnosis Description", "X"),
    _r(0x4008, 0x0202, "Interpretation ID Issuer", "X"),
    _r(0x4008, 0x0102, "Interpretation Recorder", "X"),
    _r(0x4008, 0x010B, "Interpretation Text", "X"),
    _r(0x4008, 0x010A, "Interpretation Transcriber", "X"),
    _r(0x0008, 0x3010, "Irradiation Event UID", "U"),
    _r(0x0038, 0x0011, "Issuer of Admission ID", "X"),
    _r(0x0010, 0x0021, "Issuer of Patient ID", "X"),
    _r(0x0038, 0x0061, "Issuer of Service Episode ID", "X"),
    _r(0x0028, 0x1214, "Large Palette Color Lookup Table UID", "U"),
    _r(0x0010, 0x21D0, "Last Menstrual Date", "X", dates="C"),
    _r(0x0400, 0x0404, "MAC", "X"),
    _r(0x0002, 0x0003, "Media Storage SOP Instance UID", "U"),
    _r(0x0010, 0x2000, "Medical Alerts", "X"),
    _r(0x0010, 0x1090, "Medical Record Locator", "X"),
    _r(0x0010, 0x1080, "Military Rank", "X"),
    _r(0x0040, 0x1010, "Names of Intended Recipients of Results", "X"),
    _r(0x0010, 0x2180, "Occupation", "X"),
    _r(0x0008, 0x1072, "Operators' Identification Sequence", "X/D", "X"),
    _r(0x0008, 0x1070, "Operators' Name", "X/Z/D", "X"),
    _r(0x0040, 0x2010, "Order Callback Phone Number", "X"),
    _r(0x0040, 0x2011, "Order Callback Telecom Information", "X"),
    _r(0x0040, 0x2008, "Order Entered By", "X"),
    _r(0x0040, 0x2009, "Order Enterer's Location", "X"),
    _r(0x0010, 0x1000, "Other Patient IDs", "X"),
    _r(0x0010, 0x1002, "Other Patient IDs Sequence", "X"),
    _r(0x0010, 0x1001, "Other Patient Names", "X"),
    _r(0x0008, 0x0024, "Overlay Date", "X", dates="C"),
    _r(0x0008, 0x0034, "Overlay Time", "X", dates="K"),
    _r(0x0040, 0xA07A, "Participant Sequence", "X"),
    _r(0x0010, 0x1040, "Patient's Address", "X"),
    _r(0x0010, 0x4000, "Patient Comments", "X"),
    _r(0x0010, 0x0020, "Patient ID", "Z"),
    _r(0x0010, 0x0024, "Issuer of Patient ID Qualifiers Sequence", "X"),
    _r(0x0038, 0x0500, "Patient State", "X"),
    _r(0x0040, 0x1004, "Patient Transport Arrangements", "X"),
    _r(0x0010, 0x1010, "Patient's Age", "X"),
    _r(0x0010, 0x0030, "Patient's Birth Date", "Z"),
    _r(0x0010, 0x1005, "Patient's Birth Name", "X"),
    _r(0x0010, 0x0032, "Patient's Birth Time", "X"),
    _r(0x0038, 0x0400, "Patient's Institution Residence", "X"),
    _r(0x0010, 0x0050, "Patient's Insurance Plan Code Sequence", "X"),
    _r(0x0010, 0x1060, "Patient's Mother's Birth Name", "X"),
    _r(0x0010, 0x0010, "Patient's Name", "Z"),
    _r(0x0010, 0x0101, "Patient's Primary Language Code Sequence", "X"),
    _r(0x0010, 0x0102, "Patient's Primary Language Modifier Code Sequence", "X"),
    _r(0x0010, 0x21F0, "Patient's Religious Preference", "X"),
    _r(0x0010, 0x0040, "Patient's Sex", "Z"),
    _r(0x0010, 0x2203, "Patient's Sex Neutered", "X/Z", "X"),
    _r(0x0010, 0x1020, "Patient's Size", "X"),
    _r(0x0010, 0x2155, "Patient's Telecom Information", "X"),
    _r(0x0010, 0x2154, "Patient's Telephone Numbers", "X"),
    _r(0x0010, 0x1030, "Patient's Weight", "X"),
    _r(0x0010, 0x0022, "Type of Patient ID", "X"),
    _r(0x0040, 0x0243, "Performed Location", "X"),
    _r(0x0040, 0x0254, "Performed Procedure Step Description", "X"),
    _r(0x0040, 0x0253, "Performed Procedure Step ID", "X"),
    _r(0x0040, 0x0244, "Performed Procedure Step Start Date", "X", dates="C"),
    _r(0x0040, 0x0245, "Performed Procedure Step Start Time", "X", dates="K"),
    _r(0x0040, 0x0241, "Performed Station AE Title", "X", rdi="K"),
    _r(0x0040, 0x4030, "Performed Station Geographic Location Code Sequence", "X", rdi="K"),
    _r(0x0040, 0x0242, "Performed Station Name", "X", rdi="K"),
    _r(0x0040, 0x4028, "Performed Station Name Code Sequence", "X", rdi="K"),
    _r(0x0008, 0x1052, "Performing Physician Identification Sequence", "X"),
    _r(0x0008, 0x1050, "Performing Physicians' Name", "X"),
    _r(0x0040, 0x1102, "Person's Address", "X"),
    _r(0x0040, 0x1101, "Person Identification Code Sequence", "D"),
    _r(0x0040, 0xA123, "Person Name", "D"),
    _r(0x0040, 0x1103, "Person's Telephone Numbers", "X"),
    _r(0x4008, 0x0114, "Physician Approving Interpretation", "X"),
    _r(0x0008, 0x1062, "Physician(s) Reading Study Identification Sequence", "X"),
    _r(0x0008, 0x1060, "Name of Physician(s) Reading Study", "X"),
    _r(0x0008, 0x1048, "Physician(s) of Record", "X"),
    _r(0x0008, 0x1049, "Physician(s) of Record Identification Sequence", "X"),
    _r(0x0040, 0x2016, "Placer Order Number / Imaging Service Request", "Z"),
    _r(0x0018, 0x1004, "Plate ID", "X", rdi="K"),
    _r(0x0010, 0x21C0, "Pregnancy Status", "X"),
    _r(0x0040, 0x0012, "Pre-Medication", "X"),
    _r(0x0018, 0x1030, "Protocol Name", "X/D", "X"),
    _r(0x0040, 0x2001, "Reason for the Imaging Service Request", "X"),
    _r(0x0032, 0x1030, "Reason for Study", "X"),
    _r(0x0400, 0x0402, "Referenced Digital Signature Sequence", "X"),
    _r(0x3006, 0x0024, "Referenced Frame of Reference UID", "U"),
    _r(0x0040, 0x4023, "Referenced General Purpose Scheduled Procedure Step Transaction UID", "U"),
    _r(0x0008, 0x1140, "Referenced Image Sequence", "X/Z/U*", "U"),
    _r(0x0038, 0x0004, "Referenced Patient Alias Sequence", "X"),
    _r(0x0008, 0x1120, "Referenced Patient Sequence", "X"),
    _r(0x0008, 0x1111, "Referenced Performed Procedure Step Sequence", "X/Z/D", "Z"),  # type 2 in SR
    _r(0x0400, 0x0403, "Referenced SOP Instance MAC Sequence", "X"),
    _r(0x0008, 0x1155, "Referenced SOP Instance UID", "U"),
    _r(0x0004, 0x1511, "Referenced SOP Instance UID in File", "U"),
    _r(0x0008, 0x1110, "Referenced Study Sequence", "X/Z", "X"),
    _r(0x0008, 0x0092, "Referring Physician's Address", "X"),
    _r(0x0008, 0x0096, "Referring Physician's Identification Sequence", "X"),
    _r(0x0008, 0x0090, "Referring Physician's Name", "Z"),
    _r(0x0008, 0x0094, "Referring Physician's Telephone Numbers", "X"),
    _r(0x0010, 0x2152, "Region of Residence", "X"),
    _r(0x3006, 0x00C2, "Related Frame of Reference UID", "U"),
    _r(0x0040, 0x0275, "Request Attributes Sequence", "X"),
    _r(0x0032, 0x1070, "Requested Contrast Agent", "X"),
    _r(0x0040, 0x1400, "Requested Procedure Comments", "X"),
    _r(0x0032, 0x1060, "Requested Procedure Description", "X/Z", "X"),
    _r(0x0040, 0x1001, "Requested Procedure ID", "X"),
    _r(0x0040, 0x1005, "Requested Procedure Location", "X"),
    _r(0x0032, 0x1032, "Requesting Physician", "X"),
    _r(0x0032, 0x1033, "Requesting Service", "X"),
    _r(0x0010, 0x2299, "Responsible Organization", "X"),
    _r(0x0010, 0x2297, "Responsible Person", "X"),
    _r(0x4008, 0x4000, "Results Comments", "X"),
    _r(0x4008, 0x0118, "Results Distribution List Sequence", "X"),
    _r(0x4008, 0x0042, "Results ID Issuer", "X"),
    _r(0x300E, 0x0008, "Reviewer Name", "X/Z", "X"),
    _r(0x0040, 0x4034, "Scheduled Human Performers Sequence", "X"),
    _r(0x0038, 0x001E, "Scheduled Patient Institution Residence", "X"),
    _r(0x0040, 0x000B, "Scheduled Performing Physician Identification Sequence", "X"),
    _r(0x0040, 0x0006, "Scheduled Performing Physician's Name", "X"),
    _r(0x0040, 0x0004, "Scheduled Procedure Step End Date", "X", dates="C"),
    _r(0x0040, 0x0005, "Scheduled Procedure Step End Time", "X", dates="K"),
    _r(0x0040, 0x0007, "Scheduled Procedure Step Description", "X"),
    _r(0x0040, 0x0011, "Scheduled Procedure Step Location", "X"),
    _r(0x0040, 0x0002, "Scheduled Procedure Step Start Date", "X", dates="C"),
    _r(0x0040, 0x0003, "Scheduled Procedure Step Start Time", "X", dates="K"),
    _r(0x0040, 0x0001, "Scheduled Station AE Title", "X", rdi="K"),
    _r(0x0040, 0x4027, "Scheduled Station Geographic Location Code Sequence", "X", rdi="K"),
    _r(0x0040, 0x0010, "Scheduled Station Name", "X", rdi="K"),
    _r(0x0040, 0x4025, "Scheduled Station Name Code Sequence", "X", rdi="K"),
    _r(0x0032, 0x1020, "Scheduled Study Location", "X"),
    _r(0x0032, 0x1021, "Scheduled Study Location AE Title", "X"),
    _r(0x0018, 0x1016, "Secondary Capture Device Manufacturer", "X", rdi="K"),
    _r(0x0018, 0x1018, "Secondary Capture Device Manufacturer's Model Name", "X", rdi="K"),
    _r(0x0018, 0x1019, "Secondary Capture Device Software Versions", "X", rdi="K"),
    _r(0x0008, 0x0021, "Series Date", "X/D", "X", dates="C"),
    _r(0x0008, 0x103E, "Series Description", "X"),
    _r(0x0020, 0x000E, "Series Instance UID", "U"),
    _r(0x0008, 0x0031, "Series Time", "X/D", "X", dates="K"),
    _r(0x0038, 0x0062, "Service Episode Description", "X"),
    _r(0x0038, 0x0060, "Service Episode ID", "X"),
    _r(0x0010, 0x21A0, "Smoking Status", "X"),
    _r(0x0008, 0x0018, "SOP Instance UID", "U"),
    _r(0x0008, 0x2112, "Source Image Sequence", "X/Z/U*", "U"),
    _r(0x0038, 0x0050, "Special Needs", "X"),
    _r(0x0008, 0x1010, "Station Name", "X/Z/D", "X", rdi="K"),
    _r(0x0088, 0x0140, "Storage Media File-set UID", "U"),
    _r(0x0032, 0x4000, "Study Comments", "X"),
    _r(0x0008, 0x0020, "Study Date", "Z", dates="C"),
    _r(0x0008, 0x1030, "Study Description", "X"),
    _r(0x0020, 0x0010, "Study ID", "Z"),
    _r(0x0032, 0x0012, "Study ID Issuer", "X"),
    _r(0x0020, 0x000D, "Study Instance UID", "U"),
    _r(0x0008, 0x0030, "Study Time", "Z", dates="K"),
    _r(0x0020, 0x0200, "Synchronization Frame of Reference UID", "U"),
    _r(0x0040, 0xDB0D, "Template Extension Creator UID", "U"),
    _r(0x0040, 0xDB0C, "Template Extension Organization UID", "U"),
    _r(0x4000, 0x4000, "Text Comments", "X"),
    _r(0x2030, 0x0020, "Text String", "X"),
    _r(0x0018, 0x1201, "Time of Last Calibration", "X", dates="K"),
    _r(0x0018, 0x1014, "Time of Secondary Capture", "X", dates="K"),
    _r(0x0008, 0x0201, "Timezone Offset From UTC", "X"),
    _r(0x0088, 0x0910, "Topic Author", "X"),
    _r(0x0088, 0x0912, "Topic Keywords", "X"),
    _r(0x0088, 0x0906, "Topic Subject", "X"),
    _r(0x0088, 0x0904, "Topic Title", "X"),
    _r(0x0008, 0x1195, "Transaction UID", "U"),
    _r(0x0040, 0xA124, "UID", "U"),
    _r(0x0040, 0xA088, "Verifying Observer Identification Code Sequence", "Z"),
    _r(0x0040, 0xA075, "Verifying Observer Name", "D"),
    _r(0x0040, 0xA073, "Verifying Observer Sequence", "D"),
    _r(0x0040, 0xA027, "Verifying Organization", "X"),
    _r(0x0038, 0x4000, "Visit Comments", "X"),
)
RULES: dict[int, Rule] = {r.tag: r for r in ANNEX_E}

# PS3.16 CID 7050 De-identification Method
CODES = {
    "basic": ("113100", "Basic Application Confidentiality Profile"),
    "clean_graphics": ("113103", "Clean Graphics Option"),
    "clean_structured_content": ("113104", "Clean Structured Content Option"),
    "dates_modified": ("113107", "Retain Longitudinal Temporal Information Modified Dates Option"),
    "device_identity": ("113109", "Retain Device Identity Option"),
}
CLEAN_GRAPHICS_TAG = 0x00700001
CONTENT_SEQUENCE_TAG = 0x0040A730
DUMMY = {"PN": "ANONYMOUS", "DA": "19000101", "TM": "000000", "DT": "19000101000000", "UI": "2.25.0"}


@dataclass(frozen=True)
class DeidOptions:
    retain_device_identity: bool = False
    dates_modified: bool = False

    def codes(self, clean_content: bool) -> list[str]:
        out = ["basic"]
        if clean_content:
            out += ["clean_graphics", "clean_structured_content"]
        if self.dates_modified:
            out.append("dates_modified")
        if self.retain_device_identity:
            out.append("device_identity")
        return out


@dataclass
class Deidentifier:
    """Applies the profile with one secret ``key``: the same original UID, patient or date offset maps to
    the same value in every file of an export."""

    key: bytes
    options: DeidOptions = field(default_factory=DeidOptions)

    def _digest(self, *parts: str) -> bytes:
        return hmac.new(self.key, "\x00".join(parts).encode(), hashlib.sha256).digest()

    def uid(self, original: str) -> str:
        """The new UID of ``original`` (well-known DICOM UIDs are kept)."""
        original = str(original).strip()
        if not original or original.startswith("1.2.840.10008."):
            return original
        return f"2.25.{int.from_bytes(self._digest('uid', original)[:16], 'big')}"

    def pseudonym(self, patient_id: str) -> str:
        return "RG-" + self._digest("patient", patient_id).hex()[:12].upper()

    def day_offset(self, patient_id: str) -> int:
        """Whole days every date of this patient moves back (1 to 10 years)."""
        return 365 + int.from_bytes(self._digest("days", patient_id)[:4], "big") % (9 * 365)

    def action(self, rule: Rule, clean_content: bool) -> str:
        if clean_content and rule.tag in (CLEAN_GRAPHICS_TAG, CONTENT_SEQUENCE_TAG):
            return "C"
        if self.options.retain_device_identity and rule.rdi:
            return rule.rdi
        if self.options.dates_modified and rule.dates:
            return rule.dates
        return rule.use

    def apply(self, ds: Dataset, *, clean_content: bool = False) -> Dataset:
        """De-identify ``ds`` in place and return it; ``clean_content``: it is radgate's own SR or GSPS."""
        if str(ds.get("BurnedInAnnotation", "")).upper() == "YES":
            raise Invalid(
                "the image has burned-in annotation (BurnedInAnnotation YES); Clean Pixel Data is "
                "not implemented, so it is not exported"
            )
        patient = str(ds.get("PatientID", "")) or str(ds.get("PatientName", ""))
        offset = self.day_offset(patient)
        self._walk(ds, clean_content, offset, inside_content=False)
        ds.PatientID = self.pseudonym(patient)
        ds.PatientName = ds.PatientID
        if hasattr(ds, "file_meta"):
            meta = ds.file_meta
            if "MediaStorageSOPInstanceUID" in meta:
                meta.MediaStorageSOPInstanceUID = UID(self.uid(meta.MediaStorageSOPInstanceUID))
            for tag in list(meta.keys()):
                if int(tag) == 0x00020016:  # Source Application Entity Title
                    del meta[tag]
        ds.PatientIdentityRemoved = "YES"
        options = self.options.codes(clean_content)
        ds.DeidentificationMethod = "; ".join(CODES[o][1] for o in options)[:64]
        items = []
        for o in options:
            item = Dataset()
            item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = CODES[o][0], "DCM", CODES[o][1]
            items.append(item)
        ds.DeidentificationMethodCodeSequence = Sequence(items)
        ds.LongitudinalTemporalInformationModified = "MODIFIED" if self.options.dates_modified else "REMOVED"
        return ds

    def _shift(self, value: str, vr: str, offset: int) -> str:
        value = str(value)
        if not value:
            return value
        try:
            day = dt.datetime.strptime(value[:8], "%Y%m%d").date()
        except ValueError:
            return DUMMY[vr]
        return (day - dt.timedelta(days=offset)).strftime("%Y%m%d") + (value[8:] if vr == "DT" else "")

    def _replace(self, elem: DataElement, action: str, offset: int) -> DataElement | None:
        """The element after ``action``; None to remove it."""
        vr = elem.VR
        if action == "X":
            return None
        if action == "K":
            return elem
        if action == "Z":
            elem.value = Sequence([]) if vr == "SQ" else ""
            return elem
        if action == "U":
            if vr == "UI":
                elem.value = [self.uid(v) for v in elem.value] if elem.VM > 1 else self.uid(elem.value)
            return elem
        if action == "D":
            if vr == "SQ":
                return elem  # items are walked by the caller: their contents get the profile
            elem.value = DUMMY.get(vr, "ANONYMOUS")
            return elem
        # C: dates shift (dates option); sequences are cleaned item by item by the caller
        if vr in ("DA", "DT"):
            values = elem.value if elem.VM > 1 else [elem.value]
            shifted = [self._shift(v, vr, offset) for v in values]
            elem.value = shifted if elem.VM > 1 else shifted[0]
        return elem

    def _walk(self, ds: Dataset, clean_content: bool, offset: int, inside_content: bool) -> None:
        for elem in list(ds):
            tag = int(elem.tag)
            group = tag >> 16
            if (
                elem.tag.is_private
                or (0x5000 <= group <= 0x50FF)
                or (0x6000 <= group <= 0x60FF and (tag & 0xFFFF) in (0x3000, 0x4000))
            ):
                del ds[elem.tag]
                continue
            rule = RULES.get(tag)
            if rule is not None:
                action = self.action(rule, clean_content)
                result = self._replace(elem, action, offset)
                if result is None:
                    del ds[elem.tag]
                    continue
                inside = inside_content or action == "C"
            else:
                inside = inside_content
                self._generic(elem, offset, inside_content)
            if elem.VR == "SQ":
                for item in elem.value:
                    self._walk(item, clean_content, offset, inside)

    def _generic(self, elem: DataElement, offset: int, inside_content: bool) -> None:
        """Attributes the table does not name: UIDs remapped, person names replaced, dates shifted (dates
        option), kept as the profile keeps them outside cleaned content, dummies inside it."""
        if elem.VR == "UI" and elem.value:
            elem.value = [self.uid(v) for v in elem.value] if elem.VM > 1 else self.uid(elem.value)
        elif elem.VR == "PN" and elem.value:
            elem.value = DUMMY["PN"]
        elif elem.VR in ("DA", "DT") and elem.value and self.options.dates_modified:
            self._replace(elem, "C", offset)
        elif elem.VR in ("DA", "DT") and elem.value and inside_content:
            elem.value = DUMMY[elem.VR]


def tag_name(tag: int) -> str:
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X}) {RULES[tag].name}" if tag in RULES else str(Tag(tag))
