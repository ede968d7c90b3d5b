"""The ids ``hri_person_manager`` gives anonymous persons, so that this package's own
persons and a person manager started later name the same face's person alike.

``hri_person_manager`` names the person of a face without a known person
``anonymous_person_`` followed by five letters from the face id's hash: libstdc++'s
``std::hash<std::string>`` (64-bit MurmurHash2 with the seed ``0xc70f6907``), five times
the letter of its last decimal digit (``a``-``j``), dividing by ten each time.
"""

from __future__ import annotations

import functools

ANONYMOUS_PREFIX = "anonymous_person_"
_MASK = (1 << 64) - 1
_MUL = 0xC6A4A7935BD1E995
_SEED = 0xC70F6907


def _shift_mix(v: int) -> int:
    return v ^ (v >> 47)


def std_hash(text: str) -> int:
    """libstdc++'s ``std::hash<std::string>`` of ``text`` (UTF-8 bytes) on a 64-bit
    machine."""
    data = text.encode("utf-8")
    length = len(data)
    aligned = length & ~7
    h = (_SEED ^ ((length * _MUL) & _MASK)) & _MASK
    for i in range(0, aligned, 8):
        k = int.from_bytes(data[i:i + 8], "little")
        k = (_shift_mix((k * _MUL) & _MASK) * _MUL) & _MASK
        h = ((h ^ k) * _MUL) & _MASK
    if length & 7:
        k = int.from_bytes(data[aligned:], "little")
        h = ((h ^ k) * _MUL) & _MASK
    h = (_shift_mix(h) * _MUL) & _MASK
    return _shift_mix(h)


@functools.lru_cache(maxsize=4096)
def anonymous_person_id(face_id: str, length: int = 5) -> str:
    """The anonymous person ``hri_person_manager`` makes for a lone face ``face_id``."""
    h = std_hash(face_id)
    letters = []
    for _ in range(length):
        letters.append("abcdefghijklmnopqrstuvwxyz"[h % 10])
        h //= 10
    return ANONYMOUS_PREFIX + "".join(letters)
