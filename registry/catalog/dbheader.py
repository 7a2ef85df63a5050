"""The main header of a DuckDB database file, and the one random value in it.

DuckDB writes a random 16-byte database identifier into the main header of files of storage version 67
(`v1.4.0`) and later (src/storage/single_file_block_manager.cpp). It salts encryption keys and has no use in an
unencrypted file; older storage versions write zeros there. Zeroing it (and recomputing the header checksum)
makes the same content give the same bytes: every data block already does.
"""

from __future__ import annotations

import struct
from pathlib import Path

STORAGE_NUMBERS = {"v1.4.0": 67}  # STORAGE_VERSION name -> the version number in the header
_HEADER_SIZE = 4096
_IDENTIFIER = slice(124, 140)
_MASK = (1 << 64) - 1


def zero_database_id(path: Path, storage_number: int) -> bool:
    """Zero the random database identifier of a closed file of `storage_number` and recompute the header
    checksum. Main header: checksum (8 bytes), "DUCK", version number, 4 flags, library version and git hash
    (32 each), encryption metadata (8), identifier (16), canary (8). False, untouched: not that layout."""
    with path.open("r+b") as f:
        header = bytearray(f.read(_HEADER_SIZE))
        if len(header) != _HEADER_SIZE or header[8:12] != b"DUCK" \
                or struct.unpack_from("<Q", header, 12)[0] != storage_number \
                or any(header[20:52]) or any(header[116:124]) \
                or struct.unpack_from("<Q", header, 0)[0] != _checksum(header[8:]):
            return False
        header[_IDENTIFIER] = bytes(_IDENTIFIER.stop - _IDENTIFIER.start)
        struct.pack_into("<Q", header, 0, _checksum(header[8:]))
        f.seek(0)
        f.write(header)
    return True



def _checksum(block: bytes | bytearray) -> int:
    """DuckDB's block checksum (src/common/checksum.cpp) of a length divisible by 8."""
    result = 5381
    for (word,) in struct.iter_unpack("<Q", block):
        result ^= (word * 0xBF58476D1CE4E5B9) & _MASK
    return result
