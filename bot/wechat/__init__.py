"""The WeChat edge: endpoint, crypto, replies, the async API client, the outbox and a fake API server."""
