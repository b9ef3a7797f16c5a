"""The field checks of the typed configs (training's, export's, evaluation's): the type and
size every field must have, the makers of the value checks, and how a table of checks is applied.

A value check is a pair (check, message): ``check(value)`` returns False (the message, whose
``{name}`` is the flag, is raised) or raises ValueError with a message of its own. A cross check
is (names, check of {name: value}, message), the same convention. Every message names the flag,
since most configs come from a command line. Pure Python: the commands check their flags before
TensorFlow loads.
"""

import dataclasses
import math
import types

# Type-level bounds of every field, checked before the field's own check: a value beyond them
# is a typo or a fuzzed input, and would fail later inside TensorFlow or NumPy (a seed beyond
# 2**32, an epoch count whose step count overflows, a name longer than any path).
INT_LIMIT = 2**31 - 1
FLOAT_LIMIT = 1e9
STR_LIMIT = 4096
_TUPLE_FORMS = (tuple, list, str)  # the flag's 'a,b,c' string or a sequence


def _kind(annotation):
    """(the accepted types, what to call them, None allowed) of a field's annotation."""
    allows_none = isinstance(annotation, types.UnionType) and type(None) in annotation.__args__
    if allows_none:
        annotation = next(a for a in annotation.__args__ if a is not type(None))
    kinds = {
        bool: ((bool,), "true or false"),
        int: ((int,), "an integer"),
        float: ((int, float), "a number"),
        str: ((str,), "a string"),
        tuple: (_TUPLE_FORMS, "a list"),
    }
    accepted, words = kinds[annotation]
    return accepted, words, allows_none


def type_problem(annotation, value, strings_ok=True):
    """Why ``value`` is not of a field's type and size, or None. Tuple fields take a sequence of
    names or numbers (each field checks its items' values itself) and, with ``strings_ok`` (the
    training config's residual_scales, repeats, area_range), None or the flag's 'a,b,c'."""
    accepted, words, allows_none = _kind(annotation)
    if value is None and (allows_none or (annotation is tuple and strings_ok)):
        return None
    if annotation is tuple and not strings_ok:
        accepted, words = (tuple, list), "a list"
    if not isinstance(value, accepted) or (isinstance(value, bool) and bool not in accepted):
        return f"must be {words}; got {value!r:.60} ({type(value).__name__})"
    if isinstance(value, (tuple, list)) and not all(
        isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in value
    ):
        return f"must be a list of names or numbers; got {value!r:.60}"
    if isinstance(value, float) and not math.isfinite(value):
        return f"must be a finite number; got {value}"
    limit = INT_LIMIT if isinstance(value, int) else FLOAT_LIMIT
    if isinstance(value, (int, float)) and abs(value) > limit:
        return f"is out of range: {value:.4g} (no field takes a value beyond {limit} in size)"
    if isinstance(value, (str, tuple, list)) and len(value) > STR_LIMIT:
        return f"is too long ({len(value)} characters or items; at most {STR_LIMIT})"
    return None


def check_types(instance, flag_names=None, strings_ok=True):
    """ValueError naming the flag of the first field of the dataclass ``instance`` whose value
    is not of the field's type (``type_problem``)."""
    for field in dataclasses.fields(instance):
        problem = type_problem(field.type, getattr(instance, field.name), strings_ok)
        if problem:
            name = (flag_names or {}).get(field.name, field.name)
            raise ValueError(f"--{name} {problem}")


# Makers of value checks (the flag's name is filled in when one fails).
def positive(kind="a positive number"):
    return lambda v: v > 0, "--{name} must be " + kind


def at_least_zero(advice=""):
    return lambda v: v >= 0, "--{name} must be >= 0" + advice


def in_range(lo, hi, lo_open=False, hi_open=True):
    def check(v):
        return (lo < v if lo_open else lo <= v) and (v < hi if hi_open else v <= hi)

    interval = f"{'(' if lo_open else '['}{lo}, {hi}{')' if hi_open else ']'}"
    return check, "--{name} must be in " + interval


def one_of(values):
    return lambda v: v in values, "--{name} must be one of " + ", ".join(values)


def not_empty():
    return lambda v: bool(v.strip()), "--{name} must not be empty"


def check_field(field_checks, name, value):
    """Raises ValueError with the field's message when ``value`` is not valid for ``name``
    (``field_checks``: name -> (check, message); a name without a check is valid)."""
    if name in field_checks:
        check, message = field_checks[name]
        if not check(value):
            raise ValueError(message.format(name=name))


def check_cross(cross_checks, names, values):
    """The cross check over ``names`` (a tuple of ``cross_checks``) on {name: value}."""
    for cross_names, check, message in cross_checks:
        if cross_names == tuple(names) and not check(values):
            raise ValueError(message)
