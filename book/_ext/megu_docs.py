"""Sphinx glue for the book's API reference (book/api.md).

megu_lib's docstrings are plain prose with ``literals``; a few use set notation such as
``|P_i ∩ P_j|``, which reStructuredText would read as a substitution. Bars outside inline
literals are escaped before autodoc renders a docstring. It also turns the
``nitpick_ignore`` pairs of ``_config.yml`` (YAML lists) into the tuples Sphinx expects,
and registers the bibliography style ``author_year`` (``bibtex_default_style``): the
entries of the bibliography page are labelled as the text cites them, "Foster et al.,
2024", instead of with numbers.
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


def author_year_label(entry) -> str:
    """"Surname, Year", "A and B, Year" or "A et al., Year", as the author-year citations read."""
    people = entry.persons.get("author") or entry.persons.get("editor") or []
    names = [" ".join(p.last_names) for p in people] or [entry.fields.get("title", entry.key)]
    who = (names[0] if len(names) == 1 else f"{names[0]} and {names[1]}" if len(names) == 2
           else f"{names[0]} et al.")
    return f"{who}, {entry.fields.get('year', 'n.d.')}"


def _register_author_year_style():
    from pybtex.plugin import register_plugin
    from pybtex.style.formatting.plain import Style as Plain
    from pybtex.style.labels import BaseLabelStyle

    class AuthorYearLabels(BaseLabelStyle):
        def format_labels(self, sorted_entries):
            labels = [author_year_label(e) for e in sorted_entries]
            for i, label in enumerate(labels):  # the same label twice: a, b, ...
                same = [j for j, lab in enumerate(labels) if lab == label]
                yield label if len(same) == 1 else label + "abcdefghijklmnopqrstuvwxyz"[same.index(i)]

    class AuthorYear(Plain):
        default_label_style = AuthorYearLabels

    register_plugin("pybtex.style.formatting", "author_year", AuthorYear, force=True)


def setup(app):
    _register_author_year_style()
    app.connect("config-inited", _tuples)
    app.connect("autodoc-process-docstring", _process)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
