"""The demo model's chat format: Granite 3.x role markers, with assistant turns marked for assistant-only loss.

`{% generation %}...{% endgeneration %}` is what makes `apply_chat_template(..., return_assistant_tokens_mask=True)`
return a mask; the end-of-text token after an answer sits inside it, so the model learns where to stop.
"""

from __future__ import annotations

END_OF_TEXT = "<|end_of_text|>"
START_OF_ROLE = "<|start_of_role|>"
END_OF_ROLE = "<|end_of_role|>"
PAD = "<|pad|>"
SPECIAL_TOKENS = (END_OF_TEXT, START_OF_ROLE, END_OF_ROLE, PAD)  # ids 0..3, in this order

CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{%- if message['role'] == 'assistant' %}"
    "{{- '<|start_of_role|>assistant<|end_of_role|>' }}"
    "{%- generation %}{{- message['content'] + '<|end_of_text|>' }}{%- endgeneration %}"
    "{{- '\\n' }}"
    "{%- else %}"
    "{{- '<|start_of_role|>' + message['role'] + '<|end_of_role|>' + message['content'] + '<|end_of_text|>\\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|start_of_role|>assistant<|end_of_role|>' }}{%- endif %}"
)


def marks_assistant_turns(template: str | None) -> bool:
    """Whether a chat template can return the assistant mask by itself."""
    return template is not None and "{% generation %}" in template.replace("{%-", "{%").replace("-%}", "%}")
