"""The DIMSE edge: a C-ECHO / C-STORE SCP (pynetdicom) with a calling-AE and host allowlist.

The C-STORE handler hands the encoded dataset, undecoded, to :class:`~radgate.ingest.store.InstanceStore`
and answers with the PS3.4 status it returns; an exception inside becomes 0xC211 (pynetdicom's "unable to
process"), never a crashed server. Associations from callers not on the allowlist are rejected with
A-ASSOCIATE-RJ (permanent, "calling AE title not recognised", PS3.8 9.3.4).
"""

from __future__ import annotations

import logging
import queue
import socket
import ssl
import types
from dataclasses import dataclass
from typing import Any, cast

from pydicom.dataset import Dataset
from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, evt
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]
from pynetdicom.transport import ThreadedAssociationServer

from radgate.config import Settings
from radgate.ingest.parse import STORAGE_SOP_CLASSES
from radgate.ingest.store import InstanceStore
from radgate.logs import REPORTED

__all__ = ["AllowEntry", "DicomServer", "parse_allow_entry"]

log = logging.getLogger(__name__)

# pynetdicom's DUL thread polls its socket and, after a loop without events, sleeps this long (its default
# is 1 ms). Each C-STORE waits for up to one such sleep before its first PDU is read and again before its
# response is sent; at hundreds of instances per second that is a large share of the time.
DUL_POLL_S = 0.0002
#: How long the association's reactor waits for the next DIMSE message before it checks for a release,
#: an abort or the network timeout (pynetdicom instead sleeps 1 ms and then looks without waiting).
REACTOR_WAIT_S = 0.001


def _acceptor_reactor(assoc: Any) -> None:
    """pynetdicom 3.0's ``Association._run_reactor`` with one change: it *waits* on the DIMSE message queue.

    pynetdicom's loop sleeps 1 ms and then looks at the queue without waiting, so every C-STORE waited for
    up to 1 ms after it arrived (and, on a busy machine, for the scheduler to wake the sleeping thread
    again). Here the thread blocks in ``queue.get`` and is woken the moment the DUL thread completes a
    message; the release, abort, DUL and idle-timer checks run between messages as before.
    """
    assoc_log = logging.getLogger("pynetdicom.assoc")
    msg_queue = assoc.dimse.msg_queue
    assoc._is_paused = False
    while not assoc._kill:
        assoc._is_paused = True
        assoc._reactor_checkpoint.wait()
        assoc._is_paused = False

        try:
            context_id, msg = msg_queue.get(timeout=REACTOR_WAIT_S)
        except queue.Empty:
            context_id, msg = None, None
        if msg:
            assoc._serve_request(msg, cast(int, context_id))

        if assoc.is_established and assoc.acse.is_release_requested():
            assoc.acse.send_release(is_response=True)
            assoc_log.info("Association Released")
            assoc.is_released = True
            assoc.is_established = False
            evt.trigger(assoc, evt.EVT_RELEASED, {})
            assoc.kill()
            return

        if assoc.acse.is_aborted():
            log_msg = "Association Aborted"
            if assoc.acse.is_aborted("a-p-abort"):
                log_msg += " (A-P-ABORT)"
            assoc_log.info(log_msg)
            assoc.dul.receive_pdu(wait=False)  # EVT_ACSE_RECV fires for subscribers
            assoc.is_aborted = True
            assoc.is_established = False
            evt.trigger(assoc, evt.EVT_ABORTED, {})
            assoc.kill()
            return

        if not assoc.dul.is_alive():
            assoc.kill()
            return

        if assoc.dul.idle_timer_expired():
            assoc_log.error("Network timeout reached")
            if assoc.network_timeout_response == "A-RELEASE":
                assoc._is_paused = True
                assoc._reactor_checkpoint.wait()
                assoc.release()
                assoc._is_paused = False
            else:
                assoc.abort()
            assoc.kill()
            return


@dataclass(frozen=True)
class AllowEntry:
    """One allowlist entry: a calling AE title, optionally bound to a host (name or address)."""

    ae_title: str
    host: str | None = None

    def addresses(self) -> set[str]:
        if self.host is None:
            return set()
        try:
            return {str(info[4][0]) for info in socket.getaddrinfo(self.host, None)} | {self.host}
        except socket.gaierror:
            log.warning(
                "Allowlist host %r does not resolve; only an exact address match will pass", self.host
            )
            return {self.host}


def parse_allow_entry(text: str) -> AllowEntry:
    """Parse ``AET`` or ``AET@HOST``; raises ``ValueError`` naming the problem."""
    aet, _, host = text.partition("@")
    aet = aet.strip()
    if not 1 <= len(aet) <= 16:
        raise ValueError(f"Allowlist entry {text!r}: the AE title must be 1 to 16 characters.")
    if "@" in text and not host.strip():
        raise ValueError(f"Allowlist entry {text!r}: nothing follows '@'; expected AET@HOST.")
    return AllowEntry(aet, host.strip() or None)


def tls_context(settings: Settings) -> ssl.SSLContext | None:
    """The server's TLS context when ``tls.dicom`` is on (PS3.15 Annex B secure transport), else None.

    TLS 1.2 or newer; with ``tls.ca_file``, callers must present a certificate signed by one of those CAs.
    """
    if not settings.tls.dicom:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(settings.tls.cert_file, settings.tls.key_file)
    if settings.tls.ca_file:
        context.load_verify_locations(settings.tls.ca_file)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


class DicomServer:
    """The DIMSE SCP of one gateway; ``start()`` returns once it listens, ``stop()`` closes it."""

    def __init__(self, settings: Settings, store: InstanceStore) -> None:
        self.settings = settings
        self.store = store
        self.allow = [parse_allow_entry(e) for e in settings.server.allow_ae]
        self._allowed = [(e.ae_title, e.addresses()) for e in self.allow]
        self.ae = AE(ae_title=settings.server.ae_title)
        self.ae.maximum_pdu_size = settings.server.max_pdu
        self.ae.maximum_associations = settings.server.max_associations
        self.ae.network_timeout = settings.server.network_timeout_s
        self.ae.dimse_timeout = settings.server.network_timeout_s
        self.ae.acse_timeout = settings.server.network_timeout_s
        self.ae.add_supported_context(Verification, ALL_TRANSFER_SYNTAXES)
        for uid in sorted(STORAGE_SOP_CLASSES):
            self.ae.add_supported_context(uid, ALL_TRANSFER_SYNTAXES)
        self.server: ThreadedAssociationServer | None = None

    @property
    def port(self) -> int:
        if self.server is None:
            raise RuntimeError("The DICOM server is not running.")
        return int(self.server.server_address[1])

    def start(self) -> None:
        handlers: list[Any] = [
            (evt.EVT_CONN_OPEN, self._on_connection),
            (evt.EVT_REQUESTED, self._on_requested),
            (evt.EVT_C_ECHO, self._on_echo),
            (evt.EVT_C_STORE, self._on_store),
        ]
        address = (self.settings.server.host, self.settings.server.dicom_port)
        server = self.ae.start_server(
            address, block=False, evt_handlers=handlers, ssl_context=tls_context(self.settings)
        )
        assert server is not None  # block=False always returns the server
        self.server = server
        log.info(
            "DICOM SCP %s listening on %s:%d",
            self.settings.server.ae_title,
            address[0],
            self.port,
            extra=REPORTED,  # `radgate serve` says so in its listening line
        )

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server = None

    # ---------------------------------------------------------------- handlers
    def is_allowed(self, calling_ae: str, address: str) -> bool:
        if not self._allowed:
            return True
        return any(aet == calling_ae and (not hosts or address in hosts) for aet, hosts in self._allowed)

    def _on_connection(self, event: Any) -> None:
        """Give the accepted socket the network timeout, so that a peer that stops mid-PDU is dropped.

        pynetdicom's idle timer cannot fire while its reader blocks in ``recv`` waiting for the rest of a
        PDU, and sockets accepted by its server have no timeout: without this, a peer that announced a
        P-DATA PDU and stopped sending held its association (and a slot of server.max_associations)
        forever. With it, ``recv`` times out after server.network_timeout_s and the association closes.
        """
        sock = getattr(event.assoc.dul.socket, "socket", None)
        if sock is not None:
            sock.settimeout(self.settings.server.network_timeout_s)

    def _on_requested(self, event: Any) -> None:
        assoc = event.assoc
        sock = getattr(assoc.dul.socket, "socket", None)
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        assoc.dul._run_loop_delay = DUL_POLL_S
        if not assoc.is_requestor:  # runs once negotiation succeeds, in place of pynetdicom's own loop
            assoc._run_reactor = types.MethodType(_acceptor_reactor, assoc)
        calling = str(assoc.requestor.primitive.calling_ae_title).strip()
        address = str(assoc.requestor.address)
        called = str(assoc.requestor.primitive.called_ae_title).strip()
        if not self.settings.auth.accept_any_called_ae and called != self.settings.server.ae_title:
            reason = (
                f"Association from calling AE {calling!r} at {address} refused: it called AE title "
                f"{called!r}, this gateway is {self.settings.server.ae_title!r} "
                "(auth.accept_any_called_ae accepts any)."
            )
            log.warning(reason)
            self.store.record_refusal("dimse", calling, address, reason)
            # Permanent, service user, "called AE title not recognised" (PS3.8 9.3.4).
            assoc.acse.send_reject(0x01, 0x01, 0x07)
            assoc.is_rejected = True
            assoc.kill()
            return
        if not self.is_allowed(calling, address):
            reason = (
                f"Association from calling AE {calling!r} at {address} refused: not on the allowlist "
                f"(server.allow_ae / --allow-ae)."
            )
            log.warning(reason)
            self.store.record_refusal("dimse", calling, address, reason)
            # What pynetdicom's own ACSE does for require_calling_aet: send A-ASSOCIATE-RJ, then stop.
            assoc.acse.send_reject(0x01, 0x01, 0x03)
            assoc.is_rejected = True
            assoc.kill()

    def _on_echo(self, event: Any) -> int:
        return 0x0000

    def _on_store(self, event: Any) -> int | Dataset:
        calling = str(event.assoc.requestor.ae_title).strip()
        data = event.encoded_dataset(include_meta=True)
        outcome = self.store.store_bytes(
            data,
            source="dimse",
            calling_ae=calling,
            origin=str(event.assoc.requestor.address),
            expected_sop_instance_uid=str(event.request.AffectedSOPInstanceUID),
        )
        if outcome.ok or not outcome.reason:
            return outcome.status
        return _status_with_reason(outcome.status, outcome.reason)


def _status_with_reason(status: int, reason: str) -> Dataset:
    """A C-STORE-RSP status with the rejection reason in Error Comment (0000,0902; LO, 64 characters)."""
    rsp = Dataset()
    rsp.Status = status
    rsp.ErrorComment = reason.encode("ascii", "replace").decode("ascii")[:64]
    return rsp
