"""Tool calls as text: what a policy writes and what it reads, in the Hermes format.

A model that calls tools writes, inside its turn, one block per call::

    <tool_call>
    {"name": "calculator", "arguments": {"expression": "3 + 4"}}
    </tool_call>

`parse_tool_calls` turns a sampled turn into an OpenAI assistant message: the text outside the
blocks is its ``content``, each well-formed block one entry of ``tool_calls`` (ids
``call_<turn>_<k>``, ``arguments`` a JSON string). A block that is not JSON, or names no
function, is left in ``content`` as written: the environment then sees a plain answer, never a
call the model did not make.

The tool schemas reach the policy through the tokenizer's chat template when it renders
``tools`` (Qwen, Llama 3.1, Hermes templates do); otherwise `tools_system_text` writes them into
the system message in the Hermes wording (`render_opening`).
"""

from __future__ import annotations

import json
import re
from typing import Any

CALL = re.compile(r"<tool_call>\s*(.*?)\s*</tool_call>", re.DOTALL)
OPEN_CALL = re.compile(r"<tool_call>\s*(\{.*)\Z", re.DOTALL)  # a last block the turn ended inside

Message = dict[str, Any]


def parse_tool_calls(text: str, turn: int = 0) -> Message:
    """The assistant message for one sampled turn's ``text`` (``turn`` numbers the call ids)."""
    calls: list[dict[str, Any]] = []
    kept: list[str] = []
    last = 0
    for match in CALL.finditer(text):
        call = _call(match.group(1), f"call_{turn}_{len(calls)}")
        if call is None:
            continue  # stays in the content as written
        kept.append(text[last:match.start()])
        last = match.end()
        calls.append(call)
    kept.append(text[last:])
    content = "".join(kept).strip()
    message: Message = {"role": "assistant", "content": content if content or not calls else None}
    if calls:
        message["tool_calls"] = calls
    return message


def _call(body: str, call_id: str) -> dict[str, Any] | None:
    try:
        parsed = json.loads(body)
    except ValueError:
        return None
    if not isinstance(parsed, dict) or not isinstance(parsed.get("name"), str) or not parsed["name"]:
        return None
    arguments = parsed.get("arguments", {})
    if isinstance(arguments, str):  # some models write the arguments already encoded
        try:
            arguments = json.loads(arguments)
        except ValueError:
            return None
    if not isinstance(arguments, dict):
        return None
    return {"id": call_id, "type": "function", "function": {"name": parsed["name"], "arguments": json.dumps(arguments)}}


def template_renders_tools(tokenizer: Any) -> bool:
    """Whether the tokenizer's chat template reads a ``tools`` argument."""
    template = getattr(tokenizer, "chat_template", None)
    return isinstance(template, str) and "tools" in template


def tools_system_text(tools: list[dict[str, Any]]) -> str:
    """The Hermes function-calling system prompt for ``tools`` (OpenAI tool definitions)."""
    signatures = "\n".join(json.dumps(tool) for tool in tools)
    return ("You may call functions. Their signatures are within <tools></tools> XML tags:\n"
            f"<tools>\n{signatures}\n</tools>\n"
            "To call one, write a JSON object with the function's name and arguments within <tool_call></tool_call> XML tags:\n"
            '<tool_call>\n{"name": <function-name>, "arguments": <args-dict>}\n</tool_call>\n'
            "The result comes back in a tool message. When you have the answer, write it without a tool call.")


def with_tools_in_system(messages: list[Message], tools: list[dict[str, Any]]) -> list[Message]:
    """``messages`` with the Hermes tool text added to (or as) the system message."""
    if not tools:
        return list(messages)
    text = tools_system_text(tools)
    if messages and messages[0].get("role") == "system":
        first = dict(messages[0])
        first["content"] = f"{first.get('content') or ''}\n\n{text}".strip()
        return [first, *messages[1:]]
    return [{"role": "system", "content": text}, *messages]


def render_opening(tokenizer: Any, messages: list[Message], tools: list[dict[str, Any]], chat_template: bool = True) -> str:
    """The text of an episode's opening, ending where the policy's first turn begins."""
    if chat_template and getattr(tokenizer, "chat_template", None):
        if tools and template_renders_tools(tokenizer):
            return tokenizer.apply_chat_template(messages, tools=tools, tokenize=False, add_generation_prompt=True)
        return tokenizer.apply_chat_template(with_tools_in_system(messages, tools), tokenize=False, add_generation_prompt=True)
    return "\n".join(str(m.get("content") or "") for m in with_tools_in_system(messages, tools)) + "\n"


_PROBE = [{"role": "user", "content": "payoff-probe"}, {"role": "assistant", "content": "payoff-probe"}]


def render_replies(tokenizer: Any, replies: list[Message], turn_finished: bool, chat_template: bool = True) -> str:
    """The text the environment adds after a sampled turn: the end of that turn as the template
    writes it (the end-of-turn token when sampling was cut short, then what the template puts
    after it), the environment's ``replies`` (tool or user messages), and the next turn's opening.

    It is the difference of two renderings of a fixed probe conversation, with and without the
    replies, so the conversation itself is never re-rendered: the sampled ids stay as sampled."""
    if not (chat_template and getattr(tokenizer, "chat_template", None)):
        closing = "" if turn_finished else "\n"
        return closing + "".join(f"\n{m.get('content') or ''}\n" for m in replies)
    before = tokenizer.apply_chat_template(_PROBE, tokenize=False)
    after = tokenizer.apply_chat_template(_PROBE + [_renderable(m) for m in replies], tokenize=False, add_generation_prompt=True)
    if not after.startswith(before):
        raise ValueError("the chat template renders earlier messages differently once later ones follow; "
                         "episode contexts cannot be built by appending")
    # What the template writes after the probe's content: the end-of-turn token and its trailer.
    end = before[before.rindex("payoff-probe") + len("payoff-probe"):]
    eos = tokenizer.eos_token or ""
    if turn_finished and eos and eos in end:
        end = end[end.index(eos) + len(eos):]  # the sampled ids already end with the end-of-turn token
    return end + after[len(before):]


def _renderable(message: Message) -> Message:
    out = dict(message)
    if not isinstance(out.get("content"), str):
        out["content"] = "" if out.get("content") is None else json.dumps(out["content"])
    return out
