"""Ranges in the extras, exact pins in the constraints files, and the two agree.

``constraints.txt`` pins the server install exactly as ``make test`` installs it (so
the suite runs on those versions); ``constraints-pi.txt`` pins a unit's install on
Raspberry Pi OS, numpy held at the 1.x that apt ships beside picamera2.
"""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
EXTRAS = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]


def pins(name: str) -> dict[str, Version]:
    got: dict[str, Version] = {}
    for line in (ROOT / name).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            m = re.fullmatch(r"([A-Za-z0-9_.\-]+)==(\S+)", line)
            assert m, f"{name}: {line!r} is not an exact pin"
            got[canonicalize_name(m.group(1))] = Version(m.group(2))
    return got


@pytest.mark.parametrize(
    ("extra", "constraints"), [("server", "constraints.txt"), ("edge", "constraints-pi.txt")]
)
def test_every_requirement_of_an_extra_is_pinned_within_its_range(
    extra: str, constraints: str
) -> None:
    pinned = pins(constraints)
    for spec in EXTRAS[extra]:
        req = Requirement(spec)
        name = canonicalize_name(req.name)
        assert name in pinned, f"{constraints} pins no {req.name} ({extra} extra)"
        assert req.specifier.contains(pinned[name], prereleases=True), (
            f"{constraints}: {req.name}=={pinned[name]} is outside {extra}'s {req.specifier}"
        )


def test_a_unit_keeps_numpy_below_2_beside_apts_picamera2() -> None:
    assert pins("constraints-pi.txt")["numpy"] < Version("2")


def test_the_suite_runs_on_the_pinned_server_versions() -> None:
    for name, version in pins("constraints.txt").items():
        installed = Version(metadata.version(name))  # a local label (2.13.0+cpu) matches
        assert SpecifierSet(f"=={version}").contains(installed), f"{name} {installed} installed"
