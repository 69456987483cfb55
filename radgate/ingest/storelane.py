"""C-STORE on the DUL thread: a C-STORE-RQ's P-DATA-TF PDUs assembled and answered where they are read.

pynetdicom makes five objects of every P-DATA-TF PDU it reads (an event for its state machine, a PDU, a
P-DATA primitive, a DIMSE message fragment, a ``BytesIO`` write), decodes a finished command set with
pydicom, and hands the message to the association's own thread through a queue; the response goes back to
the DUL thread through another queue and a wake-up. storescu sends a 512 KiB instance as five PDUs (the
command, then 128 KiB pieces), so that was about 1.5 ms of Python and two thread hand-offs per instance,
under the GIL that every association and the index commit share.

While an association is established (state Sta6, where P-DATA-TF changes no state: PS3.8 9.2, Evt10 and
DT-2), :class:`StoreLane` reads each P-DATA-TF itself (PS3.8 9.3.5: presentation data value items, each a
context ID, a message control header and a fragment), decodes the command set of PS3.7 9.3.1.1 (implicit
VR little endian, group 0000 only) and, for a well-formed C-STORE-RQ on an accepted storage context, keeps
the dataset's fragments as views of the PDUs read and calls the server's answer once the last one is in.

Everything else goes to pynetdicom exactly as it arrived: another command (C-ECHO-RQ, C-CANCEL-RQ, ...),
a command that carries an element or a value radgate's decoding does not vouch for, fragments out of their
PS3.8 E.2 order. Such a message's PDUs are handed back in order, the lane stands aside until that
message's last fragment has passed, and takes the next message again; where it cannot tell where a
message ends, it stands aside for the rest of the association.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["StoreLane", "StoreRequest", "decode_command", "pdv_items"]

C_STORE_RQ = 0x0001
NO_DATA_SET = 0x0101
_PDV_HEAD = struct.Struct(">LBB")  # item length, presentation context ID, message control header
#: A decoded command set, by element number in group 0000.
Command = dict[int, int | str | bytes]
#: A PDV item: presentation context ID, message control header, the fragment's start and end in its PDU.
Item = tuple[int, int, int, int]
_ELEMENT = struct.Struct("<HHL")  # implicit VR little endian: group, element, 32-bit length
_US = struct.Struct("<H")
_UL = struct.Struct("<L")
#: The command elements a C-STORE-RQ may carry (PS3.7 9.3.1.1), by element number in group 0000: their
#: value representation. Anything else makes the command pynetdicom's to decode and judge.
_STORE_RQ_ELEMENTS = {
    0x0000: "UL",  # Command Group Length
    0x0002: "UI",  # Affected SOP Class UID
    0x0100: "US",  # Command Field
    0x0110: "US",  # Message ID
    0x0700: "US",  # Priority
    0x0800: "US",  # Command Data Set Type
    0x1000: "UI",  # Affected SOP Instance UID
    0x1030: "AE",  # Move Originator Application Entity Title
    0x1031: "US",  # Move Originator Message ID
}


@dataclass(frozen=True, slots=True)
class StoreRequest:
    """What a C-STORE-RQ's command set says, as decoded here."""

    context_id: int
    message_id: int
    sop_class_uid: str
    sop_instance_uid: str


def pdv_items(pdu: bytes | bytearray) -> list[Item] | None:
    """The presentation data value items of a P-DATA-TF PDU (PS3.8 9.3.5): context ID, message control
    header, and the fragment's start and end in ``pdu``; None when the items do not fill the PDU exactly or
    one is shorter than its two header bytes."""
    end = len(pdu)
    at = 6
    items = []
    while at < end:
        if at + 6 > end:
            return None
        length, context_id, control = _PDV_HEAD.unpack_from(pdu, at)
        if length < 2 or at + 4 + length > end:
            return None
        items.append((context_id, control, at + 6, at + 4 + length))
        at += 4 + length
    return items or None


def decode_command(command: bytes) -> Command | None:
    """A command set in implicit VR little endian (PS3.7 6.3.1), by element number: the elements of
    ``_STORE_RQ_ELEMENTS`` decoded, any other kept as its bytes; None when it holds an element of another
    group or twice, a length past its end, or a value that does not fit its VR."""
    values: Command = {}
    at, end = 0, len(command)
    while at < end:
        if at + 8 > end:
            return None
        group, element, length = _ELEMENT.unpack_from(command, at)
        at += 8
        if group != 0x0000 or at + length > end or element in values:
            return None
        raw = command[at : at + length]
        at += length
        vr = _STORE_RQ_ELEMENTS.get(element)
        if vr is None:
            values[element] = raw  # not a C-STORE-RQ's: the request is pynetdicom's to judge
        elif vr == "US":
            if length != 2:
                return None
            values[element] = _US.unpack(raw)[0]
        elif vr == "UL":
            if length != 4:
                return None
            values[element] = _UL.unpack(raw)[0]
        else:
            try:
                text = raw.decode("ascii")
            except UnicodeDecodeError:
                return None
            if "\\" in text:  # a multi-valued UID or AE: pydicom would make a list of it
                return None
            values[element] = text.rstrip("\0 ") if vr == "UI" else text.strip()
    return values


def _store_request(values: Command | None, context_id: int) -> StoreRequest | None:
    """A C-STORE-RQ with a data set, every required element (PS3.7 Table 9.3-1) and no other, else None."""
    if values is None or values.get(0x0100) != C_STORE_RQ or not values.keys() <= _STORE_RQ_ELEMENTS.keys():
        return None
    message_id, sop_class, sop_instance = values.get(0x0110), values.get(0x0002), values.get(0x1000)
    if (
        not isinstance(message_id, int)
        or 0x0700 not in values
        or values.get(0x0800, NO_DATA_SET) == NO_DATA_SET
        or not isinstance(sop_class, str)
        or not isinstance(sop_instance, str)
        or not sop_class
        or not sop_instance
    ):
        return None
    return StoreRequest(context_id, message_id, sop_class, sop_instance)


#: Answers one assembled C-STORE-RQ: the association, the request and the dataset's fragments.
Answer = Callable[[Any, StoreRequest, list[memoryview]], None]
#: Decodes a PDU as pynetdicom does.
HandBack = Callable[[bytes | bytearray], None]
#: Whether the association takes a C-STORE-RQ on this presentation context through the lane.
Accepts = Callable[[Any, StoreRequest], bool]


class StoreLane:
    """One association's C-STORE-RQs, read on its DUL thread (see the module docstring).

    ``hand_back(pdu)`` decodes a PDU as pynetdicom would (the lane calls it, in order, for each PDU of a
    message that is not its own); ``accepts`` decides, per request, whether the lane may answer it;
    ``answer`` stores the instance and sends the response.
    """

    def __init__(self, assoc: Any, accepts: Accepts, answer: Answer, hand_back: HandBack) -> None:
        self.assoc = assoc
        self.accepts = accepts
        self.answer = answer
        self.hand_back = hand_back
        self.disabled = False
        self._passing = False  # a handed-back message's dataset is still arriving
        self._reset()

    def _reset(self) -> None:
        self._pdus: list[bytes | bytearray] = []  # the current message's PDUs, as read
        self._command: list[memoryview] = []
        self._data: list[memoryview] = []
        self._context_id: int | None = None
        self._request: StoreRequest | None = None

    def feed(self, pdu: bytes | bytearray) -> bool:
        """Take one P-DATA-TF PDU read in Sta6; False when it is pynetdicom's (to decode as usual)."""
        if self.disabled:
            return False
        items = pdv_items(pdu)
        if items is None:  # malformed: pynetdicom decides what to make of it, and of what follows
            self._pdus.append(pdu)
            return self._hand_back_message(None)
        if self._passing:
            return self._pass(items)
        self._pdus.append(pdu)
        view = memoryview(pdu)
        complete = False
        for n, (context_id, control, start, end) in enumerate(items):
            if self._context_id is None:
                self._context_id = context_id
            if context_id != self._context_id:
                return self._hand_back_message(None)
            if control & 0x01:  # a command fragment
                if self._request is not None:
                    return self._hand_back_message(None)
                self._command.append(view[start:end])
                if control & 0x02:  # the command's last fragment
                    values = decode_command(b"".join(self._command))
                    request = _store_request(values, context_id)
                    if request is None or not self.accepts(self.assoc, request):
                        return self._hand_back_message(values, items[n + 1 :])
                    self._request = request
            else:  # a dataset fragment
                if self._request is None:
                    return self._hand_back_message(None)
                self._data.append(view[start:end])
                if control & 0x02:  # the dataset's last fragment: the message is complete
                    if n != len(items) - 1:  # the next message starts in the same PDU
                        return self._hand_back_message(None)
                    complete = True
        if complete:
            request, data = self._request, self._data
            self._reset()
            assert request is not None
            self.answer(self.assoc, request, data)
        return True

    def _hand_back_message(self, values: Command | None, after: list[Item] | None = None) -> bool:
        """Give this message's PDUs to pynetdicom, and stand aside until its last fragment has passed.

        ``values``: the message's decoded command, when it is complete (another command, or a C-STORE-RQ
        the lane does not take); ``after``: the items of the current PDU that follow that command. Without
        a decoded command the message's end cannot be known: the lane stands aside for good.
        """
        pdus = self._pdus
        self._reset()
        for pdu in pdus:
            self.hand_back(pdu)
        if values is None:
            self.disabled = True
            return True
        if values.get(0x0800, NO_DATA_SET) != NO_DATA_SET:  # a dataset follows the command
            self._passing = True
            self._pass(after or [])
        elif after:  # another message starts in the same PDU: leave the association to pynetdicom
            self.disabled = True
        return True

    def _pass(self, items: list[Item]) -> bool:
        """Items of a handed-back message's dataset: False (pynetdicom decodes the PDU); the lane takes
        the next message once the dataset's last fragment is among them."""
        for n, (_, control, _, _) in enumerate(items):
            if control & 0x01:  # a command before the dataset ended: not a sequence the lane follows
                self.disabled = True
                return False
            if control & 0x02:
                self._passing = False
                if n != len(items) - 1:
                    self.disabled = True
                return False
        return False
