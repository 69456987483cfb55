"""DICOMweb services (PS3.18): STOW-RS store, QIDO-RS search and WADO-RS retrieve over radgate's index."""

from radgate.dicomweb.multipart import MultipartError, parse_multipart_related
from radgate.dicomweb.qido import QidoError, search_instances, search_series, search_studies
from radgate.dicomweb.stow import StowResult, store_parts

__all__ = [
    "MultipartError",
    "QidoError",
    "StowResult",
    "parse_multipart_related",
    "search_instances",
    "search_series",
    "search_studies",
    "store_parts",
]
