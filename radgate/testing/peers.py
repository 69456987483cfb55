"""Real DICOM peers for tests and benchmarks.

radgate is tested against the tools a hospital would point at it, not against itself:

- :class:`OrthancServer` starts Debian's Orthanc 1.10 (``/usr/sbin/Orthanc``) with the DICOMweb plugin
  (Debian ``orthanc-dicomweb``) on free high ports in a temporary directory, and removes everything on exit.
  Orthanc 1.10 binds its DICOM port on all interfaces, so the ports are random and high, HTTP remote access
  is off, and the server is always stopped.
- :func:`dciodvfy` runs David Clunie's IOD validator (Debian ``dicom3tools``) and returns its errors and
  warnings.
- :func:`pixelmed_sr_validate` runs PixelMed's ``com.pixelmed.validate.DicomSRValidator`` (Debian
  ``libpixelmed-java``), which checks SR content trees against the templates of PS3.16 (TID 1500 included).
- :func:`which` finds a peer executable or says which Debian package provides it.

Every peer started here gets ``TCP_NODELAY=1`` in its environment: DCMTK's network code (used by Orthanc and
the DCMTK tools) otherwise waits ~40 ms per PDU on loopback (Nagle meets delayed ACK; see
``/work/shared/BENCHMARKS.md``).
"""

from __future__ import annotations

import json
import logging
import os
import random
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

__all__ = [
    "OrthancServer",
    "PeerMissingError",
    "dciodvfy",
    "free_port",
    "pixelmed_sr_validate",
    "which",
]

log = logging.getLogger(__name__)

#: The Debian package that provides each peer, for the error message when one is missing.
DEBIAN_PACKAGES: dict[str, str] = {
    "Orthanc": "orthanc",
    "dciodvfy": "dicom3tools",
    "dsrdump": "dcmtk",
    "dcmpschk": "dcmtk",
    "dcmp2pgm": "dcmtk",
    "dcmj2pnm": "dcmtk",
    "dcmdump": "dcmtk",
    "storescu": "dcmtk",
    "storescp": "dcmtk",
    "echoscu": "dcmtk",
    "findscu": "dcmtk",
    "java": "openjdk-17-jre-headless",
}

#: Where the DICOMweb plugin of Debian's ``orthanc-dicomweb`` lives.
DICOMWEB_PLUGIN_DIRS = (Path("/usr/share/orthanc/plugins"), Path("/usr/lib/orthanc"))

#: PixelMed's jar from Debian ``libpixelmed-java``.
PIXELMED_JAR = Path("/usr/share/java/pixelmed.jar")

#: Java 17's XPath limits are too small for PixelMed's template checks (JDK-8270504); lift them.
PIXELMED_JAVA_OPTIONS = (
    "-Djdk.xml.xpathExprOpLimit=0",
    "-Djdk.xml.xpathExprGrpLimit=0",
    "-Djdk.xml.xpathTotalOpLimit=0",
)

# Ports handed out by this process, so that two calls in a row never return the same one.
_handed_out: set[int] = set()


class PeerMissingError(RuntimeError):
    """A peer program (Orthanc, a DCMTK tool, dciodvfy, Java, a plugin) is not installed."""


def which(tool: str) -> str:
    """Return the absolute path of the executable ``tool``, looking in ``$PATH`` and the sbin directories.

    Raises :class:`PeerMissingError` naming the tool and the Debian package that provides it.
    """
    path = shutil.which(tool) or shutil.which(tool, path="/usr/sbin:/usr/local/sbin:/sbin")
    if path is None:
        package = DEBIAN_PACKAGES.get(tool, "the package that provides it")
        raise PeerMissingError(
            f"Peer program {tool!r} was not found in $PATH or /usr/sbin; install it "
            f"(Debian: apt-get install {package})."
        )
    return path


def free_port(low: int = 20000, high: int = 32767) -> int:
    """Return a TCP port in ``[low, high]`` that is free on all interfaces right now.

    The default range lies below Linux's ephemeral range (32768-60999) so that a port chosen here is not
    taken a moment later by some outgoing connection; it is random, so parallel test runs rarely collide.
    """
    if not 1024 <= low <= high <= 65535:
        raise ValueError(f"Port range [{low}, {high}] is invalid; expected 1024 <= low <= high <= 65535.")
    for _ in range(200):
        port = random.randint(low, high)
        if port in _handed_out:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("0.0.0.0", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError(f"No free TCP port found in [{low}, {high}] after 200 tries.")


def peer_environment() -> dict[str, str]:
    """The environment for a peer process: ours plus ``TCP_NODELAY=1`` (DCMTK reads it)."""
    return {**os.environ, "TCP_NODELAY": "1"}


def dicomweb_plugin() -> Path:
    """Path of Orthanc's DICOMweb plugin (Debian ``orthanc-dicomweb``)."""
    for folder in DICOMWEB_PLUGIN_DIRS:
        for candidate in sorted(folder.glob("libOrthancDicomWeb.so*")) if folder.is_dir() else []:
            return candidate
    raise PeerMissingError(
        "Orthanc's DICOMweb plugin (libOrthancDicomWeb.so) was not found under "
        f"{', '.join(str(d) for d in DICOMWEB_PLUGIN_DIRS)}; "
        "install it (Debian: apt-get install orthanc-dicomweb)."
    )


class OrthancServer:
    """A throwaway Orthanc with the DICOMweb plugin, as a context manager.

    >>> with OrthancServer(modalities={"radgate": ("RADGATE", "127.0.0.1", 11112)}) as orthanc:
    ...     orthanc.get_json("/instances")
    []

    ``modalities`` becomes Orthanc's ``DicomModalities``: name -> (AET, host, port), so that a test can let
    Orthanc send to radgate (C-STORE SCU, C-MOVE destination). ``config`` entries override the defaults.
    Attributes once started: :attr:`http_url`, :attr:`dicomweb_url` (``.../dicom-web``), :attr:`dicom_port`,
    :attr:`http_port`, :attr:`aet`, :attr:`host` (always ``127.0.0.1``).
    """

    def __init__(
        self,
        aet: str = "ORTHANC",
        modalities: Mapping[str, tuple[str, str, int]] | None = None,
        config: Mapping[str, Any] | None = None,
        startup_timeout_s: float = 30.0,
    ) -> None:
        if not aet or len(aet) > 16:
            raise ValueError(f"Orthanc AE title {aet!r} must be 1 to 16 characters (PS3.5 VR AE).")
        self.aet = aet
        self.host = "127.0.0.1"
        self.modalities = dict(modalities or {})
        self.extra_config = dict(config or {})
        self.startup_timeout_s = startup_timeout_s
        self.dicom_port = 0
        self.http_port = 0
        self._tmp: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_file: Any = None

    # ----------------------------------------------------------------------------------------------- URLs
    @property
    def http_url(self) -> str:
        return f"http://{self.host}:{self.http_port}"

    @property
    def dicomweb_url(self) -> str:
        return f"{self.http_url}/dicom-web"

    @property
    def log_path(self) -> Path:
        if self._tmp is None:
            raise RuntimeError("Orthanc is not started.")
        return self._tmp / "orthanc.log"

    # ------------------------------------------------------------------------------------------ lifecycle
    def _config(self) -> dict[str, Any]:
        assert self._tmp is not None
        config: dict[str, Any] = {
            "Name": "radgate-test-orthanc",
            "StorageDirectory": str(self._tmp / "storage"),
            "IndexDirectory": str(self._tmp / "storage"),
            "StorageCompression": False,
            "HttpServerEnabled": True,
            "HttpPort": self.http_port,
            "HttpDescribeErrors": True,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False,
            "DicomServerEnabled": True,
            "DicomAet": self.aet,
            "DicomPort": self.dicom_port,
            "DicomCheckCalledAet": False,
            "DicomModalities": {name: list(entry) for name, entry in self.modalities.items()},
            "Plugins": [str(dicomweb_plugin())],
            "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "EnableWado": True, "Ssl": False},
            "TcpNoDelay": True,
            "SaveJobs": False,
            "ConcurrentJobs": 1,
        }
        config.update(self.extra_config)
        return config

    def start(self) -> OrthancServer:
        """Start Orthanc and wait until ``/system`` answers; retried on fresh ports if a port was taken."""
        executable = which("Orthanc")
        self._tmp = Path(tempfile.mkdtemp(prefix="radgate-orthanc-"))
        last_error = ""
        for _attempt in range(3):
            self.dicom_port, self.http_port = free_port(), free_port()
            config_path = self._tmp / "orthanc.json"
            config_path.write_text(json.dumps(self._config(), indent=2))
            self._log_file = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
            self._proc = subprocess.Popen(
                [executable, str(config_path)],
                stdout=self._log_file,
                stderr=subprocess.STDOUT,
                env=peer_environment(),
                cwd=self._tmp,
            )
            try:
                self._wait_ready()
                log.info("Orthanc %s up: DICOM port %d, HTTP %s", self.aet, self.dicom_port, self.http_url)
                return self
            except RuntimeError as exc:
                last_error = str(exc)
                self._terminate()
        self.stop()
        raise RuntimeError(f"Orthanc did not start after 3 attempts: {last_error}")

    def _wait_ready(self) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(
                    f"Orthanc exited with code {self._proc.returncode}; log tail:\n{self._log_tail()}"
                )
            try:
                with urllib.request.urlopen(f"{self.http_url}/system", timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.1)
        raise RuntimeError(
            f"Orthanc /system did not answer within {self.startup_timeout_s} s:\n{self._log_tail()}"
        )

    def _log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def _terminate(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=5)
        self._proc = None
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def stop(self) -> None:
        """Stop Orthanc and remove its storage, config and log."""
        self._terminate()
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def __enter__(self) -> OrthancServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ------------------------------------------------------------------------------------------- REST API
    def get_json(self, path: str) -> Any:
        """GET ``path`` from Orthanc's REST API (e.g. ``/instances``) and decode the JSON answer."""
        with urllib.request.urlopen(f"{self.http_url}{path}", timeout=30) as response:
            return json.loads(response.read())

    def post_json(self, path: str, body: Any) -> Any:
        """POST ``body`` as JSON to ``path`` (e.g. ``/tools/find``) and decode the JSON answer."""
        request = urllib.request.Request(
            f"{self.http_url}{path}",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    def instance_uids(self) -> list[str]:
        """SOP Instance UIDs of every instance Orthanc holds (one entry per stored instance)."""
        uids = []
        for orthanc_id in self.get_json("/instances"):
            tags = self.get_json(f"/instances/{orthanc_id}/simplified-tags")
            uids.append(str(tags["SOPInstanceUID"]))
        return uids


def _run_tool(args: list[str], timeout_s: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout_s, env=peer_environment())


def dciodvfy(path: str | os.PathLike[str], timeout_s: float = 60.0) -> tuple[list[str], list[str]]:
    """Validate a DICOM file with dicom3tools' ``dciodvfy``; return ``(errors, warnings)`` as message lines.

    ``dciodvfy`` prints the IOD it recognised on stdout and one ``Error - ...`` / ``Warning - ...`` line per
    finding on stderr. A crash or an unrecognised file (non-zero exit without an ``Error`` line) is reported
    as an error too, so that a caller asserting ``errors == []`` cannot pass by accident.
    """
    proc = _run_tool([which("dciodvfy"), str(path)], timeout_s)
    errors: list[str] = []
    warnings: list[str] = []
    for line in (proc.stderr + "\n" + proc.stdout).splitlines():
        text = line.strip()
        if text.startswith("Error"):
            errors.append(text)
        elif text.startswith("Warning"):
            warnings.append(text)
    if proc.returncode != 0 and not errors:
        errors.append(f"dciodvfy exited with code {proc.returncode}: {proc.stderr.strip()[-500:]}")
    return errors, warnings


def pixelmed_sr_validate(
    path: str | os.PathLike[str], timeout_s: float = 120.0
) -> tuple[list[str], list[str]]:
    """Validate an SR's IOD and content tree (PS3.16 templates) with PixelMed's ``DicomSRValidator``.

    Returns ``(errors, warnings)``: PixelMed's lines starting with ``Error`` and ``Warning``. A non-zero exit,
    a Java exception or an IOD PixelMed does not recognise counts as an error.
    """
    if not PIXELMED_JAR.is_file():
        raise PeerMissingError(
            f"PixelMed jar {PIXELMED_JAR} not found; install it (Debian: apt-get install libpixelmed-java)."
        )
    args = [
        which("java"),
        *PIXELMED_JAVA_OPTIONS,
        "-cp",
        str(PIXELMED_JAR),
        "com.pixelmed.validate.DicomSRValidator",
        str(path),
    ]
    proc = _run_tool(args, timeout_s)
    errors: list[str] = []
    warnings: list[str] = []
    for line in (proc.stdout + "\n" + proc.stderr).splitlines():
        text = line.strip()
        if text.startswith("Error"):
            errors.append(text)
        elif text.startswith("Warning"):
            warnings.append(text)
        elif "Exception" in text and not text.startswith("at "):
            errors.append(text)
        elif "unrecognized" in text.lower():
            errors.append(f"Error: {text} (not an SR IOD PixelMed knows)")
    if proc.returncode != 0 and not errors:
        errors.append(f"DicomSRValidator exited with code {proc.returncode}: {proc.stderr.strip()[-500:]}")
    return errors, warnings
