"""Domain logic in transactions; never imports the WeChat edge or the flows."""
