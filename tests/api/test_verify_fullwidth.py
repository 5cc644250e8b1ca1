"""A coupon code typed with a Chinese input method in full-width mode (７ＮＧＨ…, a full-width dash)
is the same code: the merchant's verification used to answer 本店没有这个券码 (and count it towards
the pause for wrong codes) for a code the shop had issued."""

from __future__ import annotations

from tests.api.test_merchant_access import VERIFY, post, start, two_merchants_with_a_code

FULL = {chr(c): chr(c + 0xFEE0) for c in range(0x21, 0x7F)}  # ASCII → its full-width form


async def test_a_full_width_code_is_verified(service_factory, sqlite_url, fake_api):
    api = await start(service_factory, sqlite_url, fake_api)
    _, _, _, token_b, code = await two_merchants_with_a_code(api)
    typed = "".join(FULL[c] for c in code[:4]) + "－" + "".join(FULL[c] for c in code[4:].lower())
    status, used, _ = await post(api, VERIFY, {"code": typed}, token_b)
    assert status == 200 and used["status"] == "used" and used["code"] == code, used
