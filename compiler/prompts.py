"""The one jinja2 Environment: sandboxed, StrictUndefined, built once.

It renders skillc's own prompt templates (``templates/``) and anything a spec
supplies (``reference/*.j2``); a spec is untrusted input, so the environment is
an ``ImmutableSandboxedEnvironment`` for both.
"""

from __future__ import annotations

import functools
from typing import Any

import jinja2
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from .blocks import upsert_block
from .errors import UserError
from .resources import templates_dir


@functools.cache
def environment() -> ImmutableSandboxedEnvironment:
    """The shared environment."""
    env = ImmutableSandboxedEnvironment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters["upsert_block"] = upsert_block
    return env


def render(template: str, **context: Any) -> str:
    """Render one of skillc's templates by name."""
    return environment().get_template(template).render(**context)


def render_untrusted(source: str, where: str, **context: Any) -> str:
    """Render text a spec supplied; every failure is a located ``UserError``."""
    try:
        return environment().from_string(source).render(**context)
    except jinja2.TemplateSyntaxError as exc:
        raise UserError(f"{where}:{exc.lineno}: template syntax error: {exc.message}") from exc
    except jinja2.UndefinedError as exc:
        raise UserError(f"{where}: template uses an undefined value: {exc.message}") from exc
    except SecurityError as exc:
        raise UserError(f"{where}: template tried an unsafe operation: {exc}") from exc
    except (jinja2.TemplateError, ArithmeticError, TypeError, ValueError) as exc:
        raise UserError(f"{where}: template failed: {exc}") from exc


@functools.cache
def templates_digest() -> str:
    """The digest of the prompt templates folder (part of every build key)."""
    from registry.tree import scan

    return scan(templates_dir()).digest
