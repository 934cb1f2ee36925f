#!/usr/bin/env python3
"""A second implementation of the keyed chunker (FORMAT.md "Keyed chunking",
"keyed-gear-aes128"), from its text alone, on other libraries (the blake3
module, AES from pyca/cryptography). It prints the test vectors that
store/src/chunker/vectors.rs checks, so the two implementations agree on
every cut.

It follows the text literally: the digest absorbs every byte of a chunk from
the chunk's start, and every candidate length is tested one at a time (the
AES calls are gathered per chunk only so that it runs in seconds).

    python3 -m venv /tmp/v && /tmp/v/bin/pip install blake3 cryptography
    /tmp/v/bin/python store/vectors/chunker.py
"""
import struct

import blake3
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

GEAR_CONTEXT = "robovault 2026-12 chunker gear table"
PRF_CONTEXT = "robovault 2026-12 chunker prf"
MASK64 = (1 << 64) - 1

KEY = bytes(range(0x00, 0x20))


def gear_table(key):
    table = blake3.blake3(key, derive_key_context=GEAR_CONTEXT).digest(length=2048)
    return list(struct.unpack("<256Q", table))


def prf_key(key):
    return blake3.blake3(key, derive_key_context=PRF_CONTEXT).digest()[:16]


def rounded_log2(n):
    """The integer nearest log2(n): k, or k + 1 when n >= 2^k * sqrt(2)."""
    k = n.bit_length() - 1
    return k + 1 if n * n >= 1 << (2 * k + 1) else k


def prf(aes_key, digests):
    """y for each digest: the first 8 bytes, little-endian, of AES-128 of
    the digest's 8 little-endian bytes followed by 8 zero bytes."""
    blocks = b"".join(struct.pack("<Q", h) + bytes(8) for h in digests)
    enc = Cipher(algorithms.AES(aes_key), modes.ECB()).encryptor()
    out = enc.update(blocks) + enc.finalize()
    return [struct.unpack_from("<Q", out, 16 * i)[0] for i in range(len(digests))]


def chunk_lengths(key, data, min_size, avg_size, max_size, normalization):
    gear = gear_table(key)
    aes_key = prf_key(key)
    bits = rounded_log2(avg_size)
    strict = 1 << (64 - (bits + normalization))
    loose = 1 << (64 - (bits - normalization))
    lengths = []
    offset = 0
    while offset < len(data):
        remaining = len(data) - offset
        if remaining <= min_size:
            lengths.append(remaining)
            break
        end = min(remaining, max_size)
        # digests[L] is the digest after the chunk's first L bytes.
        h = 0
        candidates = []
        for i in range(end):
            h = ((h << 1) + gear[data[offset + i]]) & MASK64
            length = i + 1
            if min_size <= length < max_size:
                candidates.append((length, h))
        cut = end
        ys = prf(aes_key, [h for _, h in candidates])
        for (length, _), y in zip(candidates, ys):
            if y < (strict if length < avg_size else loose):
                cut = length
                break
        lengths.append(cut)
        offset += cut
    return lengths


def xof(text, n):
    return blake3.blake3(text).digest(length=n)


def rust_list(name, values):
    return f"const {name}: &[usize] = &{values};"


def main():
    gear = gear_table(KEY)
    aes_key = prf_key(KEY)
    print(f"// gear[0] = {gear[0]:#018x}, gear[1] = {gear[1]:#018x}, gear[255] = {gear[255]:#018x}")
    print(f"// prf key = {aes_key.hex()}")
    print(f"// y(h = 0) = {prf(aes_key, [0])[0]:#018x}, y(h = gear[0]) = {prf(aes_key, [gear[0]])[0]:#018x}")
    random = xof(b"robovault chunker vector", 300000)
    print(rust_list("RANDOM_N1", chunk_lengths(KEY, random, 4096, 16384, 65536, 1)))
    print(rust_list("RANDOM_N0", chunk_lengths(KEY, random, 4096, 16384, 65536, 0)))
    print(rust_list("RANDOM_N3_ODD", chunk_lengths(KEY, random, 1000, 3000, 9999, 3)))
    mixed = bytes(100000) + random[:100000] + bytes(range(256)) * 300
    print(rust_list("MIXED_N2", chunk_lengths(KEY, mixed, 4096, 16384, 65536, 2)))


if __name__ == "__main__":
    main()
