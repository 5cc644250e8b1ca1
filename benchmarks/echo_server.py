"""A minimal aiohttp + wechatpy echo server in safe mode: the baseline for the endpoint benchmark.

It checks the signature, decrypts, parses with wechatpy and answers the text back, encrypted —
the least any 公众号 server must do, with no storage and no dedup.
"""

from __future__ import annotations

import argparse

from aiohttp import web
from wechatpy import parse_message
from wechatpy.crypto import WeChatCrypto
from wechatpy.exceptions import InvalidAppIdException, InvalidSignatureException
from wechatpy.replies import TextReply
from wechatpy.utils import check_signature


def make_app(token: str, aes_key: str, appid: str) -> web.Application:
    crypto = WeChatCrypto(token, aes_key, appid)

    async def handle(request: web.Request) -> web.Response:
        q = request.query
        try:
            check_signature(token, q["signature"], q["timestamp"], q["nonce"])
            xml = crypto.decrypt_message(await request.text(), q["msg_signature"], q["timestamp"], q["nonce"])
        except (KeyError, InvalidSignatureException, InvalidAppIdException):
            return web.Response(status=403)
        msg = parse_message(xml)
        reply = TextReply(content=getattr(msg, "content", "success"), message=msg)
        return web.Response(text=crypto.encrypt_message(reply.render(), q["nonce"], q["timestamp"]))

    app = web.Application()
    app.router.add_post("/wechat", handle)
    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--aes-key", required=True)
    parser.add_argument("--appid", required=True)
    args = parser.parse_args()
    web.run_app(make_app(args.token, args.aes_key, args.appid), host="127.0.0.1", port=args.port, print=None,
                access_log=None)


if __name__ == "__main__":
    main()
