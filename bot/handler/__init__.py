"""The message handler: middlewares, router, conversation state, in the spirit of aiogram 3."""
