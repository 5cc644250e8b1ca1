"""Passive replies: safe XML through wechatpy, and texts cut to WeChat's size limit."""

from __future__ import annotations

import re
import time

from wechatpy.replies import ArticlesReply, ImageReply

from bot.messages import Out

# WeChat accepts about 2048 UTF-8 bytes of text in one message; stay safely under it.
MAX_TEXT_BYTES = 2000
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffe\uffff]")
_BREAKS = ("\n\n", "\n", "。", "！", "？", "；", "，", " ")


def clean_text(text: str) -> str:
    """Remove characters XML 1.0 cannot carry."""
    return _CONTROL.sub("", text)


def cdata_safe(text: str) -> str:
    """Text that cannot close its CDATA section early: ``]]>`` is split across two sections."""
    return clean_text(text).replace("]]>", "]]]]><![CDATA[>")


def split_text(text: str, limit: int = MAX_TEXT_BYTES) -> list[str]:
    """Cut a long text into pieces of at most ``limit`` UTF-8 bytes, at the last natural break."""
    text = clean_text(text)
    pieces: list[str] = []
    while len(text.encode("utf-8")) > limit:
        # The longest prefix within the byte limit.
        cut = len(text.encode("utf-8")[:limit].decode("utf-8", errors="ignore"))
        window = text[:cut]
        best = -1
        for mark in _BREAKS:
            pos = window.rfind(mark)
            if pos >= cut // 2:
                best = pos + len(mark)
                break
        end = best if best > 0 else cut
        pieces.append(text[:end].rstrip())
        text = text[end:].lstrip()
    if text:
        pieces.append(text)
    return pieces or [""]


def fit(outs: list[Out]) -> list[Out]:
    """Split every over-long text into several messages that each fit."""
    fitted: list[Out] = []
    for out in outs:
        if out.kind == "text":
            fitted.extend(Out.text(piece) for piece in split_text(out.content) if piece)
        else:
            fitted.append(out)
    return fitted


def render(out: Out, *, to_user: str, from_user: str, create_time: int | None = None) -> str:
    """The passive-reply XML for one message."""
    when = create_time or int(time.time())
    reply: ImageReply | ArticlesReply
    if out.kind == "image":
        reply = ImageReply(target=to_user, source=from_user, time=when, media_id=out.media_id)
    elif out.kind == "news":
        articles = [{k: cdata_safe(v) for k, v in a.items()} for a in out.articles[:8]]
        reply = ArticlesReply(target=to_user, source=from_user, time=when, articles=articles)
    else:
        # Nearly every reply: the same XML wechatpy's TextReply renders, without building one.
        return (
            f"<xml>\n<MsgType><![CDATA[text]]></MsgType>\n<Content><![CDATA[{cdata_safe(out.content)}]]></Content>\n"
            f"<FromUserName><![CDATA[{from_user}]]></FromUserName>\n<ToUserName><![CDATA[{to_user}]]></ToUserName>\n"
            f"<CreateTime>{when}</CreateTime>\n</xml>"
        )
    return str(reply.render())
