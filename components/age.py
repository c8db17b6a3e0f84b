"""age X25519 identities and recipients from raw key bytes (bech32, as age encodes them).

An age identity is the 32-byte X25519 scalar in bech32 with the prefix `AGE-SECRET-KEY-`,
upper-cased; its recipient is the X25519 public key with the prefix `age`. The tests check this
against pyrage and the real sops binary.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_GENERATOR = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)


def _polymod(values: list[int]) -> int:
    check = 1
    for value in values:
        top = check >> 25
        check = (check & 0x1FFFFFF) << 5 ^ value
        for i, gen in enumerate(_GENERATOR):
            if (top >> i) & 1:
                check ^= gen
    return check


def _expand(hrp: str) -> list[int]:
    return [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]


def _convert(data: bytes | list[int], src: int, dst: int, pad: bool) -> list[int]:
    acc = bits = 0
    out: list[int] = []
    for value in data:
        acc = (acc << src) | value
        bits += src
        while bits >= dst:
            bits -= dst
            out.append((acc >> bits) & ((1 << dst) - 1))
    if pad and bits:
        out.append((acc << (dst - bits)) & ((1 << dst) - 1))
    elif not pad and (bits >= src or (acc << (dst - bits)) & ((1 << dst) - 1)):
        raise ValueError("invalid bech32 padding")
    return out


def bech32_encode(hrp: str, data: bytes) -> str:
    words = _convert(data, 8, 5, pad=True)
    checksum = _polymod(_expand(hrp) + words + [0] * 6) ^ 1
    words += [(checksum >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(_CHARSET[w] for w in words)


def bech32_decode(text: str) -> tuple[str, bytes]:
    text = text.strip().lower()
    hrp, _, rest = text.rpartition("1")
    words = [_CHARSET.index(c) for c in rest]
    if not hrp or len(words) < 6 or _polymod(_expand(hrp) + words) != 1:
        raise ValueError("not a valid bech32 string")
    return hrp, bytes(_convert(words[:-6], 5, 8, pad=False))


def identity_from_bytes(raw: bytes) -> str:
    """The age identity (AGE-SECRET-KEY-1…) of a 32-byte X25519 scalar."""
    if len(raw) != 32:
        raise ValueError(f"an age identity needs 32 bytes, got {len(raw)}")
    return bech32_encode("age-secret-key-", raw).upper()


def recipient_of(identity: str) -> str:
    """The public recipient (age1…) of an age identity."""
    hrp, raw = bech32_decode(identity)
    if hrp != "age-secret-key-" or len(raw) != 32:
        raise ValueError("not an age X25519 identity")
    public = X25519PrivateKey.from_private_bytes(raw).public_key().public_bytes_raw()
    return bech32_encode("age", public)
