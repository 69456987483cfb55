"""Pixel data to display values: guarded decoding, Modality LUT, VOI LUT / window, MONOCHROME1, resizing."""

from radgate.imaging.decode import DecodeError, decode_pixels
from radgate.imaging.display import DisplayImage, resize_area, to_display

__all__ = ["DecodeError", "DisplayImage", "decode_pixels", "resize_area", "to_display"]
