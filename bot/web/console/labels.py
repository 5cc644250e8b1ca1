"""Words the console shows for the service's codes: intents, who did something on a ticket, message
types, points reasons. Staff read Chinese; the codes stay in the database, the API and the logs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

# Short names for tags and charts (the registry's clarifying labels are questions to residents).
INTENT_NAMES = {
    "complaint": "反映问题",
    "coupon": "积分优惠券",
    "course_booking": "课程报名",
    "query": "办事咨询",
    "smalltalk": "闲聊",
    "handoff": "转人工",
    "fallback": "超出范围",
}
MESSAGE_TYPES = {
    "text": "文字", "image": "图片", "voice": "语音", "video": "视频", "shortvideo": "小视频",
    "location": "位置", "link": "链接", "file": "文件", "event": "事件",
}
EVENTS = {
    "subscribe": "关注公众号", "unsubscribe": "取消关注", "SCAN": "扫码", "CLICK": "点击菜单",
    "VIEW": "打开菜单链接", "LOCATION": "上报位置",
}
POINTS_REASONS = {
    "registration": "见面礼", "activity": "活动签到", "valid_report": "有效反映", "coupon": "兑换优惠券",
    "course": "报名课程", "refund": "退回积分", "adjust": "工作人员调整",
}
ACTORS = {"resident": "居民", "system": "系统"}
ACTOR_KINDS = {"session": "", "token": "接口 "}


def intent_name(code: str | None) -> str:
    if not code:
        return "（未识别）"
    return INTENT_NAMES.get(code, code)


def actor_name(actor: str | None) -> str:
    """``resident`` → 居民, ``system`` → 系统, ``session:zhang`` → zhang, ``token:ci`` → 接口 ci."""
    if not actor:
        return "—"
    if actor in ACTORS:
        return ACTORS[actor]
    kind, sep, name = actor.partition(":")
    if sep and kind in ACTOR_KINDS and name:
        return ACTOR_KINDS[kind] + name
    return actor


def message_kind(msg_type: str | None, event: str | None = None, payload: dict[str, Any] | None = None) -> str:
    """What a message without text was, in brackets: ``[图片]``, ``[关注公众号]``, ``[位置] 3号楼``."""
    if msg_type == "event" and event:
        return f"[{EVENTS.get(event, EVENTS.get(event.upper(), '事件'))}]"
    kind = f"[{MESSAGE_TYPES.get(msg_type or '', '消息')}]"
    detail = (payload or {}).get({"location": "Label", "link": "Title"}.get(msg_type or "", ""), "")
    return f"{kind} {str(detail)[:200]}" if detail else kind


def duration(start: datetime | None, end: datetime | None) -> str:
    """How long from ``start`` to ``end`` as people say it: 刚刚, 5分钟, 2小时10分钟, 3天."""
    if start is None or end is None:
        return ""
    minutes = int((end - start).total_seconds() // 60)
    if minutes < 1:
        return "不到1分钟"
    if minutes < 60:
        return f"{minutes}分钟"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}小时{minutes}分钟" if minutes else f"{hours}小时"
    return f"{hours // 24}天{hours % 24}小时" if hours % 24 else f"{hours // 24}天"
