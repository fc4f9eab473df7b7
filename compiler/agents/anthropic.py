"""The anthropic backend: the Messages API tool-use loop, every tool call run in the sandbox.

The loop runs on the host; the model sees only what the tools return (after
redaction). The stable prefix — tools, system prompt, the spec — carries cache
breakpoints, so builds of one spec for many deployments pay for it once; a
moving breakpoint on the newest message keeps each turn's history cached.
Rate limits and overload are retried by the SDK with backoff (``max_retries``).
"""

from __future__ import annotations

import os
from typing import Any

import anthropic

from compiler.deployment import AgentConfig
from compiler.errors import AgentError, EnvironmentError_
from compiler.sandbox import Sandbox

from .base import AgentResult, Budget, Checker, Task, Usage
from .tools import ToolBox, tool_definitions
from .transcript import Transcript

MAX_OUTPUT_TOKENS = 16_000
MAX_NUDGES = 2
EPHEMERAL = {"type": "ephemeral"}
NUDGE = ("You stopped without calling submit_integration. Finish the work and call "
         "submit_integration, or explain in its summary what could not be done.")


def make_client(config: AgentConfig) -> anthropic.Anthropic:
    """An SDK client from the config and the environment (ANTHROPIC_API_KEY, _BASE_URL)."""
    key = os.environ.get("ANTHROPIC_API_KEY")
    if not key:
        raise EnvironmentError_("ANTHROPIC_API_KEY is not set; the anthropic agent needs it "
                                "(or use --agent reference to build offline)")
    base_url = config.base_url or os.environ.get("ANTHROPIC_BASE_URL") or None
    return anthropic.Anthropic(api_key=key, base_url=base_url, max_retries=config.max_retries,
                               timeout=600.0)


class AnthropicAgent:
    """A model works in the sandbox through bash, the text editor and submit_integration."""

    name = "anthropic"

    def __init__(self, config: AgentConfig, client: anthropic.Anthropic | None = None) -> None:
        self.config = config
        self.model: str | None = config.model
        self._client = client

    @property
    def client(self) -> anthropic.Anthropic:
        """The SDK client (made on first use so the key is only needed when used)."""
        if self._client is None:
            self._client = make_client(self.config)
        return self._client

    def run(self, task: Task, sandbox: Sandbox, budget: Budget, transcript: Transcript,
            check: Checker) -> AgentResult:
        """Loop until a submission is accepted, a budget runs out or the API fails."""
        usage = Usage()
        tools = ToolBox(sandbox, transcript, task.redactor, check, usage, self.config.max_repairs,
                        exec_timeout=task.deployment.sandbox.exec_timeout)
        definitions = tool_definitions()
        definitions[-1] = {**definitions[-1], "cache_control": EPHEMERAL}
        system = [{"type": "text", "text": task.prompt.system, "cache_control": EPHEMERAL}]
        messages: list[dict[str, Any]] = [{"role": "user", "content": [
            {"type": "text", "text": task.prompt.spec, "cache_control": EPHEMERAL},
            {"type": "text", "text": task.prompt.deployment}]}]
        nudges = 0
        while True:
            budget.check(usage)
            response = self._turn(system, definitions, messages, usage, transcript)
            messages.append({"role": "assistant",
                             "content": [b.model_dump(exclude_none=True) for b in response.content]})
            calls = [b for b in response.content if b.type == "tool_use"]
            if not calls:
                if response.stop_reason == "refusal":
                    raise AgentError("the model refused the task")
                nudges += 1
                if nudges > MAX_NUDGES:
                    raise AgentError("the model stopped without submitting the integration")
                messages.append({"role": "user", "content": [{"type": "text", "text": NUDGE}]})
                continue
            results = []
            for call in calls:
                out = tools.call(call.name, dict(call.input), call.id)
                results.append({"type": "tool_result", "tool_use_id": call.id,
                                "content": out.text, "is_error": out.is_error})
            if tools.accepted is not None:
                return AgentResult(tools.accepted, usage)
            if tools.out_of_attempts:
                raise AgentError(f"submission rejected {tools.submissions} times; last errors:\n"
                                 + "\n".join(f"- {e}" for e in tools.last_errors))
            messages.append({"role": "user", "content": results})

    def _turn(self, system: list[dict[str, Any]], tools: list[dict[str, Any]],
              messages: list[dict[str, Any]], usage: Usage, transcript: Transcript) -> Any:
        _move_breakpoint(messages)
        try:
            response = self.client.messages.create(
                model=self.config.model, max_tokens=MAX_OUTPUT_TOKENS, system=system,  # type: ignore[arg-type]
                tools=tools, messages=messages)  # type: ignore[arg-type]
        except anthropic.AuthenticationError as exc:
            raise AgentError("the Anthropic API rejected the key: check ANTHROPIC_API_KEY") from exc
        except anthropic.RateLimitError as exc:
            raise AgentError(f"rate limited by the Anthropic API after {self.config.max_retries} "
                             "retries; try again later or lower -j") from exc
        except anthropic.APIConnectionError as exc:
            raise AgentError(f"could not reach the Anthropic API at {self.client.base_url}: "
                             f"{exc.__cause__ or exc}") from exc
        except anthropic.APIStatusError as exc:
            raise AgentError(f"the Anthropic API failed with HTTP {exc.status_code}: "
                             f"{_message(exc)}") from exc
        u = response.usage
        usage.turns += 1
        usage.input_tokens += u.input_tokens
        usage.output_tokens += u.output_tokens
        usage.cache_creation_input_tokens += u.cache_creation_input_tokens or 0
        usage.cache_read_input_tokens += u.cache_read_input_tokens or 0
        transcript.event("model", turn=usage.turns, model=response.model,
                         stop_reason=response.stop_reason,
                         content=[b.model_dump(exclude_none=True) for b in response.content],
                         usage=u.model_dump(exclude_none=True))
        return response


def _move_breakpoint(messages: list[dict[str, Any]]) -> None:
    """Keep one cache breakpoint on the newest user message (besides the spec's)."""
    for message in messages[1:]:
        if message["role"] == "user":
            for block in message["content"]:
                block.pop("cache_control", None)
    if len(messages) > 1 and messages[-1]["role"] == "user":
        messages[-1]["content"][-1]["cache_control"] = EPHEMERAL


def _message(exc: anthropic.APIStatusError) -> str:
    body = exc.body if isinstance(exc.body, dict) else {}
    error = body.get("error")
    return str(error.get("message") if isinstance(error, dict) else exc.message)
