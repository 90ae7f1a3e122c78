"""The one registry type every kind of plug-in uses.

A plug-in is an object (or a class) with a ``name`` attribute: an evidence source, a
container reader, a hash-set format, a picture signal, a provenance check, a generator
dialect, an export or report format. Its kind keeps one :class:`Registry` of them, filled
in one place, in the order that detection asks them::

    CONTAINERS = Registry[ContainerReader]("container reader", ArchiveError)
    CONTAINERS.register(ZipReader())

``register`` refuses a second plug-in of the same name (a :class:`ValueError`: a
programming error, found by the first import). ``get`` of an unknown name raises the
kind's own error (a :class:`~safeguard.errors.SafeguardError` subclass the person at the
keyboard sees) naming the registered ones. ``detect`` asks each plug-in's ``detect`` in
registration order and returns the first that accepts, or ``None``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """Plug-ins of one kind by name, in registration order; a duplicate name is an error.

    ``kind`` names the plug-ins in messages ("hash-set format"); ``error`` is the exception
    ``get`` raises for a name that is not registered (``LookupError`` when not given);
    ``missing`` words that message when the default ("no KIND named 'x' (one of a, b)")
    does not fit.
    """

    def __init__(
        self,
        kind: str,
        error: Callable[[str], Exception] = LookupError,
        items: Iterable[T] = (),
        missing: Callable[[str, list[str]], str] | None = None,
    ) -> None:
        self.kind = kind
        self._error = error
        self._missing = missing
        self._items: dict[str, T] = {}
        for item in items:
            self.register(item)

    @staticmethod
    def name_of(item: T) -> str:
        name = getattr(item, "name", None)
        if not isinstance(name, str) or not name:
            raise TypeError(f"a registered plug-in needs a name: {item!r}")
        return name

    def register(self, item: T) -> T:
        """Add ``item`` last; return it (so a class can be registered by decorator)."""
        name = self.name_of(item)
        if name in self._items:
            raise ValueError(f"{self.kind} {name!r} is registered already")
        self._items[name] = item
        return item

    def deregister(self, name: str) -> T:
        """Remove and return the plug-in ``name`` (tests; a plug-in swapped at run time)."""
        item = self.get(name)
        del self._items[name]
        return item

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            names = self.names()
            message = (self._missing(name, names) if self._missing else
                       f"no {self.kind} named {name!r} (one of {', '.join(names)})")
            raise self._error(message) from None

    def names(self) -> list[str]:
        return list(self._items)

    def detect(self, *args: Any, **kwargs: Any) -> T | None:
        """The first plug-in, in registration order, whose ``detect(*args)`` is true."""
        for item in self._items.values():
            if item.detect(*args, **kwargs):  # type: ignore[attr-defined]
                return item
        return None

    def __iter__(self) -> Iterator[T]:
        return iter(list(self._items.values()))

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"<registry of {self.kind}: {', '.join(self._items)}>"
