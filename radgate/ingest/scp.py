"""The DIMSE edge: a C-ECHO / C-STORE SCP (pynetdicom) with a calling-AE and host allowlist.

The C-STORE handler hands the encoded dataset, undecoded, to :class:`~radgate.ingest.store.InstanceStore`
and answers with the PS3.4 status it returns; an exception inside becomes 0xC211 (pynetdicom's "unable to
process"), never a crashed server. Associations from callers not on the allowlist are rejected with
A-ASSOCIATE-RJ (permanent, "calling AE title not recognised", PS3.8 9.3.4).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import queue
import select
import socket
import ssl
import struct
import threading
import types
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from pydicom.dataset import Dataset
from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, _config, evt
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.dul import _PDU_TYPES
from pynetdicom.pdu import A_ABORT_RQ
from pynetdicom.pdu_primitives import P_DATA
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]
from pynetdicom.transport import ThreadedAssociationServer

from radgate.config import Settings
from radgate.ingest.cstore import c_store_rsp, part10_bytes
from radgate.ingest.parse import STORAGE_SOP_CLASSES
from radgate.ingest.store import InstanceStore
from radgate.ingest.storelane import StoreLane, StoreRequest
from radgate.logs import REPORTED

__all__ = ["AllowEntry", "DicomServer", "parse_allow_entry"]

log = logging.getLogger(__name__)

# pynetdicom's DUL thread polls its socket: after a loop without events it sleeps ``_run_loop_delay`` (1 ms)
# and looks again. Every idle association then costs about a tenth of a core, and every C-STORE waits for up
# to one sleep before its first PDU is read and again before its response is sent. radgate runs its own DUL
# loop instead (:func:`_dul_reactor`), which blocks in ``select`` until the socket has data, the association
# queues something to send, or a timer needs looking at. ``_run_loop_delay`` is still what pynetdicom's
# ``stop_dul`` sleeps between its checks that the thread has ended.
DUL_POLL_S = 0.0002
#: The longest the DUL thread blocks without looking at its timers and its kill flag.
DUL_WAIT_S = 0.05
#: The longest the association's reactor waits for the next DIMSE message before it checks for a release,
#: an abort or the network timeout (the DUL thread wakes it for the first two).
REACTOR_WAIT_S = 0.05
_PDU_HEAD = struct.Struct(">BBL")
#: A P-DATA-TF PDU's type, reserved byte and length, then its one PDV item's length, context and control.
_PDATA_HEAD = struct.Struct(">BBLLBB")
_PDU_TYPE_CODES = frozenset(range(0x01, 0x08))
#: A PDU is read in buffers of at most this size (a peer's claimed length allocates nothing in advance).
PDU_READ_BYTES = 4 * 1024**2


class _Waker:
    """A pipe that wakes one association's DUL thread (and its reactor) out of their waits."""

    def __init__(self, dul: Any) -> None:
        self.dul = dul
        self.read_fd, self.write_fd = os.pipe()
        os.set_blocking(self.read_fd, False)
        os.set_blocking(self.write_fd, False)
        self.closed = False

    def wake(self) -> None:
        if self.closed:
            return
        with contextlib.suppress(OSError):  # full: a wake-up is pending anyway; closed: nobody waits
            os.write(self.write_fd, b"\0")

    def drain(self) -> None:
        try:
            while os.read(self.read_fd, 512):
                pass
        except (BlockingIOError, OSError):
            pass

    def close(self) -> None:
        self.closed = True
        for fd in (self.read_fd, self.write_fd):
            with contextlib.suppress(OSError):
                os.close(fd)


def _install_event_driven_dul(assoc: Any, lane: StoreLane | None = None) -> None:
    """Replace the polling loop of ``assoc``'s DUL thread (not yet started) with :func:`_dul_reactor`;
    with ``lane``, its P-DATA-TF PDUs go to that :class:`~radgate.ingest.storelane.StoreLane` first.

    The association thread hands the DUL something to send through ``to_provider_queue`` (and, rarely, an
    event through ``event_queue``); each ``put`` from another thread now also wakes the DUL thread. When the
    DUL gives the association a release or an abort (``to_user_queue``), or ends, it wakes the association's
    reactor with an empty message.
    """
    dul = assoc.dul
    waker = _Waker(dul)
    dul._radgate_waker = waker
    dul._radgate_lane = lane
    msg_queue = assoc.dimse.msg_queue

    def waking(q: queue.Queue[Any]) -> None:
        put = q.put

        def put_and_wake(item: Any, block: bool = True, timeout: float | None = None) -> None:
            put(item, block, timeout)
            if threading.get_ident() != dul.ident:
                waker.wake()

        q.put = put_and_wake  # type: ignore[method-assign]

    waking(dul.to_provider_queue)
    waking(dul.event_queue)
    user_put = dul.to_user_queue.put

    def put_for_user(item: Any, block: bool = True, timeout: float | None = None) -> None:
        user_put(item, block, timeout)
        msg_queue.put((None, None))  # the reactor looks for a release or an abort now

    dul.to_user_queue.put = put_for_user

    def stop_dul() -> bool:  # pynetdicom's, plus the wake-up (it sets the flag and waits for the thread)
        if dul.state_machine.current_state != "Sta1":
            return False
        dul._kill_thread = True
        waker.wake()
        dul.join()
        return True

    def kill_dul() -> None:
        dul._kill_thread = True
        waker.wake()

    dul.stop_dul = stop_dul
    dul.kill_dul = kill_dul
    dul._read_pdu_data = types.MethodType(_read_pdu_data, dul)
    dul.run = types.MethodType(_dul_reactor, dul)


def _dul_reactor(dul: Any) -> None:
    """pynetdicom 3.0's ``DULServiceProvider.run_reactor``, waiting in ``select`` instead of sleeping.

    Each loop does what pynetdicom's does (the ARTIM timer, then one primitive to send or one PDU to read,
    then one state machine event); only when a loop found nothing to do does it wait, for the socket to
    become readable, for a wake-up from another thread, or for at most ``DUL_WAIT_S`` (less when the ARTIM
    timer runs out sooner).
    """
    waker: _Waker = dul._radgate_waker
    dul._idle_timer.start()
    idle = False
    try:
        while True:
            if not dul.assoc._dul_ready.is_set():
                dul.assoc._dul_ready.set()
            if idle:
                _wait(dul, waker)
            if dul._kill_thread:
                break
            if dul.artim_timer.expired:
                dul.event_queue.put("Evt18")
            try:
                if dul._process_recv_primitive():
                    pass
                elif dul._is_transport_event():
                    dul._idle_timer.restart()
            except Exception as exc:  # as pynetdicom: abort, bypassing the state machine
                log.error("Exception in the DUL reactor, aborting association: %s", type(exc).__name__)
                log.debug("DUL reactor failure", exc_info=True)
                abort_pdu = A_ABORT_RQ()
                abort_pdu.source = 0x02
                abort_pdu.reason_diagnostic = 0x00
                dul.socket.send(abort_pdu.encode())
                dul.assoc.is_aborted = True
                dul.assoc.is_established = False
                dul.assoc._kill = True
                dul._kill_thread = True
                return
            try:
                event = dul.event_queue.get(block=False)
            except queue.Empty:
                idle = True
                continue
            dul.state_machine.do_action(event)
            idle = False
    finally:
        waker.close()
        dul.assoc.dimse.msg_queue.put((None, None))  # the reactor sees the DUL has ended


def _wait(dul: Any, waker: _Waker) -> None:
    timeout = DUL_WAIT_S
    artim = dul.artim_timer
    if artim._start_time is not None and artim._end_time is None:
        timeout = max(0.0, min(timeout, artim.remaining))
    sock = getattr(dul.socket, "socket", None)
    if sock is not None and isinstance(sock, ssl.SSLSocket) and sock.pending():
        return  # decrypted bytes wait in the TLS buffer, where select cannot see them
    fds: list[Any] = [waker.read_fd]
    if sock is not None and dul.socket._is_connected:
        fds.append(sock)
    with contextlib.suppress(OSError, ValueError):  # a socket closed under us: the next loop finds out
        select.select(fds, [], [], timeout)
    waker.drain()


def _recv_into(sock: socket.socket, view: memoryview) -> int:
    """Fill ``view`` from ``sock``; the number of bytes read (fewer when the peer closed)."""
    got = 0
    while got < len(view):
        n = sock.recv_into(view[got:])
        if n == 0:
            break
        got += n
    return got


def _read_pdu_data(dul: Any) -> None:
    """pynetdicom's ``DULServiceProvider._read_pdu_data``, reading a PDU in large pieces.

    pynetdicom reads a PDU in 4 KiB ``recv`` calls appended to a ``bytearray``, then copies it twice more
    before decoding: a 128 KiB P-DATA-TF was 32 reads and three copies. Here a PDU of at most
    ``PDU_READ_BYTES`` is read with ``recv_into`` straight into one buffer; a longer one in buffers of that
    size (memory grows only as bytes arrive, as before, whatever length the header claims), joined once.
    A P-DATA-TF of an established association goes to its :class:`~radgate.ingest.storelane.StoreLane`
    first. The events placed on the state machine's queue are pynetdicom's, for the same conditions.
    """
    sock = dul.socket.socket
    head = bytearray(6)
    try:
        if sock is None or _recv_into(sock, memoryview(head)) < 6:
            dul.event_queue.put("Evt17")  # transport connection closed
            return
        pdu_type, _, pdu_length = _PDU_HEAD.unpack(head)
        if pdu_type not in _PDU_TYPE_CODES:
            log.error("Unknown PDU type received '0x%02X'", pdu_type)
            dul.event_queue.put("Evt19")  # unrecognised or invalid PDU
            return
        b: bytes | bytearray
        if pdu_length <= PDU_READ_BYTES:
            b = whole = bytearray(6 + pdu_length)
            whole[:6] = head
            got = _recv_into(sock, memoryview(whole)[6:])
            if got < pdu_length:
                _short_pdu(dul, 6 + got, 6 + pdu_length)
                return
        else:
            parts: list[bytes | bytearray] = [head]
            left = pdu_length
            while left:
                part = bytearray(min(left, PDU_READ_BYTES))
                got = _recv_into(sock, memoryview(part))
                if got < len(part):
                    _short_pdu(dul, 6 + pdu_length - left + got, 6 + pdu_length)
                    return
                parts.append(part)
                left -= got
            b = b"".join(parts)
            del parts
    except OSError:  # includes the socket's timeout (server.network_timeout_s)
        log.error("Connection closed before the entire PDU was received")
        dul.event_queue.put("Evt17")
        return
    lane: StoreLane | None = getattr(dul, "_radgate_lane", None)
    if pdu_type == 0x04 and lane is not None and dul.state_machine.current_state == "Sta6" and lane.feed(b):
        return
    _decode_pdu(dul, b)


def _short_pdu(dul: Any, got: int, expected: int) -> None:
    log.error("The received PDU is shorter than expected (%d of %d bytes received)", got, expected)
    dul.event_queue.put("Evt17")


def _decode_pdu(dul: Any, b: bytes | bytearray) -> None:
    """A PDU read whole, as pynetdicom decodes it: the PDU object for the state machine, and its event."""
    b = bytes(b)
    try:
        evt.trigger(dul.assoc, evt.EVT_DATA_RECV, {"data": b})
        pdu_cls, event = _PDU_TYPES[b[0:1]]
        pdu = pdu_cls()
        pdu.decode(b)
        evt.trigger(dul.assoc, evt.EVT_PDU_RECV, {"pdu": pdu})
        dul.event_queue.put(event)
    except Exception:
        log.error("Unable to decode the received PDU data")
        log.debug("PDU decode failure", exc_info=True)
        dul.event_queue.put("Evt19")  # unrecognised or invalid PDU
        return
    dul._recv_pdu.put(pdu)


#: Serves one DIMSE request itself; False hands it to pynetdicom's service classes.
RequestServer = Callable[[Any, Any, int], bool]


def _acceptor_reactor(assoc: Any, serve: RequestServer | None = None) -> None:
    """pynetdicom 3.0's ``Association._run_reactor`` with two changes: it *waits* on the DIMSE message queue,
    and a request ``serve`` answers (a C-STORE, :meth:`DicomServer.serve_c_store`) skips pynetdicom's service
    class.

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
        if msg and not (serve is not None and serve(assoc, msg, cast(int, context_id))):
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
        self._handed_tls: ssl.SSLContext | None = None

    @property
    def port(self) -> int:
        if self.server is None:
            raise RuntimeError("The DICOM server is not running.")
        return int(self.server.server_address[1])

    def handlers(self) -> list[Any]:
        """The event handlers every association of this SCP is bound to."""
        return [
            (evt.EVT_CONN_OPEN, self._on_connection),
            (evt.EVT_REQUESTED, self._on_requested),
            (evt.EVT_C_ECHO, self._on_echo),
            (evt.EVT_C_STORE, self._on_store),
        ]

    def handed_server(self, address: tuple[str, int]) -> ThreadedAssociationServer:
        """A server that listens on nothing: another process accepts on ``address`` and hands each
        connection over (:mod:`radgate.ingest.scpprocs`), which :meth:`serve_connection` then serves."""
        server = self.ae.make_server(address, evt_handlers=self.handlers(), server_class=_HandedServer)
        server.contexts = _SharedContexts(server.contexts)
        self.server = cast(ThreadedAssociationServer, server)
        self._handed_tls = tls_context(self.settings)
        return self.server

    def serve_connection(self, sock: socket.socket, address: tuple[str, int]) -> None:
        """Run one association on an accepted connection (TLS handshake first, when configured), in the
        calling thread until the association's own thread has started."""
        assert self.server is not None
        if self._handed_tls is not None:
            sock = self._handed_tls.wrap_socket(sock, server_side=True)
        self.server.finish_request(sock, address)

    def start(self) -> None:
        address = (self.settings.server.host, self.settings.server.dicom_port)
        server = self.ae.start_server(
            address, block=False, evt_handlers=self.handlers(), ssl_context=tls_context(self.settings)
        )
        assert server is not None  # block=False always returns the server
        server.contexts = _SharedContexts(server.contexts)
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
        assoc = event.assoc
        if not assoc.is_requestor:
            hand_back = functools.partial(_decode_pdu, assoc.dul)
            lane = StoreLane(assoc, self._lane_accepts, self._lane_answer, hand_back)
            _install_event_driven_dul(assoc, lane)

    def _on_requested(self, event: Any) -> None:
        assoc = event.assoc
        sock = getattr(assoc.dul.socket, "socket", None)
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        assoc.dul._run_loop_delay = DUL_POLL_S
        if not assoc.is_requestor:  # runs once negotiation succeeds, in place of pynetdicom's own loop
            reactor = functools.partial(_acceptor_reactor, serve=self.serve_c_store)
            assoc._run_reactor = types.MethodType(reactor, assoc)
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
        """EVT_C_STORE, for a request :meth:`serve_c_store` leaves to pynetdicom."""
        data = event.encoded_dataset(include_meta=True)
        status, reason = self._store(event.assoc, str(event.request.AffectedSOPInstanceUID), data)
        return status if reason is None else _status_with_reason(status, reason)

    def _store(self, assoc: Any, sop_instance_uid: str, data: bytes) -> tuple[int, str | None]:
        """Store one received instance: its PS3.4 status, and the reason when it was refused."""
        outcome = self.store.store_bytes(
            data,
            source="dimse",
            calling_ae=str(assoc.requestor.ae_title).strip(),
            origin=str(assoc.requestor.address),
            expected_sop_instance_uid=sop_instance_uid,
        )
        if outcome.ok or not outcome.reason:
            return outcome.status, None
        return outcome.status, outcome.reason

    def _store_answered(
        self, assoc: Any, context: Any, sop_class_uid: str, sop_instance_uid: str, dataset: Any
    ) -> tuple[int, str | None]:
        """Store a C-STORE-RQ's dataset (its bytes, or its fragments) behind the File Meta Information
        pynetdicom gives it; an exception while storing is 0xC211 ("unable to process"), logged."""
        try:
            data = part10_bytes(dataset, sop_class_uid, sop_instance_uid, str(context.transfer_syntax[0]))
            return self._store(assoc, sop_instance_uid, data)
        except Exception:
            log.exception("Exception while storing a C-STORE request's dataset")
            return 0xC211, None

    @staticmethod
    def _storage_context(assoc: Any, context_id: int) -> Any:
        """The accepted storage context radgate answers a C-STORE-RQ on itself (the lane, or
        :meth:`serve_c_store`); None where pynetdicom's Storage Service Class serves it as usual."""
        context = assoc._accepted_cx.get(context_id)
        if context is None or context.abstract_syntax not in STORAGE_SOP_CLASSES or assoc._sent_release:
            return None
        return context

    def _lane_accepts(self, assoc: Any, request: StoreRequest) -> bool:
        """Whether the DUL thread's :class:`StoreLane` answers this C-STORE-RQ (else pynetdicom does)."""
        return (
            self._storage_context(assoc, request.context_id) is not None
            and assoc.is_established
            and not _config.STORE_RECV_CHUNKED_DATASET  # pynetdicom's own path writes to a temporary file
        )

    def _lane_answer(self, assoc: Any, request: StoreRequest, fragments: list[memoryview]) -> None:
        """Store what the :class:`StoreLane` assembled and send the C-STORE-RSP from the DUL thread."""
        context = assoc._accepted_cx[request.context_id]
        status, reason = self._store_answered(
            assoc, context, request.sop_class_uid, request.sop_instance_uid, fragments
        )
        del fragments  # views of the PDUs as read: let them go before the next ones arrive
        self._respond(
            assoc,
            request.context_id,
            request.message_id,
            request.sop_class_uid,
            request.sop_instance_uid,
            status,
            reason,
            direct=True,
        )
        assoc.dul._idle_timer.restart()

    def serve_c_store(self, assoc: Any, req: Any, context_id: int) -> bool:
        """Answer a C-STORE-RQ without pynetdicom's Storage Service Class (:mod:`radgate.ingest.cstore`);
        False for anything else, or anything unusual, which pynetdicom then serves as before.

        This serves what the DUL thread's :class:`StoreLane` handed back to pynetdicom. What pynetdicom's
        path does that matters is kept: the dataset gets the same File Meta Information, an exception while
        storing is status 0xC211 ("unable to process", logged), the response is sent only while the
        association is still established, and pending C-CANCELs are cleared around the request.
        """
        if not isinstance(req, C_STORE) or not req.is_valid_request:
            return False
        context = self._storage_context(assoc, context_id)
        dataset = req.DataSet
        if (
            context is None
            or req._dataset_file is not None  # pynetdicom's STORE_RECV_CHUNKED_DATASET: its own path
            or dataset is None
            or req.MessageID is None
        ):
            return False
        assoc.dimse.cancel_req = {}
        with dataset.getbuffer() as received:  # joined once with the meta: no copy of its own
            status, reason = self._store_answered(
                assoc, context, str(req.AffectedSOPClassUID), str(req.AffectedSOPInstanceUID), received
            )
        assoc.dimse.cancel_req = {}
        self._respond(
            assoc,
            context_id,
            int(req.MessageID),
            req.AffectedSOPClassUID,
            req.AffectedSOPInstanceUID,
            status,
            reason,
            direct=False,
        )
        return True

    def _respond(
        self,
        assoc: Any,
        context_id: int,
        message_id: int,
        sop_class_uid: str | None,
        sop_instance_uid: str | None,
        status: int,
        reason: str | None,
        direct: bool,
    ) -> None:
        """Send a C-STORE-RSP while the association is established: ``direct`` from the DUL thread onto
        the socket (as the state machine's DT-1 does in Sta6), else through the DUL's queue."""
        if not assoc.is_established:
            return
        comment: str | None = None
        if reason is not None:
            comment = reason.encode("ascii", "replace").decode("ascii")[:64]
        encoded = c_store_rsp(message_id, sop_class_uid, sop_instance_uid, status, comment)
        peer_max = assoc.requestor.maximum_length
        if peer_max and len(encoded) + 7 > peer_max:  # a peer taking tiny PDUs: pynetdicom fragments it
            rsp = C_STORE()
            rsp.MessageIDBeingRespondedTo = message_id
            rsp.AffectedSOPClassUID = sop_class_uid
            rsp.AffectedSOPInstanceUID = sop_instance_uid
            rsp.Status = status
            if comment is not None:
                rsp.ErrorComment = comment  # type: ignore[assignment]
            assoc.dimse.send_msg(rsp, context_id)
            return
        if direct:
            item = 2 + len(encoded)  # PS3.8 9.3.5: one PDV item, the command's last fragment
            assoc.dul.socket.send(_PDATA_HEAD.pack(0x04, 0x00, 4 + item, item, context_id, 0x03) + encoded)
            return
        pdata = P_DATA()
        pdata.presentation_data_value_list.append((context_id, b"\x03" + encoded))
        assoc.dul.send_pdu(pdata)


class _SharedContexts(list[Any]):
    """The server's supported presentation contexts, shared by its associations instead of copied.

    pynetdicom's request handler gives each association ``deepcopy(server.contexts)``. radgate supports
    every storage SOP class in every transfer syntax (171 contexts, 7,695 transfer syntaxes), and that copy
    took 165 ms of CPU under the GIL at the start of every association, before its first PDU was read.
    Negotiation only reads the acceptor's contexts (``presentation.negotiate_as_acceptor``) and radgate
    never changes them after the server starts, so a copy of the list holding the same contexts is enough.
    """

    def __deepcopy__(self, memo: dict[int, Any]) -> list[Any]:
        return list(self)


class _HandedServer(ThreadedAssociationServer):
    """pynetdicom's server without a socket of its own: connections come from :meth:`finish_request`."""

    def server_bind(self) -> None:
        pass  # the address is the listening socket's, in the process that accepts

    def server_activate(self) -> None:
        pass

    def server_close(self) -> None:
        if self.socket is not None:
            self.socket.close()


def _status_with_reason(status: int, reason: str) -> Dataset:
    """A C-STORE-RSP status with the rejection reason in Error Comment (0000,0902; LO, 64 characters)."""
    rsp = Dataset()
    rsp.Status = status
    rsp.ErrorComment = reason.encode("ascii", "replace").decode("ascii")[:64]
    return rsp
