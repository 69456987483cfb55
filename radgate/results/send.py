"""Where results go: one :class:`Destination` interface, three built-in kinds.

- :class:`CStoreDestination`: DICOM C-STORE SCU (PS3.4 B.2) with pynetdicom, ``AET@HOST:PORT``;
- :class:`StowRsDestination`: DICOMweb STOW-RS (PS3.18 10.5) with dicomweb-client, ``http(s)://.../dicom-web``;
- :class:`FolderDestination`: Part-10 files in a folder (``folder:/path``), for the embedded demo and for
  sites that pick files up themselves.

A destination sends a batch of Part-10 files and answers one :class:`SendOutcome` per file: sent, failed for
now (retry later), or failed for good (``permanent``: the peer refused the object or the association in a way
that a retry cannot change, e.g. an unknown called AE title or an unsupported SOP class). The outbox
(:mod:`radgate.results.outbox`) turns outcomes into retries with backoff or a ``failed`` status.

:func:`parse_destination` turns the ``results.send_to`` strings of the configuration (and
``radgate serve --send-to``) into destinations.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import socket
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import pydicom
import requests
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AE, evt
from pynetdicom.association import Association

from radgate.config import Settings

__all__ = [
    "CStoreDestination",
    "Destination",
    "FolderDestination",
    "SendOutcome",
    "StowRsDestination",
    "destinations_from_settings",
    "parse_destination",
]

log = logging.getLogger(__name__)

_AE_SPEC = re.compile(r"^(?P<aet>[^@]+)@(?P<host>[^:@]+|\[[0-9a-fA-F:]+\]):(?P<port>\d{1,5})$")

#: C-STORE failure statuses after which a retry cannot succeed (PS3.4 B.2.3, Table B.2-1; PS3.7 C.4.2).
#: 0xA7xx "Refused: Out of Resources" and 0xA700 are transient; everything else that is a failure is not.
_TRANSIENT_STATUS_PREFIXES = (0xA7,)
#: Warnings (0x0001, 0xB000, 0xB006, 0xB007) mean the object was stored: PS3.4 B.2.3.


@dataclass(frozen=True)
class SendOutcome:
    """What happened to one file: ``ok``, else ``reason`` and whether a retry is pointless (``permanent``)."""

    ok: bool
    reason: str = ""
    permanent: bool = False


SENT = SendOutcome(ok=True)


@runtime_checkable
class Destination(Protocol):
    """A place results are sent to. ``name`` is stable: the outbox keys its rows by it."""

    @property
    def name(self) -> str: ...

    def send(self, files: Sequence[Path]) -> list[SendOutcome]:
        """Send ``files`` (DICOM Part-10) and return one outcome per file, in order; never raises for a
        failure of the peer (that is an outcome), only for a programming error."""
        ...


def _read(path: Path) -> Dataset:
    return pydicom.dcmread(path)


# ------------------------------------------------------------------------------------------------- C-STORE
def _nodelay(event: Any) -> None:
    """Disable Nagle on the SCU socket: otherwise a small PDU waits ~40 ms for a delayed ACK on loopback."""
    sock = getattr(getattr(event.assoc.dul, "socket", None), "socket", None)
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class CStoreDestination:
    """C-STORE SCU to ``AET@HOST:PORT`` (PS3.4 Annex B), one association per batch.

    Permanent failures: association rejected permanently (A-ASSOCIATE-RJ result 1, e.g. called AE title not
    recognised), no accepted presentation context for the object's SOP Class, a failure status other than
    0xA7xx "Out of Resources". Transient: cannot connect, timeouts, aborts, 0xA7xx.
    """

    def __init__(
        self,
        ae_title: str,
        host: str,
        port: int,
        calling_ae_title: str = "RADGATE",
        timeout_s: float = 30.0,
    ) -> None:
        if not 1 <= len(ae_title) <= 16:
            raise ValueError(f"Called AE title {ae_title!r} must be 1 to 16 characters (PS3.5 VR AE).")
        if not 1 <= len(calling_ae_title) <= 16:
            raise ValueError(
                f"Calling AE title {calling_ae_title!r} must be 1 to 16 characters (PS3.5 VR AE)."
            )
        if not 1 <= int(port) <= 65535:
            raise ValueError(f"Port {port!r} of {ae_title}@{host} is outside 1..65535.")
        self.ae_title = ae_title
        self.host = host
        self.port = int(port)
        self.calling_ae_title = calling_ae_title
        self.timeout_s = timeout_s

    @property
    def name(self) -> str:
        return f"{self.ae_title}@{self.host}:{self.port}"

    def __repr__(self) -> str:
        return f"CStoreDestination({self.name!r})"

    def send(self, files: Sequence[Path]) -> list[SendOutcome]:
        if not files:
            return []
        datasets = [_read(path) for path in files]
        ae = AE(ae_title=self.calling_ae_title)
        ae.acse_timeout = self.timeout_s
        ae.dimse_timeout = self.timeout_s
        ae.network_timeout = self.timeout_s
        # One context per (SOP Class, transfer syntax) the files are encoded in, so that the peer accepts
        # exactly that syntax for compressed files (an acceptor picks one syntax per context), plus the
        # uncompressed defaults. pynetdicom allows 128 contexts per association.
        wanted: dict[tuple[str, str], None] = {}
        for ds in datasets:
            ts = str(getattr(ds, "file_meta", Dataset()).get("TransferSyntaxUID", ExplicitVRLittleEndian))
            wanted[(str(ds.SOPClassUID), ts)] = None
        for sop_class in dict.fromkeys(sop for sop, _ in wanted):
            ae.add_requested_context(sop_class, [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
        for sop_class, ts in wanted:
            if ts not in (ExplicitVRLittleEndian, ImplicitVRLittleEndian):
                ae.add_requested_context(sop_class, [ts])
        assoc = ae.associate(
            self.host,
            self.port,
            ae_title=self.ae_title,
            evt_handlers=[(evt.EVT_CONN_OPEN, _nodelay)],
        )
        if not assoc.is_established:
            return [self._association_failure(assoc)] * len(datasets)
        try:
            return [self._store(assoc, ds) for ds in datasets]
        finally:
            if assoc.is_established:
                assoc.release()

    def _association_failure(self, assoc: Association) -> SendOutcome:
        response = assoc.acceptor.primitive
        result = getattr(response, "result", None)
        if assoc.is_rejected and response is not None:
            return SendOutcome(
                False,
                f"{self.name} rejected the association from {self.calling_ae_title!r}: "
                f"{response.result_str}, {response.reason_str}",
                permanent=result == 0x01,  # rejected-permanent (PS3.8 9.3.4)
            )
        if assoc.is_aborted and result == 0x00:
            # Accepted, but not one presentation context: the peer stores none of these SOP Classes.
            return SendOutcome(False, f"{self.name} accepts none of the SOP Classes offered", permanent=True)
        if assoc.is_aborted:
            return SendOutcome(False, f"{self.name} aborted the association request")
        return SendOutcome(
            False, f"could not connect to {self.name} (no association within {self.timeout_s} s)"
        )

    def _store(self, assoc: Association, ds: Dataset) -> SendOutcome:
        uid = str(ds.SOPInstanceUID)
        try:
            status = assoc.send_c_store(ds)
        except ValueError as exc:  # no accepted presentation context for the SOP Class / transfer syntax
            return SendOutcome(False, f"{self.name} accepts no presentation context for {uid}: {exc}", True)
        except (RuntimeError, OSError) as exc:
            return SendOutcome(False, f"C-STORE of {uid} to {self.name} broke off: {exc}")
        if "Status" not in status:
            return SendOutcome(False, f"no C-STORE response for {uid} from {self.name} (timeout or abort)")
        code = int(status.Status)
        if code in (0x0000, 0x0001, 0xB000, 0xB006, 0xB007):
            return SENT
        comment = str(status.get("ErrorComment", "")).strip()
        transient = (code >> 8) in _TRANSIENT_STATUS_PREFIXES
        return SendOutcome(
            False,
            f"{self.name} answered C-STORE of {uid} with status 0x{code:04X}"
            + (f" ({comment})" if comment else ""),
            permanent=not transient,
        )


# ------------------------------------------------------------------------------------------------ STOW-RS
class StowRsDestination:
    """STOW-RS to a DICOMweb service root (PS3.18 10.5), one request per batch and study.

    Permanent failures: HTTP 4xx other than 408/429 (bad request, unauthorised, unsupported media type ...),
    an instance listed in the Failed SOP Sequence with a reason other than 0xA7xx. Transient: 5xx, 408, 429,
    connection errors and timeouts.
    """

    def __init__(self, url: str, timeout_s: float = 60.0, headers: dict[str, str] | None = None) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"STOW-RS URL {url!r} must start with http:// or https://.")
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s
        self.headers = dict(headers or {})

    @property
    def name(self) -> str:
        return self.url

    def __repr__(self) -> str:
        return f"StowRsDestination({self.url!r})"

    def _client(self) -> Any:
        from dicomweb_client.api import DICOMwebClient

        session = requests.Session()
        session.request = _with_timeout(session.request, self.timeout_s)  # type: ignore[method-assign]
        return DICOMwebClient(url=self.url, session=session, headers=self.headers or None)

    def send(self, files: Sequence[Path]) -> list[SendOutcome]:
        if not files:
            return []
        datasets = [_read(path) for path in files]
        outcomes: dict[int, SendOutcome] = {}
        by_study: dict[str, list[int]] = {}
        for index, ds in enumerate(datasets):
            by_study.setdefault(str(ds.StudyInstanceUID), []).append(index)
        client = self._client()
        for study_uid, indexes in by_study.items():
            batch = [datasets[i] for i in indexes]
            try:
                response = client.store_instances(batch, study_instance_uid=study_uid)
            except requests.HTTPError as exc:
                code = exc.response.status_code if exc.response is not None else 0
                permanent = 400 <= code < 500 and code not in (408, 429)
                reason = f"STOW-RS to {self.url} answered HTTP {code}"
                for i in indexes:
                    outcomes[i] = SendOutcome(False, reason, permanent)
                continue
            except (requests.ConnectionError, requests.Timeout, OSError) as exc:
                for i in indexes:
                    outcomes[i] = SendOutcome(
                        False, f"STOW-RS to {self.url} failed: {type(exc).__name__}: {exc}"
                    )
                continue
            failed = _failed_sops(response)
            for i in indexes:
                uid = str(datasets[i].SOPInstanceUID)
                if uid in failed:
                    code = failed[uid]
                    outcomes[i] = SendOutcome(
                        False,
                        f"STOW-RS to {self.url} refused {uid} (FailureReason 0x{code:04X})",
                        permanent=(code >> 8) not in _TRANSIENT_STATUS_PREFIXES,
                    )
                else:
                    outcomes[i] = SENT
        return [outcomes[i] for i in range(len(datasets))]


def _with_timeout(request: Any, timeout_s: float) -> Any:
    def wrapped(method: str, url: str, **kwargs: Any) -> Any:
        kwargs.setdefault("timeout", timeout_s)
        return request(method, url, **kwargs)

    return wrapped


def _failed_sops(response: Dataset | None) -> dict[str, int]:
    """SOP Instance UID -> Failure Reason from a STOW-RS response (PS3.18 10.5.3, Failed SOP Sequence)."""
    failed: dict[str, int] = {}
    if response is None:
        return failed
    for item in response.get("FailedSOPSequence", []):
        failed[str(item.get("ReferencedSOPInstanceUID", ""))] = int(item.get("FailureReason", 0xC000))
    return failed


# ------------------------------------------------------------------------------------------------- folder
class FolderDestination:
    """Part-10 files copied to ``folder/<StudyInstanceUID>/<SOPInstanceUID>.dcm`` atomically (write, fsync,
    rename): a reader of the folder never sees half a file, and a resend overwrites with the same bytes.
    """

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)

    @property
    def name(self) -> str:
        return f"folder:{self.folder}"

    def __repr__(self) -> str:
        return f"FolderDestination({str(self.folder)!r})"

    def send(self, files: Sequence[Path]) -> list[SendOutcome]:
        return [self._copy(Path(path)) for path in files]

    def _copy(self, path: Path) -> SendOutcome:
        try:
            ds = pydicom.dcmread(
                path, stop_before_pixels=True, specific_tags=["StudyInstanceUID", "SOPInstanceUID"]
            )
            target_dir = self.folder / str(ds.StudyInstanceUID)
            target_dir.mkdir(parents=True, exist_ok=True)
            target = target_dir / f"{ds.SOPInstanceUID}.dcm"
            with tempfile.NamedTemporaryFile(dir=target_dir, delete=False, suffix=".tmp") as tmp:
                with open(path, "rb") as src:
                    shutil.copyfileobj(src, tmp)
                tmp.flush()
                os.fsync(tmp.fileno())
            os.replace(tmp.name, target)
        except PermissionError as exc:
            return SendOutcome(False, f"cannot write to {self.folder}: {exc}", permanent=True)
        except OSError as exc:
            return SendOutcome(False, f"copy to {self.folder} failed: {exc}")
        return SENT


# ------------------------------------------------------------------------------------------------ parsing
def parse_destination(spec: str, calling_ae_title: str = "RADGATE", timeout_s: float = 30.0) -> Destination:
    """A destination from its configuration string.

    ``AET@HOST:PORT`` -> C-STORE; ``http://...`` / ``https://...`` -> STOW-RS (the DICOMweb service root,
    e.g. ``http://pacs:8042/dicom-web``); ``folder:/path`` -> folder. Raises ``ValueError`` naming the string
    and the accepted forms.
    """
    text = spec.strip()
    if text.startswith(("http://", "https://")):
        return StowRsDestination(text, timeout_s=timeout_s)
    if text.startswith("folder:"):
        path = text.removeprefix("folder:")
        if not path:
            raise ValueError(f"Destination {spec!r} names no folder; expected folder:/path/to/dir.")
        return FolderDestination(path)
    match = _AE_SPEC.match(text)
    if match:
        return CStoreDestination(
            match["aet"],
            match["host"].strip("[]"),
            int(match["port"]),
            calling_ae_title=calling_ae_title,
            timeout_s=timeout_s,
        )
    raise ValueError(
        f"Destination {spec!r} is not understood; expected AET@HOST:PORT (C-STORE), "
        "http(s)://host/dicom-web (STOW-RS) or folder:/path."
    )


def destinations_from_settings(settings: Settings) -> list[Destination]:
    """The destinations of ``[results]``: every ``send_to`` entry, plus the folder destination.

    ``results.folder_destination`` adds a folder; when neither is set, results go to
    ``DATA_DIR/outbox-folder`` so that the embedded demo always has somewhere to deliver.
    """
    timeout_s = settings.server.network_timeout_s
    destinations = [
        parse_destination(spec, calling_ae_title=settings.server.ae_title, timeout_s=timeout_s)
        for spec in settings.results.send_to
    ]
    if settings.results.folder_destination:
        destinations.append(FolderDestination(settings.results.folder_destination))
    elif not destinations:
        destinations.append(FolderDestination(settings.data_dir / "outbox-folder"))
    return destinations
