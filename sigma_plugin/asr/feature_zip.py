"""Per-utterance .npy arrays in an uncompressed zip, addressed as ``zip:offset:length``.

fairseq's speech_to_text task reads ``audio`` entries of that form with
``fairseq.data.audio.audio_utils.get_features_or_waveform``: it mmaps ``length`` bytes at
``offset`` and requires them to be a whole .npy file (magic ``\\x93NUMPY``). So members
must be stored (no compression), and ``offset`` is where a member's data starts: after its
30-byte local header, file name and extra field (read from the local header itself,
which may differ from the central directory's extra field).
"""
from __future__ import annotations

import io
import struct
import zipfile
from pathlib import Path
from typing import Dict, Tuple

import numpy as np

_LOCAL_HEADER = struct.Struct("<4sHHHHHIIIHH")  # 30 bytes
_LOCAL_MAGIC = b"PK\x03\x04"
NPY_MAGIC = b"\x93NUMPY"


def npy_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()


def member_spans(zip_path) -> Dict[str, Tuple[int, int]]:
    """{member stem: (data offset, data length)} for every member of a stored zip."""
    spans = {}
    with zipfile.ZipFile(zip_path) as zf, open(zip_path, "rb") as raw:
        for info in zf.infolist():
            if info.compress_type != zipfile.ZIP_STORED:
                raise ValueError(f"{zip_path}: member {info.filename} is compressed; "
                                 "fairseq needs stored (uncompressed) members")
            raw.seek(info.header_offset)
            fields = _LOCAL_HEADER.unpack(raw.read(_LOCAL_HEADER.size))
            if fields[0] != _LOCAL_MAGIC:
                raise ValueError(f"{zip_path}: bad local header for {info.filename}")
            name_len, extra_len = fields[9], fields[10]
            offset = info.header_offset + _LOCAL_HEADER.size + name_len + extra_len
            raw.seek(offset)
            if raw.read(len(NPY_MAGIC)) != NPY_MAGIC:
                raise ValueError(f"{zip_path}: member {info.filename} is not a .npy array")
            spans[Path(info.filename).stem] = (offset, info.file_size)
    return spans

