"""rlinf.apps.agentic: Agentic: an LLM works over several turns with tools (code execution, search), rewarded at the end."""

__all__: list[str] = []
