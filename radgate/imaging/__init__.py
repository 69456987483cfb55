"""Pixel data to display values: Modality LUT, VOI LUT / window, MONOCHROME1 and resizing (PS3.3 C.11)."""

from radgate.imaging.display import DisplayImage, resize_area, to_display

__all__ = ["DisplayImage", "resize_area", "to_display"]
