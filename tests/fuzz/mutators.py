"""A deterministic mutational fuzzer for DICOM Part-10 files (issue 17).

Cases are drawn from a corpus of real files (pydicom's test files, pydicom-data) and synthetic ones
(:mod:`radgate.synth`, one per vendor profile). Every case is a pure function of ``(seed, index)``: the
same seed always yields the same bytes, so a failing case can be replayed alone (:func:`make_case`).

Each case gets fresh Study/Series/SOP Instance UIDs before it is mutated, so that outcomes never collide
(a mutation that hits a UID makes that UID invalid, which is itself a case). Mutations target the dataset
after the file meta (so the case can still be sent by C-STORE, which needs the meta to pick a presentation
context); the ``meta`` kind corrupts the file meta itself and is sent by STOW-RS only.
"""

from __future__ import annotations

import io
import random
import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache

import pydicom
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset

__all__ = ["KINDS", "Case", "Seed", "corpus", "iter_cases", "make_case"]

# Small real files covering the transfer syntaxes radgate meets (native LE/BE, implicit, deflate, RLE,
# JPEG baseline/extended/lossless, JPEG-LS, JPEG 2000), multi-frame and non-image objects.
REAL_FILES = (
    "CT_small.dcm",
    "MR_small.dcm",
    "MR_small_implicit.dcm",
    "MR_small_bigendian.dcm",
    "MR_small_RLE.dcm",
    "MR_small_jpeg_ls_lossless.dcm",
    "emri_small_RLE.dcm",
    "JPEG2000.dcm",
    "JPEG-lossy.dcm",
    "JPEG-LL.dcm",
    "SC_rgb_jpeg_dcmtk.dcm",
    "SC_rgb_rle.dcm",
    "SC_rgb_small_odd.dcm",
    "image_dfl.dcm",
    "rtplan.dcm",
    "693_J2KR.dcm",
)

EXPLICIT_LE = "1.2.840.10008.1.2.1"
DEFLATED = "1.2.840.10008.1.2.1.99"
LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}
#: Inflated sizes of deflate bombs (bytes); a test lowers them together with ingest.max_inflated_bytes.
BOMB_SIZES: tuple[int, ...] = (64 * 1024**2, 700 * 1024**2)
ALL_VRS = [
    vr.encode()
    for vr in (
        "AE",
        "AS",
        "AT",
        "CS",
        "DA",
        "DS",
        "DT",
        "FD",
        "FL",
        "IS",
        "LO",
        "LT",
        "OB",
        "OD",
        "OF",
        "OL",
        "OV",
        "OW",
        "PN",
        "SH",
        "SL",
        "SQ",
        "SS",
        "ST",
        "SV",
        "TM",
        "UC",
        "UI",
        "UL",
        "UN",
        "UR",
        "US",
        "UT",
        "UV",
    )
]


@dataclass(frozen=True)
class Seed:
    """One corpus file: its name, its Part-10 bytes and what the mutators need to know about it."""

    name: str
    dataset: Dataset

    @property
    def transfer_syntax(self) -> str:
        return str(self.dataset.file_meta.TransferSyntaxUID)


@dataclass(frozen=True)
class Case:
    index: int
    kind: str
    seed_name: str
    data: bytes
    SOPInstanceUID: str  # as written before mutating (the mutation may have broken it)
    stow_only: bool = False  # the file meta is broken: C-STORE cannot pick a presentation context


@cache
def corpus(synthetic: bool = True) -> tuple[Seed, ...]:
    """Real files that exist in this environment, then one synthetic image per vendor profile."""
    seeds: list[Seed] = []
    for name in REAL_FILES:
        try:
            path = get_testdata_file(name)
        except Exception:  # pydicom-data not installed or file missing: fuzz with what is there
            path = None
        if path:
            seeds.append(Seed(name, pydicom.dcmread(path)))
    if synthetic:
        from radgate.synth import PROFILES, builtin_scenario, image_jobs, render_job

        jobs = image_jobs(builtin_scenario("all-profiles"), 7)
        chosen: dict[str, object] = {}
        for job in jobs:
            chosen.setdefault(job.record.profile.name, job)
            if len(chosen) == len(PROFILES):
                break
        for name, job in chosen.items():
            seeds.append(Seed(f"synth:{name}", render_job(job)))  # type: ignore[arg-type]
    return tuple(seeds)


# ---------------------------------------------------------------------------------------------- encoding
def _encode(ds: Dataset, rng: random.Random, index: int) -> tuple[bytes, str]:
    """``ds`` with fresh UIDs derived from the case index, as Part-10 bytes; and the SOP Instance UID."""
    out = ds.copy()
    out.file_meta = ds.file_meta.copy()
    root = f"2.25.{0x7A3D0000 + index}{rng.randrange(10**9):09d}"
    out.StudyInstanceUID = f"{root}.1"
    out.SeriesInstanceUID = f"{root}.2"
    out.SOPInstanceUID = f"{root}.3"
    out.file_meta.MediaStorageSOPInstanceUID = out.SOPInstanceUID
    buf = io.BytesIO()
    ts = out.file_meta.TransferSyntaxUID
    pydicom.dcmwrite(
        buf, out, enforce_file_format=True, little_endian=ts.is_little_endian, implicit_vr=ts.is_implicit_VR
    )
    return buf.getvalue(), out.SOPInstanceUID


def _body_offset(data: bytes) -> int:
    return 144 + struct.unpack_from("<I", data, 140)[0]


def _elements(data: bytes, start: int, explicit: bool) -> list[tuple[int, int, int]]:
    """Top-level elements of a little-endian dataset: (offset, header length, value length)."""
    out = []
    i = start
    while i + 8 <= len(data):
        if explicit:
            vr = data[i + 4 : i + 6]
            if vr in LONG_VRS:
                if i + 12 > len(data):
                    break
                (length,) = struct.unpack_from("<I", data, i + 8)
                head = 12
            else:
                (length,) = struct.unpack_from("<H", data, i + 6)
                head = 8
        else:
            (length,) = struct.unpack_from("<I", data, i + 4)
            head = 8
        out.append((i, head, length))
        if length == 0xFFFFFFFF:
            break  # undefined length: stop walking here (the element list so far is enough)
        i += head + length
    return out


# --------------------------------------------------------------------------------------------- mutators
Mutator = Callable[[random.Random, bytes, Seed], bytes]


def bitflip(rng: random.Random, data: bytes, seed: Seed) -> bytes:
    off = _body_offset(data)
    buf = bytearray(data)
    for _ in range(rng.choice((1, 2, 4, 8, 16, 64))):
        pos = rng.randrange(off, len(buf))
        buf[pos] ^= 1 << rng.randrange(8)
    return bytes(buf)


def truncate(rng: random.Random, data: bytes, seed: Seed) -> bytes:
    off = _body_offset(data)
    return data[: rng.randrange(off, len(data))]


def length_field(rng: random.Random, data: bytes, seed: Seed) -> bytes:
    """Corrupt one element's length: odd, zero, off by a little, huge or undefined."""
    explicit = seed.transfer_syntax not in ("1.2.840.10008.1.2",)
    elems = _elements(data, _body_offset(data), explicit)
    if not elems or seed.transfer_syntax == DEFLATED:
        return bitflip(rng, data, seed)
    i, head, length = rng.choice(elems)
    choices = [0, 1, 3, length + 1, max(length - 1, 0), length * 2 + 2, 0x7FFF, 0xFFFF]
    buf = bytearray(data)
    if head == 12 or not explicit:
        choices += [0xFFFFFFFF, 0xFFFFFFF0, 0x80000000, 0x10000000]
        at = i + 8 if head == 12 else i + 4
        struct.pack_into("<I", buf, at, rng.choice(choices) & 0xFFFFFFFF)
    else:
        struct.pack_into("<H", buf, i + 6, rng.choice(choices) & 0xFFFF)
    return bytes(buf)


def wrong_vr(rng: random.Random, data: bytes, seed: Seed) -> bytes:
    if seed.transfer_syntax != EXPLICIT_LE:
        return length_field(rng, data, seed)
    elems = _elements(data, _body_offset(data), True)
    buf = bytearray(data)
    for _ in range(rng.choice((1, 1, 2, 3))):
        i, _, _ = rng.choice(elems)
        buf[i + 4 : i + 6] = rng.choice(ALL_VRS + [b"\x00\x00", b"\xff\xff", b"zz"])
    return bytes(buf)


def nested_sequences(rng: random.Random, data: bytes, seed: Seed) -> bytes:
    """A private element holding undefined-length sequences nested hundreds to thousands deep."""
    if seed.transfer_syntax != EXPLICIT_LE:
        return truncate(rng, data, seed)
    depth = rng.choice((64, 500, 2000, 10000))
    closed = rng.random() < 0.5
    open_sq = struct.pack("<HH2sHI", 0x0009, 0x1010, b"SQ", 0, 0xFFFFFFFF)
    item = struct.pack("<HHI", 0xFFFE, 0xE000, 0xFFFFFFFF)
    item_end = struct.pack("<HHI", 0xFFFE, 0xE00D, 0)
    seq_end = struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)
    creator = struct.pack("<HH2sH", 0x0009, 0x0010, b"LO", 6) + b"FUZZ  "
    nested = (open_sq + item) * depth + ((item_end + seq_end) * depth if closed else b"")
    off = _body_offset(data)
    elems = _elements(data, off, True)
    # Insert in tag order (after group 0008) so that the rest of the dataset still follows.
    at = next((i for i, _, _ in elems if struct.unpack_from("<H", data, i)[0] > 0x0009), len(data))
    return data[:at] + creator + nested + data[at:]


def giga_length(rng: random.Random, data: bytes, seed: Seed) -> bytes:
    """An element that declares gigabytes (and sends a few bytes), at the end or in the middle."""
    if seed.transfer_syntax != EXPLICIT_LE:
        return length_field(rng, data, seed)
    declared = rng.choice((0x40000000, 0x80000000, 0xFFFFFFF0, 0xFFFFFFFE))
    element = struct.pack("<HH2sHI", 0x0011, 0x1010, rng.choice((b"OB", b"UN", b"UT", b"OW")), 0, declared)
    element += bytes(rng.randrange(0, 64))
    if rng.random() < 0.5:
        return data + element
    off = _body_offset(data)
    elems = _elements(data, off, True)
    at = next((i for i, _, _ in elems if struct.unpack_from("<H", data, i)[0] > 0x0011), len(data))
    return data[:at] + element + data[at:]


def broken_deflate(rng: random.Random, data: bytes, seed: Seed) -> bytes:
    """The dataset re-encoded as Deflated Explicit VR LE, then its stream cut, flipped or made a bomb."""
    off = _body_offset(data)
    ds = pydicom.dcmread(io.BytesIO(data))
    if ds.file_meta.TransferSyntaxUID.is_compressed and seed.transfer_syntax != DEFLATED:
        body = data[off:]  # encapsulated pixel data cannot be re-encoded: deflate the bytes as they are
    elif seed.transfer_syntax == DEFLATED:
        body = zlib.decompress(data[off:], -zlib.MAX_WBITS)
    else:
        ds.file_meta.TransferSyntaxUID = EXPLICIT_LE
        buf = io.BytesIO()
        ds.save_as(buf, enforce_file_format=True)
        body = buf.getvalue()[_body_offset(buf.getvalue()) :]
    how = rng.choice(("cut", "flip", "bomb", "garbage"))
    if how == "bomb":
        pad = rng.choice(BOMB_SIZES)
        comp = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
        head = comp.compress(body + struct.pack("<HH2sHI", 0x7FE1, 0x1010, b"OB", 0, pad))
        stream = head + comp.flush(zlib.Z_FULL_FLUSH) + _deflated_zeros(pad)
    else:
        comp = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
        stream = comp.compress(body) + comp.flush()
        if how == "cut":
            stream = stream[: rng.randrange(1, max(len(stream), 2))]
        elif how == "flip":
            b = bytearray(stream)
            for _ in range(rng.choice((1, 4, 16))):
                b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
            stream = bytes(b)
        else:
            stream = bytes(rng.randrange(256) for _ in range(rng.randrange(16, 4096)))
    meta = _meta_with_ts(ds, DEFLATED)
    return meta + stream


@cache
def _deflated_zeros(n: int) -> bytes:
    """Raw deflate blocks of ``n`` zero bytes, ending the stream; they follow any stream cut by a full flush
    (which byte-aligns it and forgets the window), so a bomb's tail is compressed once per size."""
    comp = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    chunk = bytes(1 << 20)
    return b"".join(comp.compress(chunk) for _ in range(n >> 20)) + comp.flush()


def _meta_with_ts(ds: Dataset, ts: str) -> bytes:
    from pydicom.filewriter import write_file_meta_info

    meta = ds.file_meta.copy()
    meta.TransferSyntaxUID = ts
    buf = io.BytesIO()
    buf.write(b"\x00" * 128 + b"DICM")
    write_file_meta_info(buf, meta, enforce_standard=True)
    return buf.getvalue()


def bad_fragments(rng: random.Random, data: bytes, seed: Seed) -> bytes:
    """Encapsulated pixel data with broken items: wrong tags/lengths, missing delimiter, lying frames."""
    if not pydicom.uid.UID(seed.transfer_syntax).is_encapsulated:
        return header_ints(rng, data, seed)
    start = data.rfind(b"\xe0\x7f\x10\x00OB\x00\x00\xff\xff\xff\xff")
    if start < 0:
        return bitflip(rng, data, seed)
    px = start + 12
    buf = bytearray(data)
    items = []
    i = px
    while i + 8 <= len(buf):
        group, elem, length = struct.unpack_from("<HHI", buf, i)
        items.append(i)
        if (group, elem) != (0xFFFE, 0xE000):
            break
        i += 8 + length
    how = rng.choice(("tag", "length", "nodelim", "frames", "bot", "empty"))
    if how == "tag":
        at = rng.choice(items)
        struct.pack_into("<HH", buf, at, rng.choice((0xFFFE, 0x7FE0, 0x0000)), rng.randrange(0x10000))
    elif how == "length":
        at = rng.choice(items)
        struct.pack_into(
            "<I", buf, at + 4, rng.choice((0, 1, 7, 0xFFFFFFFF, 0x7FFFFFFF, rng.randrange(1 << 20)))
        )
    elif how == "nodelim":
        del buf[items[-1] :]
    elif how == "frames":
        frames = rng.choice((0, 2, 3, 1000, 65535))
        ds = pydicom.dcmread(io.BytesIO(bytes(buf)))
        ds.NumberOfFrames = frames
        out = io.BytesIO()
        ds.save_as(out, enforce_file_format=True)
        return out.getvalue()
    elif how == "bot":
        (bot_len,) = struct.unpack_from("<I", buf, px + 4)
        offsets = struct.pack("<II", 0, rng.randrange(1 << 31))
        buf[px + 4 : px + 8 + bot_len] = struct.pack("<I", len(offsets)) + offsets
    else:
        buf[px:] = struct.pack("<HHI", 0xFFFE, 0xE000, 0) + struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)
    return bytes(buf)


def header_ints(rng: random.Random, data: bytes, seed: Seed) -> bytes:
    """Rows/Columns/Bits/Frames that lie: huge, zero, odd-length or multi-valued."""
    ds = pydicom.dcmread(io.BytesIO(data))
    if "Rows" not in ds:
        return bitflip(rng, data, seed)
    how = rng.choice(("huge", "zero", "bits", "frames"))
    if how == "huge":
        ds.Rows, ds.Columns = rng.choice(((65535, 65535), (65535, 1), (40000, 40000)))
    elif how == "zero":
        ds.Rows = 0
    elif how == "bits":
        ds.BitsAllocated = rng.choice((0, 3, 12, 24, 48))
    else:
        ds.NumberOfFrames = rng.choice((0, 2, 100000, 2147483647))
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    encoded = out.getvalue()
    if seed.transfer_syntax == EXPLICIT_LE and rng.random() < 0.3:  # odd length or two values for Rows
        i = encoded.find(b"\x28\x00\x10\x00US\x02\x00", _body_offset(encoded))
        if i > 0:
            extra = rng.choice((b"\x01", b"\x01\x00"))
            encoded = (
                encoded[: i + 6]
                + struct.pack("<H", 2 + len(extra))
                + encoded[i + 8 : i + 10]
                + extra
                + encoded[i + 10 :]
            )
    return encoded


def huge_private(rng: random.Random, data: bytes, seed: Seed) -> bytes:
    """A large private OB element, or thousands of small private elements."""
    if seed.transfer_syntax != EXPLICIT_LE:
        return bitflip(rng, data, seed)
    creator = struct.pack("<HH2sH", 0x0019, 0x0010, b"LO", 6) + b"FUZZ  "
    if rng.random() < 0.5:
        size = rng.choice((1, 8, 32)) * 1024**2
        body = creator + struct.pack("<HH2sHI", 0x0019, 0x1000, b"OB", 0, size) + bytes(size)
    else:
        n = rng.choice((1000, 20000))
        body = creator + b"".join(
            struct.pack("<HH2sH", 0x0019, 0x1000 + (k % 0xFF), b"LO", 8) + b"%08d" % k for k in range(n)
        )
    off = _body_offset(data)
    elems = _elements(data, off, True)
    at = next((i for i, _, _ in elems if struct.unpack_from("<H", data, i)[0] > 0x0019), len(data))
    return data[:at] + body + data[at:]


def charset(rng: random.Random, data: bytes, seed: Seed) -> bytes:
    """Specific Character Set values that do not exist, and names in bytes no charset decodes."""
    ds = pydicom.dcmread(io.BytesIO(data))
    ds.SpecificCharacterSet = rng.choice(
        ("ISO_IR 999", "ISO 2022 IR 87\\ISO 2022 IR 159", "\\", "GB18030\\ISO_IR 192", "ISO_IR 6", "")
    )
    garbage = bytes(rng.randrange(128, 256) for _ in range(rng.randrange(4, 60)))
    ds.PatientName = garbage.decode("latin-1")
    ds.add_new(0x00081030, "LO", (b"\x1b$B" + garbage[:20]).decode("latin-1"))
    out = io.BytesIO()
    try:
        ds.save_as(out, enforce_file_format=True)
    except Exception:  # pydicom cannot encode it: write the raw bytes by hand instead
        return bitflip(rng, data, seed)
    return out.getvalue()


def meta(rng: random.Random, data: bytes, seed: Seed) -> bytes:
    """The file meta itself: group length, transfer syntax, or the preamble (STOW-RS only)."""
    buf = bytearray(data)
    how = rng.choice(("group", "ts", "dicm", "flip"))
    if how == "group":
        struct.pack_into("<I", buf, 140, rng.choice((0, 1, 0xFFFFFFFF, len(buf) * 4)))
    elif how == "ts":
        i = buf.find(b"\x02\x00\x10\x00UI")
        if i > 0:
            (length,) = struct.unpack_from("<H", buf, i + 6)
            ts = rng.choice((b"1.2.3.4.5", b"1.2.840.10008.1.2.4.50", b"1.2.840.10008.1.2.2", b"junk!"))
            buf[i + 8 : i + 8 + length] = ts.ljust(length, b"\x00")[:length]
    elif how == "dicm":
        buf[128:132] = b"DICX"
    else:
        for _ in range(4):
            buf[rng.randrange(128, _body_offset(data))] ^= 1 << rng.randrange(8)
    return bytes(buf)


KINDS: dict[str, Mutator] = {
    "bitflip": bitflip,
    "truncate": truncate,
    "length": length_field,
    "vr": wrong_vr,
    "nested_sq": nested_sequences,
    "giga_length": giga_length,
    "deflate": broken_deflate,
    "fragments": bad_fragments,
    "header_ints": header_ints,
    "private": huge_private,
    "charset": charset,
    "meta": meta,
}


def make_case(seed: int, index: int, seeds: tuple[Seed, ...] | None = None) -> Case:
    """Case ``index`` of the run with ``seed``: kinds in turn, corpus files drawn at random."""
    seeds = seeds or corpus()
    rng = random.Random(f"radgate-fuzz:{seed}:{index}")
    kind = list(KINDS)[index % len(KINDS)]
    source = rng.choice(seeds)
    data, uid = _encode(source.dataset, rng, index)
    try:
        mutated = KINDS[kind](rng, data, source)
    except Exception:  # the mutator could not apply to this file (pydicom refused to write it): flip bits
        mutated = bitflip(rng, data, source)
    return Case(index, kind, source.name, mutated, uid, stow_only=(kind == "meta"))


def iter_cases(seed: int, n: int, seeds: tuple[Seed, ...] | None = None) -> Iterator[Case]:
    seeds = seeds or corpus()
    for index in range(n):
        yield make_case(seed, index, seeds)
