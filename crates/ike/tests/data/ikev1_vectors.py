#!/usr/bin/env python3
"""Independent IKEv1 (RFC 2409) key derivation, written from the RFC text with Python's hmac and
hashlib. Prints Rust constants for src/keys.rs tests:  python3 ikev1_vectors.py > ikev1_vectors.rs"""
import hashlib
import hmac


def prf(alg, key, data):
    return hmac.new(key, data, alg).digest()


ni = bytes(range(16))
nr = bytes(range(16, 48))
gxy = bytes(((i * 7 + 3) & 0xFF) for i in range(128))
cky_i = bytes([1, 2, 3, 4, 5, 6, 7, 8])
cky_r = bytes([0xA1, 0xB2, 0xC3, 0xD4, 0xE5, 0xF6, 0x07, 0x18])


def derive(alg, skeyid):
    d = prf(alg, skeyid, gxy + cky_i + cky_r + b"\x00")
    a = prf(alg, skeyid, d + gxy + cky_i + cky_r + b"\x01")
    e = prf(alg, skeyid, a + gxy + cky_i + cky_r + b"\x02")
    return d, a, e


def expand(alg, skeyid_e, n):
    if len(skeyid_e) >= n:
        return skeyid_e[:n]
    k = prf(alg, skeyid_e, b"\x00")
    out = k
    while len(out) < n:
        k = prf(alg, skeyid_e, k)
        out += k
    return out[:n]


def keymat(alg, skeyid_d, g, proto, spi, n):
    seed = g + bytes([proto]) + spi.to_bytes(4, "big") + ni + nr
    k = prf(alg, skeyid_d, seed)
    out = k
    while len(out) < n:
        k = prf(alg, skeyid_d, k + seed)
        out += k
    return out[:n]


def const(name, b):
    print(f'const {name}: &str = "{b.hex()}";')


s = prf(hashlib.sha1, b"labpsk123", ni + nr)
d, a, e = derive(hashlib.sha1, s)
const("PSK_SHA1_SKEYID", s)
const("PSK_SHA1_SKEYID_D", d)
const("PSK_SHA1_SKEYID_A", a)
const("PSK_SHA1_SKEYID_E", e)
const("PSK_SHA1_3DES_KEY", expand(hashlib.sha1, e, 24))
const("PSK_SHA1_KEYMAT_56", keymat(hashlib.sha1, d, b"", 3, 0x11223344, 56))
const("PSK_SHA1_KEYMAT_PFS_56", keymat(hashlib.sha1, d, gxy, 3, 0x11223344, 56))

s = prf(hashlib.sha256, ni + nr, gxy)
d, a, e = derive(hashlib.sha256, s)
const("SIG_SHA256_SKEYID", s)
const("SIG_SHA256_SKEYID_D", d)
const("SIG_SHA256_SKEYID_A", a)
const("SIG_SHA256_SKEYID_E", e)
const("SIG_SHA256_KEYMAT_72", keymat(hashlib.sha256, d, b"", 3, 0xDEADBEEF, 72))
iv0 = hashlib.sha256(gxy[:64] + gxy[64:]).digest()[:16]
const("SIG_SHA256_IV0", iv0)
const("SIG_SHA256_QM_IV", hashlib.sha256(iv0 + (0x01020304).to_bytes(4, "big")).digest()[:16])

s = prf(hashlib.md5, b"k", ni + nr)
d, a, e = derive(hashlib.md5, s)
const("PSK_MD5_AES256_KEY", expand(hashlib.md5, e, 32))
