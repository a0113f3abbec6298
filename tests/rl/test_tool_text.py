"""Tool calls parsed from a turn's text, and the environment's text appended after a turn, checked
against the real SmolLM2 chat template."""

from __future__ import annotations

import json

import pytest

from payoff.models.tool_text import parse_tool_calls, render_opening, render_replies, template_renders_tools
from tests.rl.toy import tokenizer

CALC = '<tool_call>\n{"name": "calculator", "arguments": {"expression": "3 + 4"}}\n</tool_call>'


@pytest.mark.parametrize(("text", "content", "calls"), [
    ("The answer is 7", "The answer is 7", []),
    (CALC, None, [("calculator", {"expression": "3 + 4"})]),
    ("Let me add.\n" + CALC, "Let me add.", [("calculator", {"expression": "3 + 4"})]),
    (CALC + CALC.replace("3 + 4", "5 * 6"), None, [("calculator", {"expression": "3 + 4"}), ("calculator", {"expression": "5 * 6"})]),
    ('<tool_call>{"name": "f", "arguments": "{\\"x\\": 1}"}</tool_call>', None, [("f", {"x": 1})]),  # arguments given encoded
    ("<tool_call>not json</tool_call>", "<tool_call>not json</tool_call>", []),  # kept as written, not a call
    ('<tool_call>{"arguments": {}}</tool_call>', '<tool_call>{"arguments": {}}</tool_call>', []),  # no name
    ('<tool_call>{"name": "f", "arguments": [1]}</tool_call>', '<tool_call>{"name": "f", "arguments": [1]}</tool_call>', []),
    ('<tool_call>{"name": "f", "arguments": {"x": 1}}', '<tool_call>{"name": "f", "arguments": {"x": 1}}', []),  # never closed
])
def test_parse_tool_calls(text: str, content: str | None, calls: list) -> None:
    message = parse_tool_calls(text, turn=2)
    assert message["role"] == "assistant"
    assert message["content"] == content
    got = [(c["function"]["name"], json.loads(c["function"]["arguments"])) for c in message.get("tool_calls", [])]
    assert got == calls
    assert [c["id"] for c in message.get("tool_calls", [])] == [f"call_2_{k}" for k in range(len(calls))]


def test_tools_go_into_the_system_message_when_the_template_cannot_render_them() -> None:
    tok = tokenizer()
    assert not template_renders_tools(tok)  # SmolLM2's template ignores `tools`
    tools = [{"type": "function", "function": {"name": "calculator", "parameters": {"type": "object"}}}]
    text = render_opening(tok, [{"role": "user", "content": "2+2?"}], tools)
    assert text.startswith("<|im_start|>system\n") and '"name": "calculator"' in text and "<tool_call>" in text
    assert text.endswith("<|im_start|>assistant\n")
    assert render_opening(tok, [{"role": "user", "content": "2+2?"}], []) == tok.apply_chat_template(
        [{"role": "user", "content": "2+2?"}], tokenize=False, add_generation_prompt=True)


@pytest.mark.parametrize("finished", [True, False])
def test_appended_text_equals_the_template_rendering_of_the_whole_conversation(finished: bool) -> None:
    tok = tokenizer()
    opening = [{"role": "user", "content": "What is 3 + 4?"}]
    said = "I think 8"
    replies = [{"role": "user", "content": "That is not correct. Please try again."}]
    # The sampled turn: its text, and the end-of-turn token when sampling finished it.
    sampled = said + (tok.eos_token if finished else "")
    text = render_opening(tok, opening, []) + sampled + render_replies(tok, replies, finished)
    whole = tok.apply_chat_template(opening + [{"role": "assistant", "content": said}] + replies, tokenize=False,
                                    add_generation_prompt=True)
    assert text == whole
