"""Values of attack specs as written in files and on the command line: radii (with their units) and step sizes.

L-inf radii are in 1/255 units (``8``) or written as a fraction of the [0, 1] pixel scale (``8/255``); a bare
L-inf radius below 0.5 is refused, because ``0.031`` (meant as 8/255 by torchattacks habits) would run as
0.031/255. L2 radii are absolute on the [0, 1] scale (``0.5``). A numeric step size is in the units of eps; the
rules (``2.5*eps/steps``, ``eps/2``, ``eps``, ``0.5*eps``) are resolved per radius and recorded as written.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from ..runfolder.cell import eps_text

__all__ = [
    "AttackSpecError",
    "DEFAULT_STEP_RULE",
    "MIN_LINF_255",
    "L2_MAX",
    "MAX_RADII",
    "MAX_ALPHA",
    "parse_step_size",
    "resolve_step_size",
    "parse_radius",
    "parse_radii",
    "checked_radii",
    "integer",
    "positive",
    "flag",
]

DEFAULT_STEP_RULE = "2.5*eps/steps"
MIN_LINF_255 = 0.5  # a bare L-inf radius below this (in 1/255 units) must be written as a fraction
MAX_ALPHA = 1e6  # a soft-quantizer alpha beyond this is hard rounding in float32 (and 1e300 overflows it)
MAX_RADII = 256  # radii of one attack (each is a cell per arm and grad mode)
L2_MAX = math.sqrt(3 * 32 * 32)  # the diameter of [0, 1]^(3x32x32): no L2 radius beyond it means anything
_NUMBER = r"[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?"
_RULE_RE = re.compile(rf"^\s*(?:(?P<k>{_NUMBER})\s*\*\s*)?eps(?:\s*/\s*(?P<d>steps|{_NUMBER}))?\s*$")


class AttackSpecError(ValueError):
    """An invalid attack specification or spec file; the message says what and how to fix it."""


def integer(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise AttackSpecError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def positive(name: str, value: Any, maximum: float = math.inf, why: str = "") -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise AttackSpecError(f"{name} must be a positive finite number, got {value!r}")
    if value > maximum:
        raise AttackSpecError(f"{name} must be at most {maximum:g}{why}, got {value!r}")
    return float(value)


def flag(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise AttackSpecError(f"{name} must be true or false (a YAML boolean, not a string), got {value!r}")
    return value


def parse_step_size(value: float | int | str) -> float | str:
    """A step size as given: a positive number (in eps units) or a rule string such as ``2.5*eps/steps``.

    Returns the number as float, or the rule with whitespace removed. Raises :class:`AttackSpecError`.
    """
    if isinstance(value, str):
        text = value.strip()
        try:
            return parse_step_size(float(text))
        except ValueError:
            pass
        match = _RULE_RE.match(text)
        if not match:
            raise AttackSpecError(
                f"cannot read step size {value!r}: give a positive number (same units as eps) or a rule of the form "
                f"'K*eps/steps', 'eps/K', 'K*eps' or 'eps' (default {DEFAULT_STEP_RULE!r})"
            )
        if (match.group("k") and float(match.group("k")) <= 0) or (
            match.group("d") not in (None, "steps") and float(match.group("d")) <= 0
        ):
            raise AttackSpecError(f"step size rule {value!r} must give a positive step")
        return re.sub(r"\s+", "", text)
    return positive("step size", value)


def resolve_step_size(rule: float | str, eps: float, steps: int, norm: str) -> tuple[float, str]:
    """``(absolute step size on the [0, 1] scale, step_rule label)`` for one radius.

    A numeric ``rule`` is in eps units (1/255 for linf) and is labelled ``absolute``.
    """
    if isinstance(rule, float):
        return (rule / 255.0 if norm == "linf" else rule), "absolute"
    match = _RULE_RE.match(rule)
    if not match:  # parse_step_size validated it already
        raise AttackSpecError(f"bad step size rule {rule!r}")
    k = float(match.group("k")) if match.group("k") else 1.0
    d = match.group("d")
    denom = float(steps) if d == "steps" else (float(d) if d else 1.0)
    return k * eps / denom, rule


def parse_radius(raw: Any, norm: str, where: str = "eps") -> float:
    """One radius as written -> a float on the [0, 1] scale.

    L-inf: a number is in 1/255 units (``8``), a fraction is on the [0, 1] scale as written (``8/255``); a bare
    number in (0, 0.5) is refused with what was probably meant. L2: absolute (``0.5``, or a fraction ``1/2``).
    """
    if isinstance(raw, str) and "/" in raw:
        try:
            num, den = (float(part) for part in raw.replace(" ", "").split("/"))
            value = num / den
        except (ValueError, ZeroDivisionError):
            raise AttackSpecError(f"{where}: cannot read the radius {raw!r} (write e.g. 8/255 or 8)") from None
        if not math.isfinite(value):
            raise AttackSpecError(f"{where}: the radius {raw!r} is not finite")
        return value
    if isinstance(raw, str):
        try:
            raw = float(raw)
        except ValueError:
            raise AttackSpecError(f"{where}: radii must be numbers or fractions such as 8/255, got {raw!r}") from None
    if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not math.isfinite(raw):
        raise AttackSpecError(f"{where}: radii must be finite numbers or fractions such as 8/255, got {raw!r}")
    if norm != "linf":
        return float(raw)
    if 0 < raw < MIN_LINF_255:
        guess = raw * 255
        raise AttackSpecError(
            f"{where}: L-inf radii are in 1/255 units, so {raw:g} would mean {raw:g}/255 (about {raw / 255:.2g} on "
            f"the [0, 1] scale), an attack that changes almost nothing. If you meant {raw:g} on the [0, 1] scale, "
            f"write {guess:.3g} or {round(guess):d}/255; to really attack at {raw:g}/255, write it as the fraction "
            f"{raw:g}/255"
        )
    return float(raw) / 255.0


def parse_radii(raw: Any, norm: str, where: str = "eps") -> tuple[float, ...]:
    """A radius list as written (list, comma string, single value, or ``{linspace: [start, stop, num]}`` in the
    units of a single value) -> floats on the [0, 1] scale."""
    if isinstance(raw, Mapping):
        spec = raw.get("linspace")
        if set(raw) != {"linspace"} or not (
            isinstance(spec, Sequence)
            and len(spec) == 3
            and not isinstance(spec[2], bool)
            and isinstance(spec[2], int)
            and spec[2] >= 1
        ):
            raise AttackSpecError(
                f"{where}: linspace must be {{linspace: [start, stop, num]}} with an integer num >= 1, got {raw!r}"
            )
        if spec[2] > MAX_RADII:
            raise AttackSpecError(f"{where}: linspace asks for {spec[2]} radii; at most {MAX_RADII} per attack")
        start, stop = (parse_radius(v, norm, where) for v in spec[:2])
        num = spec[2]
        return tuple(start + (stop - start) * i / (num - 1) for i in range(num)) if num > 1 else (start,)
    if isinstance(raw, str):
        values: list[Any] = [v.strip() for v in raw.split(",") if v.strip()]
    elif isinstance(raw, Sequence):
        values = list(raw)
    else:
        values = [raw]
    if not values:
        raise AttackSpecError(f"{where}: eps must hold at least one radius")
    if len(values) > MAX_RADII:
        raise AttackSpecError(f"{where}: {len(values)} radii; at most {MAX_RADII} per attack")
    return tuple(parse_radius(v, norm, where) for v in values)


def checked_radii(eps: Any, norm: str) -> tuple[float, ...]:
    """A radius or list of radii already on the [0, 1] scale, checked: finite, >= 0, inside the image cube, distinct."""
    values = (eps,) if isinstance(eps, (int, float)) and not isinstance(eps, bool) else tuple(eps)
    if not values:
        raise AttackSpecError("eps must hold at least one radius")
    for e in values:
        if isinstance(e, bool) or not isinstance(e, (int, float)) or not math.isfinite(e):
            raise AttackSpecError(f"eps values must be finite numbers >= 0, got {e!r}")
        if e < 0:
            raise AttackSpecError(f"eps values must be >= 0, got {eps_text(e, norm)}")
        if norm == "linf" and e > 1.0 + 1e-12:
            raise AttackSpecError(
                f"linf eps {eps_text(e, norm)} is outside [0, 255]/255: write L-inf radii in "
                "1/255 units (8) or as fractions (8/255)"
            )
        if norm == "l2" and e > L2_MAX:
            raise AttackSpecError(
                f"l2 eps {e:g} exceeds {L2_MAX:.4g}, the diameter of the [0, 1] image cube of CIFAR "
                "(3x32x32): l2 radii are absolute on the [0, 1] scale (e.g. 0.5)"
            )
    if len({round(e, 12) for e in values}) != len(values):
        raise AttackSpecError(f"eps holds duplicate radii: {[eps_text(e, norm) for e in values]}")
    return tuple(float(e) for e in values)
