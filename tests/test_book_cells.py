"""How the book shows an executed page's parameters: the values it ran with, in the documented cell."""
import nbformat

from megu_lib.book import PARAMETERS_NOTE, show_parameters_used


def _executed(injected: str | None):
    cells = [nbformat.v4.new_markdown_cell("# Title"),
             nbformat.v4.new_code_cell('profile = "default"  # a profile in params/\nq = 0.1  # a share\nrun = True'),
             nbformat.v4.new_code_cell("print(profile)")]
    cells[1].metadata["tags"] = ["parameters"]
    if injected is not None:
        cell = nbformat.v4.new_code_cell(injected)
        cell.metadata["tags"] = ["injected-parameters"]
        cells.insert(2, cell)
    return nbformat.v4.new_notebook(cells=cells)


def test_injected_values_replace_the_defaults_and_keep_the_comments():
    nb = show_parameters_used(_executed('# Parameters\nprofile = "main"\nq = 0.25\nextra = [1, 2]\n'))
    assert [c.source for c in nb.cells if c.cell_type == "code"] == [
        'profile = "main"  # a profile in params/\nq = 0.25  # a share\nrun = True\nextra = [1, 2]', "print(profile)"]
    assert not any("injected-parameters" in c.metadata.get("tags", []) for c in nb.cells)
    assert nb.cells[1].source == PARAMETERS_NOTE and nb.cells[1].cell_type == "markdown"
    assert "hide-input" not in nb.cells[2].metadata["tags"]


def test_without_injection_the_defaults_stay_and_the_note_is_added_once():
    nb = show_parameters_used(show_parameters_used(_executed(None)))
    assert nb.cells[2].source.startswith('profile = "default"')
    assert sum(c.source == PARAMETERS_NOTE for c in nb.cells) == 1


def test_a_notebook_without_parameters_is_left_alone():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")])
    assert show_parameters_used(nb).cells[0].source == "x = 1" and len(nb.cells) == 1


def test_write_glance_takes_the_glued_summary_or_says_where_it_comes_from(tmp_path):
    from megu_lib.book import GLANCE_KEY, write_glance
    assert write_glance(tmp_path).startswith("*No results yet")
    assert (tmp_path / "glance.md").read_text().startswith("*No results yet")
    out = nbformat.v4.new_output("display_data", data={
        "application/papermill.record/text/markdown": "- **MeGU** ranks 3 of 12",
        "application/papermill.record/text/plain": "<Markdown>"})
    out.metadata = {"scrapbook": {"name": GLANCE_KEY, "mime_prefix": "application/papermill.record/"}}
    other = nbformat.v4.new_output("display_data", data={"application/papermill.record/text/markdown": "no"})
    other.metadata = {"scrapbook": {"name": "something_else", "mime_prefix": "application/papermill.record/"}}
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("g", outputs=[other, out])])
    nbformat.write(nb, str(tmp_path / "07_claims.ipynb"))
    assert write_glance(tmp_path) == "- **MeGU** ranks 3 of 12"
    assert (tmp_path / "glance.md").read_text() == "- **MeGU** ranks 3 of 12\n"
    # a later chapter's line (the privacy chapter's) follows, in chapter order
    line = nbformat.v4.new_output("display_data", data={
        "application/papermill.record/text/markdown": "- **Per-example privacy**: MeGU 70.0\n"})
    line.metadata = {"scrapbook": {"name": GLANCE_KEY + "_privacy", "mime_prefix": "application/papermill.record/"}}
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("g", outputs=[line])]),
                   str(tmp_path / "08_privacy.ipynb"))
    assert write_glance(tmp_path) == "- **MeGU** ranks 3 of 12\n- **Per-example privacy**: MeGU 70.0"
