"""Resident-facing sentences used by the core (not by one flow). Plain, warm, short Chinese."""

ERROR = "抱歉，系统刚才开了个小差，请稍后再发一次。着急的事可以回复“转人工”。"
ABANDONED = "抱歉，您刚才的消息没有处理完，麻烦您再发一次。"
UNSUPPORTED = "这条消息我暂时看不懂，您可以发文字告诉我需要什么帮助。"
