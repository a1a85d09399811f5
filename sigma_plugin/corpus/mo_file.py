"""Reading compiled gettext catalogs (.mo) with the standard library only."""
from __future__ import annotations

import struct
from typing import List, Tuple

MO_MAGIC_LE = 0x950412DE


class MoFormatError(ValueError):
    pass


def parse_mo(data: bytes, name: str = "<bytes>") -> List[Tuple[str, str]]:
    """(msgid, msgstr) pairs of a .mo file, in file order.

    Context prefixes (`ctxt\\x04`) are dropped, plural entries give their singular forms,
    and the header entry (empty msgid) is skipped. Strings are decoded as UTF-8 (the
    charset nearly every catalog uses; undecodable bytes are replaced).
    """
    if len(data) < 20:
        raise MoFormatError(f"{name}: too short to be a .mo file ({len(data)} bytes)")
    magic = struct.unpack("<I", data[:4])[0]
    if magic == MO_MAGIC_LE:
        endian = "<"
    elif struct.unpack(">I", data[:4])[0] == MO_MAGIC_LE:
        endian = ">"
    else:
        raise MoFormatError(f"{name}: bad magic number 0x{magic:08x} (not a .mo file)")
    _rev, count, orig_off, trans_off = struct.unpack(endian + "4I", data[4:20])
    pairs = []
    for i in range(count):
        mlen, moff = struct.unpack_from(endian + "2I", data, orig_off + 8 * i)
        tlen, toff = struct.unpack_from(endian + "2I", data, trans_off + 8 * i)
        if moff + mlen > len(data) or toff + tlen > len(data):
            raise MoFormatError(f"{name}: string {i} points past the end of the file")
        msgid = data[moff:moff + mlen].decode("utf-8", "replace")
        msgstr = data[toff:toff + tlen].decode("utf-8", "replace")
        if not msgid:
            continue  # header
        msgid = msgid.split("\x04", 1)[-1].split("\x00", 1)[0]
        msgstr = msgstr.split("\x00", 1)[0]
        pairs.append((msgid, msgstr))
    return pairs


def build_mo(pairs, endian: str = "<") -> bytes:
    """A minimal .mo file for `pairs` (list of (msgid, msgstr) strings); used by tests."""
    entries = sorted((m.encode(), s.encode()) for m, s in pairs)
    n = len(entries)
    orig_off = 28
    trans_off = orig_off + 8 * n
    data_off = trans_off + 8 * n
    blob = b""
    origs, trans = [], []
    for m, _ in entries:
        origs.append((len(m), data_off + len(blob)))
        blob += m + b"\x00"
    for _, s in entries:
        trans.append((len(s), data_off + len(blob)))
        blob += s + b"\x00"
    head = struct.pack(endian + "7I", MO_MAGIC_LE, 0, n, orig_off, trans_off, 0, data_off)
    table = b"".join(struct.pack(endian + "2I", *t) for t in origs + trans)
    return head + table + blob
