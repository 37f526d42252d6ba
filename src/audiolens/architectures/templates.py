"""Chat templates the families render prompts with when a checkpoint ships none of its own.

Example:
    >>> "<|im_start|>" in chatml_template("<audio>")
    True
"""

from __future__ import annotations


def chatml_template(audio_markup: str, system: str | None = "You are a helpful assistant.") -> str:
    """A ChatML template (Qwen families) that writes ``audio_markup`` for each audio item.

    ``audio_markup`` may use ``{{ audio_count.value }}`` (1 for the first clip). ``system``
    None writes no system turn; ``""`` writes an empty one (as Qwen3-ASR does).
    """
    system_turn = (
        "{% if loop.first and message['role'] != 'system' %}"
        f"<|im_start|>system\n{system}<|im_end|>\n"
        "{% endif %}"
    ) if system is not None else ""
    return (
        "{% set audio_count = namespace(value=0) %}"
        "{% for message in messages %}"
        f"{system_turn}"
        "<|im_start|>{{ message['role'] }}\n"
        "{% if message['content'] is string %}"
        "{{ message['content'] }}<|im_end|>\n"
        "{% else %}"
        "{% for content in message['content'] %}"
        "{% if content['type'] == 'audio' or 'audio' in content or 'audio_url' in content %}"
        "{% set audio_count.value = audio_count.value + 1 %}"
        f"{audio_markup}"
        "{% elif 'text' in content %}"
        "{{ content['text'] }}"
        "{% endif %}"
        "{% endfor %}"
        "<|im_end|>\n"
        "{% endif %}"
        "{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
