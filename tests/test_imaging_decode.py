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
