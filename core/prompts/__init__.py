"""Phase prompts (DESIGN §2, §4) in English and Simplified Chinese, each ending with a machine-readable block."""

from always_on.core.prompts.builder import build_prompt, templates
from always_on.core.prompts.context import (
    CONTEXT_FENCE,
    LANGUAGES,
    PHASE_TOOLS,
    TOOL_DISCOVERY_PLAN,
    TOOL_READ_CHAT_HISTORY,
    TOOL_REPORT,
    PromptContext,
    context_data,
    normalize_language,
    parse_context_block,
    render_context_block,
)

__all__ = [
    "CONTEXT_FENCE",
    "LANGUAGES",
    "PHASE_TOOLS",
    "TOOL_DISCOVERY_PLAN",
    "TOOL_READ_CHAT_HISTORY",
    "TOOL_REPORT",
    "PromptContext",
    "build_prompt",
    "context_data",
    "normalize_language",
    "parse_context_block",
    "render_context_block",
    "templates",
]
