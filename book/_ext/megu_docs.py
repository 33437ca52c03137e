"""Sphinx glue for the book's API reference (book/api.md).

megu_lib's docstrings are plain prose with ``literals``; a few use set notation such as
``|P_i ∩ P_j|``, which reStructuredText would read as a substitution. Bars outside inline
literals are escaped before autodoc renders a docstring. It also turns the
``nitpick_ignore`` pairs of ``_config.yml`` (YAML lists) into the tuples Sphinx expects.
"""
import re

_LITERAL = re.compile(r"(``.+?``|`[^`]+`)")


def escape_bars(line: str) -> str:
    """``a |x| b`` -> ``a \\|x\\| b``; bars inside inline literals and table rows are kept."""
    if "|" not in line or line.lstrip().startswith(("|", "+")):
        return line
    parts = _LITERAL.split(line)
    return "".join(p if i % 2 else p.replace("|", "\\|") for i, p in enumerate(parts))


def _process(app, what, name, obj, options, lines):
    lines[:] = [escape_bars(line) for line in lines]


def _tuples(app, config):
    # _config.yml can only give lists; Sphinx compares (type, target) tuples
    config.nitpick_ignore = [tuple(x) for x in config.nitpick_ignore]


def setup(app):
    app.connect("config-inited", _tuples)
    app.connect("autodoc-process-docstring", _process)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
