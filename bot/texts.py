"""Resident-facing sentences used by the core (not by one flow). Plain, warm, short Chinese."""

ERROR = "抱歉，系统刚才开了个小差，请稍后再发一次。着急的事可以回复“转人工”。"
# The answer could not be stored (the database failed at that moment): the message is kept with its
# key and redone by the recovery, which sends the answer (or ABANDONED) — so no "send again" here,
# which would make a second effect when both the resend and the redo go through.
DELAYED = "收到了，系统这会儿有点忙，处理好后会在这里回复您，不用重发。着急的事可以回复“转人工”。"
ABANDONED = "抱歉，您刚才的消息没有处理完，麻烦您再发一次。"
UNSUPPORTED = "这条消息我暂时看不懂，您可以发文字告诉我需要什么帮助。"
