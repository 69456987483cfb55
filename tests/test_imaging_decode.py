"""decode_pixels: the one guarded, memory-bounded way radgate decodes untrusted pixel data (issue 17)."""

from __future__ import annotations

import pydicom
import pytest
from pydicom.data import get_testdata_file

from radgate.imaging.decode import DecodeError, decode_pixels, decoded_size, describe_exception
from tests.helpers.faulty import frames_beyond_fragments, huge_rle, rle_panic

LIMIT = 64 * 1024**2


def test_a_native_panic_is_a_decode_error_not_a_base_exception() -> None:
    ds = rle_panic()
    with pytest.raises(BaseException) as raw:  # what the engine and the pixel checker saw before
        ds.pixel_array  # noqa: B018
    assert not isinstance(raw.value, Exception)  # pyo3_runtime.PanicException derives from BaseException
    ds = rle_panic()
    with pytest.raises(DecodeError) as caught:
        decode_pixels(ds, max_bytes=LIMIT)
    assert "1.2.840.10008.1.2.5" in caught.value.reason and "PanicException" in caught.value.reason


def test_an_empty_exception_message_still_gives_a_reason() -> None:
    with pytest.raises(DecodeError) as caught:
        decode_pixels(frames_beyond_fragments(), max_bytes=LIMIT)
    assert caught.value.reason.endswith("StopIteration")
    assert describe_exception(StopIteration()) == "StopIteration"
    assert describe_exception(ValueError("\n\n  second line\nthird")) == "ValueError: second line"


def test_the_declared_size_is_refused_before_decoding() -> None:
    ds = huge_rle()
    assert decoded_size(ds) == 65535 * 65535 * 2
    with pytest.raises(DecodeError, match=r"8,589,672,450 bytes .* limit \(ingest.max_decoded_bytes\)"):
        decode_pixels(ds, max_bytes=LIMIT)
    assert "_pixel_array" not in ds.__dict__ or ds.__dict__["_pixel_array"] is None  # nothing decoded


@pytest.mark.parametrize(
    ("keyword", "value", "message"),
    [
        ("Rows", None, "Rows is missing"),
        ("Rows", 0, "the image is empty"),
        ("BitsAllocated", 12, "BitsAllocated 12 is not"),
        ("Columns", [64, 64], "Columns has 2 values"),
    ],
)
def test_a_header_that_does_not_say_the_size_is_refused(keyword: str, value: object, message: str) -> None:
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    if value is None:
        del ds[keyword]
    else:
        ds[keyword].value = value
    with pytest.raises(DecodeError, match=message):
        decode_pixels(ds, max_bytes=LIMIT)


def test_good_images_decode_and_are_cached_on_the_dataset() -> None:
    for name in ("CT_small.dcm", "MR_small_RLE.dcm", "JPEG2000.dcm", "SC_rgb_jpeg_dcmtk.dcm"):
        ds = pydicom.dcmread(get_testdata_file(name))
        arr = decode_pixels(ds, max_bytes=LIMIT)
        assert arr.size > 0 and ds.pixel_array is arr
    with pytest.raises(DecodeError, match="no pixel data"):
        decode_pixels(pydicom.Dataset(), max_bytes=LIMIT)


def test_keyboard_interrupt_is_not_swallowed(monkeypatch: pytest.MonkeyPatch) -> None:
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))

    def interrupted(self: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(pydicom.Dataset, "pixel_array", property(interrupted))
    with pytest.raises(KeyboardInterrupt):
        decode_pixels(ds, max_bytes=LIMIT)


def test_jpeg_extended_12_bit_from_pydicom_decodes_or_says_how() -> None:
    """JPEG-lossy.dcm (1.2.840.10008.1.2.4.51, 12-bit): libjpeg refuses its scan header, GDCM decodes it.

    It is the image of JPGExtended.dcm (which libjpeg decodes) encoded by another writer: the two agree to
    within 1 (lossy).
    """
    ds = pydicom.dcmread(get_testdata_file("JPEG-lossy.dcm"))
    try:
        import gdcm  # noqa: F401
    except ImportError:
        with pytest.raises(DecodeError) as caught:
            decode_pixels(ds, max_bytes=LIMIT)
        reason = caught.value.reason
        assert "scan start must be zero" in reason and "pip install 'radgate[jpeg12]'" in reason
        return
    arr = decode_pixels(ds, max_bytes=LIMIT)
    reference = pydicom.dcmread(get_testdata_file("JPGExtended.dcm")).pixel_array
    assert arr.shape == reference.shape == (1024, 256) and ds.pixel_array is arr
    assert int(abs(arr.astype(int) - reference.astype(int)).max()) <= 1


def test_the_corrupt_jpeg_2000_test_file_gets_each_decoders_reason() -> None:
    """JPEG2000-embedded-sequence-delimiter.dcm is undecodable by design: pydicom's test of a Sequence
    Delimitation Item (FFFE,E0DD) inside a fragment. Those bytes sit in the codestream's SIZ marker, so Xsiz
    reads 3,722,445,056 instead of 256 and no JPEG 2000 decoder accepts it; the reason says what each said."""
    ds = pydicom.dcmread(get_testdata_file("JPEG2000-embedded-sequence-delimiter.dcm"))
    with pytest.raises(DecodeError) as caught:
        decode_pixels(ds, max_bytes=LIMIT)
    assert "pylibjpeg: Error decoding the J2K data: failed to read the header" in caught.value.reason
