"""Instance-attribute wrappers that know which object they belong to.

`Crew.copy()` and pydantic's deep copies duplicate an object's `__dict__`, wrappers included,
so a copy would call through a wrapper bound to the original. Each wrapper records the id of
the object it was made for; a copy fails that check and gets its own wrapper.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["owns", "set_owned"]

_OWNER = "__durable_crewai_owner__"


def owns(obj: object, attribute: str) -> bool:
    """True if `obj.<attribute>` is a durable wrapper made for `obj` itself."""
    wrapper = vars(obj).get(attribute)
    return wrapper is not None and getattr(wrapper, _OWNER, None) == id(obj)


def set_owned(obj: object, attribute: str, wrapper: Callable[..., Any]) -> None:
    """Install `wrapper` as an instance attribute, bypassing pydantic's field checks."""
    setattr(wrapper, _OWNER, id(obj))
    object.__setattr__(obj, attribute, wrapper)
