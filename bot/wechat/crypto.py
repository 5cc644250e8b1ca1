"""Signatures and message encryption for the 公众号 server protocol (plaintext, compatible, safe).

The AES envelope is opened and sealed as wechatpy's ``PrpCrypto`` does it (checked against it in
the tests), each key's cipher set up once; signatures are computed here so they can be compared in
constant time, and a previous EncodingAESKey is tried after the current one so a key rotation loses
no message. A reply is encrypted with the key that decrypted its request.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import struct
import time
from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes


class CryptoError(Exception):
    """The payload cannot be decrypted or does not belong to this account."""


class _WrongAppId(Exception):
    """The payload decrypts, for another AppID."""


def signature(*parts: str) -> str:
    """WeChat's SHA-1 over the sorted, concatenated parts."""
    return hashlib.sha1("".join(sorted(parts)).encode("utf-8")).hexdigest()


def signature_ok(expected: str, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(expected.encode(), (given or "").encode())


@dataclass(frozen=True)
class Decrypted:
    xml: str
    key_index: int  # 0 = current key, 1 = previous key


class Codec:
    """Everything that needs the Token, the AppID and the EncodingAESKey(s)."""

    def __init__(self, token: str, appid: str, aes_key: str = "", previous_aes_key: str = "") -> None:
        self.token = token
        self.appid = appid
        # Requests are decrypted and replies encrypted here, as wechatpy's PrpCrypto does it
        # (AES-256-CBC, the IV the key's first 16 bytes, 16 random bytes, the length, the text,
        # the AppID, padding to 32 bytes), with each key's cipher set up once instead of per message.
        self._ciphers = [_cbc(_key(k)) for k in (aes_key, previous_aes_key) if k]
        self._appid = appid.encode("utf-8")

    @property
    def can_decrypt(self) -> bool:
        return bool(self._ciphers)

    def check(self, sig: str | None, timestamp: str, nonce: str, *extra: str) -> bool:
        return signature_ok(signature(self.token, timestamp, nonce, *extra), sig)

    def decrypt(self, encrypt: str, msg_signature: str | None, timestamp: str, nonce: str) -> Decrypted:
        """Check ``msg_signature`` and decrypt with the current key, then the previous one."""
        if not self.check(msg_signature, timestamp, nonce, encrypt):
            raise CryptoError("bad msg_signature")
        if not self._ciphers:
            raise CryptoError("encrypted message but no EncodingAESKey configured")
        wrong_appid = False
        for index, cipher in enumerate(self._ciphers):
            try:
                return Decrypted(self._decrypt(cipher, encrypt), index)
            except _WrongAppId:
                wrong_appid = True
            except Exception:  # bad base64, padding, length or encoding: try the next key
                continue
        raise CryptoError("payload for another appid" if wrong_appid else "payload does not decrypt")

    def _decrypt(self, cipher: Cipher[modes.CBC], encrypt: str) -> str:
        """wechatpy's ``PrpCrypto.decrypt``, step for step (the same text, the same failures)."""
        decryptor = cipher.decryptor()
        plain = decryptor.update(base64.b64decode(encrypt.encode("utf-8"))) + decryptor.finalize()
        content = plain[16 : -plain[-1]]
        length = struct.unpack(">I", content[:4])[0]
        xml = content[4 : length + 4].decode("utf-8")
        if content[length + 4 :].decode("utf-8") != self.appid:
            raise _WrongAppId
        return xml

    def encrypt(
        self, xml: str, key_index: int = 0, timestamp: str | None = None, nonce: str | None = None
    ) -> str:
        """The safe-mode envelope for a reply."""
        encrypt = self._encrypt(xml, key_index)
        timestamp = timestamp or str(int(time.time()))
        nonce = nonce or secrets.token_hex(8)
        sig = signature(self.token, timestamp, nonce, encrypt)
        return (
            f"<xml><Encrypt><![CDATA[{encrypt}]]></Encrypt>"
            f"<MsgSignature><![CDATA[{sig}]]></MsgSignature>"
            f"<TimeStamp>{timestamp}</TimeStamp><Nonce><![CDATA[{nonce}]]></Nonce></xml>"
        )

    def _encrypt(self, xml: str, key_index: int) -> str:
        text = xml.encode("utf-8")
        plain = b"".join((os.urandom(16), struct.pack(">I", len(text)), text, self._appid))
        pad = 32 - len(plain) % 32
        encryptor = self._ciphers[min(key_index, len(self._ciphers) - 1)].encryptor()
        return base64.b64encode(encryptor.update(plain + bytes((pad,)) * pad) + encryptor.finalize()).decode("ascii")


def _cbc(key: bytes) -> Cipher[modes.CBC]:
    return Cipher(algorithms.AES(key), modes.CBC(key[:16]))


def _key(aes_key: str) -> bytes:
    raw = base64.b64decode(aes_key + "=")
    if len(raw) != 32:
        raise ValueError("EncodingAESKey must decode to 32 bytes")
    return raw
