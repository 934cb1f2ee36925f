#!/usr/bin/env python3
"""A second implementation of FORMAT.md's encryption, from its text alone,
on other libraries (libsodium through PyNaCl, the blake3 module,
argon2-cffi). It prints the test vectors that store/src/crypto/vectors.rs
checks, so the two implementations agree byte for byte.

    python3 -m venv /tmp/v && /tmp/v/bin/pip install blake3 pynacl argon2-cffi
    /tmp/v/bin/python store/vectors/encryption.py
"""
import struct

import argon2.low_level as argon2
import blake3
from nacl.bindings import crypto_aead_xchacha20poly1305_ietf_encrypt as xseal

REPO = bytes(range(0x00, 0x20))
DATA1 = bytes(range(0x20, 0x40))
ID = bytes(range(0x40, 0x60))
CHUNKER = bytes(range(0x60, 0x80))
NONCE = bytes(range(0x80, 0x98))


def derive(context, key):
    return blake3.blake3(key, derive_key_context=context).digest()


def keyed(key, data):
    return blake3.blake3(data, key=key).digest()


def padme(n):
    if n < 2:
        return n
    e = n.bit_length() - 1
    s = e.bit_length()
    mask = (1 << (e - s)) - 1
    return (n + mask) & ~mask


def pad(data):
    out = data + b"\x80"
    return out + b"\x00" * (padme(len(out)) - len(out))


def ad(generation, purpose, name):
    return (b"robovault" + bytes([2]) + REPO + struct.pack("<I", generation)
            + bytes([purpose]) + struct.pack("<I", len(name)) + name)


def seal(key, nonce, assoc, plaintext):
    return nonce + xseal(plaintext, assoc, nonce, key)


def show(name, value):
    print(f"{name} = {value.hex()}")


aead1 = derive("robovault 2026-12 object aead", DATA1)
blob_id_key = derive("robovault 2026-12 blob id", ID)
show("blob_id_key", blob_id_key)
show("object_aead_key_1", aead1)

blob = b"robovault test vector blob"
blob_id = keyed(blob_id_key, blob)
show("blob_id", blob_id)
show("sealed_data_blob", seal(aead1, NONCE, ad(1, 1, blob_id), pad(blob)))

snapshot = b'{"version":2,"test":"vector"}\n'
snapshot_id = keyed(derive("robovault 2026-12 snapshot id", ID), snapshot)
show("snapshot_id", snapshot_id)
sealed = seal(aead1, NONCE, ad(1, 4, snapshot_id), pad(snapshot))
show("sealed_snapshot_object", b"RVE2" + bytes([4]) + struct.pack("<I", 1) + sealed)

show("config_mac", keyed(derive("robovault 2026-12 config mac", ID), b"config bytes"))
show("object_name", keyed(derive("robovault 2026-12 object name", ID), b"seed")[:16])

# A key file's secrets, with deliberately tiny Argon2id costs.
password = b"correct horse battery staple"
salt = bytes(range(0xA0, 0xC0))
key_id = bytes(range(0xC0, 0xE0))
n1, n2 = bytes(range(0xE0, 0xF8)), bytes(range(0x30, 0x48))
master = argon2.hash_secret_raw(password, salt, time_cost=1, memory_cost=64, parallelism=1,
                                hash_len=32, type=argon2.Type.ID, version=19)
show("kdf_output", master)
wrap = derive("robovault 2026-12 key wrap", master)
show("key_commitment", derive("robovault 2026-12 key commitment", master))
payload = bytes([1]) + struct.pack("<I", 1) + struct.pack("<I", 1) + DATA1 + ID + CHUNKER
show("key_payload", seal(wrap, n1, ad(0, 8, key_id), pad(payload)))
label = b'{"host":"vector-host","user":"vector-user","created":"2026-12-01T00:00:00Z"}'
show("key_label", seal(derive("robovault 2026-12 key label", ID), n2, ad(0, 9, key_id), pad(label)))

# A stream of 2500 bytes in segments of 1024: two full ones and a last of 452.
data = bytes(i % 251 for i in range(2500))
base = ad(1, 7, b"index-vector")
out = b"RVS2" + struct.pack("<I", 1) + struct.pack("<I", 1024)
for k, at in enumerate(range(0, len(data), 1024)):
    segment = data[at:at + 1024]
    last = at + 1024 >= len(data)
    out += seal(aead1, bytes([k]) * 24, base + struct.pack("<Q", k) + bytes([last]), segment)
show("stream_blake3", blake3.blake3(out).digest())
print(f"stream_len = {len(out)}")
