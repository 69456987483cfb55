"""Real DICOM peers for tests and benchmarks: a throwaway Orthanc, dciodvfy, PixelMed, ports, tools."""

from radgate.testing.peers import (
    OrthancServer,
    PeerMissingError,
    dciodvfy,
    free_port,
    pixelmed_sr_validate,
    which,
)

__all__ = ["OrthancServer", "PeerMissingError", "dciodvfy", "free_port", "pixelmed_sr_validate", "which"]
