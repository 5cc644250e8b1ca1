"""Knowledge base: the community's answers (YAML content) and retrieval over them.

Knows nothing of WeChat or the database; ``knowledge.base.KnowledgeBase`` is the entry point.
"""
