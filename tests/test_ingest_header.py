"""radgate.ingest.header (the header read from the bytes) against pydicom, over every vendor profile."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian

from radgate.ingest import parse
from radgate.ingest.header import HeaderScan, scan
from radgate.ingest.parse import IngestRejection, parse_part10
from radgate.synth import generate_site
from radgate.synth.profiles import PROFILES
from radgate.synth.scenario import single_profile_scenario
from tests.dicomgen import make_dx


def _native(ds: Dataset) -> bytes:
    """``ds`` as a native explicit VR little endian file (compressed profiles: same header, zero pixels)."""
    ds = ds.copy()
    if ds.file_meta.TransferSyntaxUID.is_compressed:
        del ds.PixelData
        frames = int(ds.get("NumberOfFrames") or 1)
        size = ds.Rows * ds.Columns * ds.SamplesPerPixel * frames * ds.BitsAllocated // 8
        ds.PixelData = np.zeros(size, np.uint8).tobytes()
        ds["PixelData"].VR = "OW" if ds.BitsAllocated > 8 else "OB"
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True, implicit_vr=False, little_endian=True)
    return buf.getvalue()


@pytest.fixture(scope="module")
def site_files(tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    """Two studies of every vendor profile, each file made native explicit VR little endian."""
    root = tmp_path_factory.mktemp("headers")
    out = []
    for name in PROFILES:
        generate_site(root / name, single_profile_scenario(name, 2, prevalence=0.5), seed=5)
        for path in sorted((root / name / "dicom").rglob("*.dcm")):
            out.append(_native(pydicom.dcmread(path)))
    return out


def _plain(value: object) -> object:
    if isinstance(value, (MultiValue, list)):
        return [_plain(v) for v in value]
    if isinstance(value, Sequence):
        return value
    if isinstance(value, str):
        return str(value)
    return value


def _pairs(data: bytes) -> Iterator[tuple[str, object, object]]:
    offset = parse._meta_length(data)
    assert offset is not None
    header = scan(data, offset)
    assert header is not None
    ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
    fresh = HeaderScan(data, header._elements, header.pixel_length)  # nothing read through pydicom yet
    for elem in ds:
        if elem.keyword and elem.tag.group != 0x7FE0:
            yield elem.keyword, _plain(fresh.value(elem.keyword)), _plain(elem.value)


def test_every_value_of_every_profile_is_pydicoms(site_files: list[bytes]) -> None:
    profiles_seen = set()
    compared = 0
    for data in site_files:
        for keyword, ours, theirs in _pairs(data):
            assert ours == theirs, keyword
            compared += 1
        profiles_seen.add(pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True).Manufacturer)
    assert len(profiles_seen) == len({p.manufacturer for p in PROFILES.values()})
    assert compared > 30 * len(site_files)


def _slow(data: bytes, monkeypatch: pytest.MonkeyPatch) -> parse.ParsedInstance:
    with monkeypatch.context() as m:
        m.setattr(parse, "_parse_scanned", lambda data, offset: None)
        return parse_part10(data)


def test_parsing_from_the_bytes_gives_pydicoms_instance(
    site_files: list[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    for data in site_files:
        fast, slow = parse_part10(data), _slow(data, monkeypatch)
        assert isinstance(fast.dataset, HeaderScan) and fast.dataset._dataset is None  # pydicom never ran
        assert fast.features == slow.features
        assert (fast.SOPInstanceUID, fast.SOPClassUID, fast.StudyInstanceUID, fast.SeriesInstanceUID) == (
            slow.SOPInstanceUID,
            slow.SOPClassUID,
            slow.StudyInstanceUID,
            slow.SeriesInstanceUID,
        )
        assert (fast.TransferSyntaxUID, fast.body_offset, fast.sha256) == (
            slow.TransferSyntaxUID,
            slow.body_offset,
            slow.sha256,
        )


def _file(ds: Dataset) -> bytes:
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def test_values_it_does_not_vouch_for_are_read_by_pydicom() -> None:
    ds = make_dx(size=16)
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.InstitutionName = "Universitätsklinik"  # not ASCII: pydicom decodes it with the character set
    ds.SoftwareVersions = ["1.0 ", " 2.b"]  # several values, each stripped as pydicom does
    ds.ConvolutionKernel = "B30f\\H"
    ds.KVP = "1e2"
    ds.Exposure = " 12 "
    ds.SliceThickness = ""
    ds.ReferencedImageSequence = [Dataset()]
    ds.ReferencedImageSequence[0].ReferencedSOPInstanceUID = "1.2.3"
    data = _file(ds)
    for keyword, ours, theirs in _pairs(data):
        assert ours == theirs, keyword
    parsed = parse_part10(data)
    assert parsed.features["InstitutionName"] == "Universitätsklinik"
    assert parsed.features["SoftwareVersions"] == "1.0\\ 2.b"
    assert parsed.features["KVP"] == 100.0 and parsed.features["Exposure"] == 12.0


def test_an_unusual_file_takes_pydicoms_parse_with_its_reasons(monkeypatch: pytest.MonkeyPatch) -> None:
    ds = make_dx(size=16)
    truncated = _file(ds)[:-10]
    with pytest.raises(IngestRejection) as fast:
        parse_part10(truncated)
    with pytest.raises(IngestRejection) as slow:
        _slow(truncated, monkeypatch)
    assert fast.value.reason == slow.value.reason and "truncated" in fast.value.reason

    ds = make_dx(size=16)
    ds.SOPInstanceUID = "1.2.abc"
    with pytest.raises(IngestRejection, match="not a valid UID"):
        parse_part10(_file(ds))

    data = _file(make_dx(size=16))
    offset = parse._meta_length(data)
    assert offset is not None
    assert scan(data + b"\xe0\x7f\x20\x00OW\x00\x00\x00\x00\x00\x00", offset) is None  # after Pixel Data
    assert scan(data[: offset + 20], offset) is None  # an element cut short


def test_a_scanned_instance_is_stored_and_indexed(tmp_path: Path) -> None:
    """The features and InstanceNumber in the index come from the scan as they came from pydicom."""
    from radgate.config import load_settings
    from radgate.db import Instance, open_database
    from radgate.ingest.store import InstanceStore
    from tests.helpers.datadir import make_data_dir

    make_data_dir(tmp_path / "data")
    settings = load_settings(data_dir=tmp_path / "data", environ={})
    db = open_database(settings.database_url)
    store = InstanceStore(settings, db)
    try:
        ds = make_dx(size=16)
        ds.InstanceNumber = 7
        outcome = store.store_bytes(_file(ds), source="test")
        assert outcome.ok
        with db.session() as s:
            row = s.query(Instance).one()
            assert (row.InstanceNumber, row.Manufacturer, row.Rows) == (7, "SYNTHVENDOR", 16)
    finally:
        store.close()
        db.dispose()
