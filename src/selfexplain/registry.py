"""One way to register and look up named things: tasks, styles, backends and presets.

Every registry gives the same errors (a :class:`~selfexplain.errors.UserError` of one line that lists the known
names) and may hold *lazy* entries, ``"module:attribute"`` strings imported on first use, so that an optional
backend (vLLM) costs nothing until a run names it.  Help texts and the docs list the names and descriptions from
here, so they cannot fall behind the code.  Modelled on inseq's ``utils/registry.py`` and lm-evaluation-harness's
``api/registry.py``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable, Generic, Iterator, TypeVar

from .errors import UserError

T = TypeVar("T")


@dataclass
class _Entry(Generic[T]):
    value: T | None
    target: str | None  # "module:attribute", imported on first use
    description: str


class Registry(Generic[T]):
    """Named entries of one kind.

    Args:
        kind: what one entry is, for messages ("task", "style", "backend", "preset").
        hint: appended to the unknown-name message (how to name something not registered, e.g. a file path).
    """

    def __init__(self, kind: str, hint: str = "") -> None:
        self.kind = kind
        self.hint = hint
        self._entries: dict[str, _Entry[T]] = {}

    def add(self, name: str, value: T, description: str = "", *, replace: bool = False) -> T:
        """Register ``value`` under ``name``.

        Raises:
            UserError: ``name`` is taken and ``replace`` is false.
        """
        self._check_free(name, replace)
        self._entries[name] = _Entry(value, None, description)
        return value

    def add_lazy(self, name: str, target: str, description: str = "", *, replace: bool = False) -> None:
        """Register ``"module:attribute"``, imported when :meth:`get` first asks for ``name``."""
        self._check_free(name, replace)
        self._entries[name] = _Entry(None, target, description)

    def register(self, name: str, description: str = "", *, replace: bool = False) -> Callable[[T], T]:
        """Decorator form of :meth:`add`: ``@registry.register("name")``."""

        def wrap(value: T) -> T:
            return self.add(name, value, description, replace=replace)

        return wrap

    def get(self, name: str) -> T:
        """The entry named ``name``.

        Raises:
            UserError: no such name (the message lists the known ones).
        """
        entry = self._entries.get(name)
        if entry is None:
            raise UserError(f"unknown {self.kind} {name!r}; known {self.kind}s: {', '.join(self._entries)}{self.hint}")
        if entry.value is None and entry.target is not None:
            module, _, attribute = entry.target.partition(":")
            entry.value = getattr(importlib.import_module(module), attribute)
            entry.target = None
        return entry.value  # type: ignore[return-value]

    def remove(self, name: str) -> None:
        """Unregister ``name`` (a test's temporary entry)."""
        self._entries.pop(name, None)

    def names(self) -> list[str]:
        return list(self._entries)

    def description(self, name: str) -> str:
        return self._entries[name].description

    def describe(self) -> str:
        """``a (what a is), b, c (what c is)``: for help texts."""
        return ", ".join(f"{n} ({e.description})" if e.description else n for n, e in self._entries.items())

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def _check_free(self, name: str, replace: bool) -> None:
        if name in self._entries and not replace:
            raise UserError(f"{self.kind} {name!r} is already registered (replace=True replaces it)")
