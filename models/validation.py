"""Validation errors told the way a person fixing a file needs them: file, dotted key, reason."""

from __future__ import annotations

from pydantic import ValidationError


def describe(err: ValidationError, source: str) -> str:
    """One line per problem: ``unit.toml: slots.0.unit_grams: Input should be greater than 0``.

    Unknown keys read ``unit.toml: unknown key 'unit.colour'``.
    """
    lines = []
    for e in err.errors():
        where = ".".join(str(p) for p in e["loc"]) or "(top level)"
        if e["type"] == "extra_forbidden":
            lines.append(f"{source}: unknown key '{where}'")
        else:
            lines.append(f"{source}: {where}: {e['msg']}")
    return "\n".join(lines)
