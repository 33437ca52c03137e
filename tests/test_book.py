"""The book's pipeline: the table of contents and configuration, citations, the publishing
workflow, the run-time table, and megu_lib.book's handling of bad parameters and failing
notebooks (the previous book stays in place)."""
import json
import re
from pathlib import Path

import nbformat
import pytest
import yaml

from megu_lib import MeguError, book

ROOT = Path(__file__).resolve().parents[1]


def _toc_files():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    return [toc["root"]] + [c["file"] for part in toc["parts"] for c in part["chapters"]]


def test_toc_lists_every_chapter_and_page():
    files = _toc_files()
    stems = [Path(p).stem for p in sorted((ROOT / "notebooks").glob("*.py"))]
    chapters = [f for f in files if f.startswith("book/_executed/")]
    assert chapters == [f"book/_executed/{s}" for s in stems], "every notebook is a chapter, in order"
    for stem in ("00_original_vs_retrain", "01_entanglement", "02_transition_matrix", "03_label_perturbation",
                 "04_fragment_align", "05_experiments", "06_ablations", "07_claims",
                 "08_privacy"):
        assert f"book/_executed/{stem}" in files
    assert files[0] == "book/intro" and files[-3:] == ["book/reproduce", "book/api", "book/bibliography"]
    for page in files:
        if not page.startswith("book/_executed/"):
            assert (ROOT / f"{page}.md").is_file(), page


def test_config_renders_offline_and_never_executes():
    cfg = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert cfg["execute"]["execute_notebooks"] == "off"
    sphinx = cfg["sphinx"]
    assert "sphinx-mathjax-offline" in sphinx["extra_extensions"]
    assert not sphinx["config"]["mathjax_path"].startswith("http")
    import importlib.util
    spec = importlib.util.find_spec("sphinx-mathjax-offline")
    assert spec is not None, "the MathJax package is installed (pyproject's book extra)"
    assert (Path(spec.origin).parent / "static" / "mathjax"
            / sphinx["config"]["mathjax_path"].split("/", 1)[1]).is_file()
    assert {"sphinx.ext.autodoc", "sphinx.ext.napoleon"} <= set(sphinx["extra_extensions"])
    for name, path in sphinx["local_extensions"].items():
        assert (ROOT / path / f"{name}.py").is_file()
    for css in sphinx["config"]["html_css_files"]:
        assert any((ROOT / p / css).is_file() for p in sphinx["config"]["html_static_path"])
    assert all((ROOT / b).is_file() for b in cfg["bibtex_bibfiles"])


def test_every_citation_is_in_the_bibliography():
    keys = set(re.findall(r"@\w+\{([^,]+),", (ROOT / "references.bib").read_text()))
    assert {"megu2026", "tarun2023unsir", "foster2024ssd", "kurmanji2023scrub", "fan2024salun", "jia2023l1sparse",
            "chundawat2023badteacher", "graves2021amnesiac", "xiao2017fashionmnist"} <= keys
    texts = [p.read_text() for p in [*(ROOT / "notebooks").glob("*.py"), *(ROOT / "book").glob("*.md")]]
    cited = {k.strip() for t in texts for group in re.findall(r"\{cite(?::\w+)?\}`([^`]+)`", t)
             for k in group.split(",")}
    assert cited, "the chapters cite the literature"
    assert cited <= keys, f"cited but not in references.bib: {sorted(cited - keys)}"
    assert (ROOT / "book" / "bibliography.md").read_text().count("{bibliography}") == 1


def test_escape_bars_for_the_api_reference():
    import importlib.util
    spec = importlib.util.spec_from_file_location("megu_docs", ROOT / "book" / "_ext" / "megu_docs.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.escape_bars("the Jaccard |P_i ∩ P_j| / |P_i ∪ P_j|") == r"the Jaccard \|P_i ∩ P_j\| / \|P_i ∪ P_j\|"
    assert mod.escape_bars("keep ``a | b`` and `x|y`") == "keep ``a | b`` and `x|y`"
    assert mod.escape_bars("| a | table |") == "| a | table |"


def test_publishing_workflow():
    wf = yaml.safe_load((ROOT / ".github" / "workflows" / "book.yml").read_text())
    on = wf.get("on", wf.get(True))  # YAML 1.1 reads the key `on` as True
    assert "push" in on and "workflow_dispatch" in on
    assert wf["permissions"]["pages"] == "write" and wf["permissions"]["id-token"] == "write"
    build = wf["jobs"]["build"]["steps"]
    runs = " ".join(s.get("run", "") for s in build)
    assert "apt-get install" in runs and "dataset-fashion-mnist" in runs and "make book" in runs
    uses = [s.get("uses", "") for s in build]
    assert any(u.startswith("actions/upload-pages-artifact@") for u in uses)
    upload = next(s for s in build if s.get("uses", "").startswith("actions/upload-pages-artifact@"))
    assert upload["with"]["path"] == "book/_build/html"
    deploy = wf["jobs"]["deploy"]
    assert deploy["needs"] == "build"
    assert any(s.get("uses", "").startswith("actions/deploy-pages@") for s in deploy["steps"])


def test_makefile_runs_the_smoke_book_in_make_test():
    mk = (ROOT / "Makefile").read_text()
    test_book = mk.split("\ntest-book:")[1].split("\n\n")[0]
    assert "--profile smoke" in test_book and "--strict" in test_book
    assert "--nbval-lax" in test_book and "--nbval-current-env" in test_book
    assert "-W -n --keep-going" in test_book and "MEGU_RESULTS_DIR=" in mk
    assert re.search(r"^test: .*test-book", mk, re.M)


def test_makefile_runs_the_browser_test_on_the_smoke_book():
    mk = (ROOT / "Makefile").read_text()
    test_book = mk.split("\ntest-book:")[1].split("\n\n")[0]
    assert " browser" in test_book.splitlines()[0]  # installs chromium and chromium-driver first
    built = test_book.index("jupyter-book build")
    assert test_book.index("tests/browser --book-html $(SMOKE)/book/_build/html") > built
    assert "apt-get install -y -qq chromium chromium-driver" in mk.split("\nbrowser:")[1].split("\n\n")[0]
    unit = mk.split("\ntest-unit:")[1].split("\n\n")[0]
    assert "--ignore=tests/browser" in unit


def test_run_times_table(tmp_path):
    entry = book.write_run_times(tmp_path, {"00_a": 12.3, "01_b": 4.56}, profile="smoke", dataset="fashion_mnist",
                                 device="cpu", times_log=tmp_path / "log.json")
    saved = json.loads((tmp_path / "run_times.json").read_text())
    assert saved["total"] == pytest.approx(16.9) and saved["profile"] == "smoke" and saved["seconds"]["00_a"] == 12.3
    assert entry["machine"]["cpus"] >= 1 and "date" in saved
    book.write_run_times(tmp_path, {"00_a": 100.0, "01_b": 50.0}, profile="default", dataset="fashion_mnist",
                         device="cpu", times_log=tmp_path / "log.json")
    log = json.loads((tmp_path / "log.json").read_text())
    assert set(log) == {"smoke", "default"}
    md = (tmp_path / "run_times.md").read_text()
    assert "| notebook | `smoke` | `default` |" in md and "**150 s**" in md and "| 01_b | 4.6 s | 50 s |" in md
    assert "| caches at start | empty | empty |" in md
    # a warm re-run (caches already full) never replaces the cold run's times in the log...
    book.write_run_times(tmp_path, {"00_a": 1.0, "01_b": 2.0}, profile="default", dataset="fashion_mnist",
                         device="cpu", times_log=tmp_path / "log.json", cold=False)
    assert json.loads((tmp_path / "log.json").read_text())["default"]["total"] == 150.0
    assert "**150 s**" in (tmp_path / "run_times.md").read_text()
    assert json.loads((tmp_path / "run_times.json").read_text())["cold"] is False  # this run's own file says so
    # ... but does when nothing cold is logged for that data set
    book.write_run_times(tmp_path, {"00_a": 1.0}, profile="default", dataset="cifar10", device="cpu",
                         times_log=tmp_path / "log.json", cold=False)
    assert "warm (only loads)" in (tmp_path / "run_times.md").read_text()


def test_caches_empty(tmp_path, monkeypatch):
    monkeypatch.setenv("MEGU_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("MEGU_RESULTS_DIR", str(tmp_path / "results"))
    from megu_lib.profile import load_config
    default, smoke = load_config("default"), load_config("smoke")
    assert book.caches_empty(default)
    (tmp_path / "results" / "default" / "records").mkdir(parents=True)
    assert book.caches_empty(default)
    (tmp_path / "results" / "default" / "records" / "x.json").write_text("{}")
    assert not book.caches_empty(default) and book.caches_empty(smoke)
    (tmp_path / "cache" / "models").mkdir(parents=True)
    (tmp_path / "cache" / "models" / "m.pt").write_bytes(b"x")
    assert not book.caches_empty(smoke)


def _nb(cells):
    nb = nbformat.v4.new_notebook()
    nb.cells = cells
    return nb


def test_check_notebook(tmp_path):
    code = nbformat.v4.new_code_cell
    good = _nb([code("x", outputs=[nbformat.v4.new_output("display_data",
                                                          data={"image/png": "iVBO", "text/plain": "<Figure>"})]),
                code("import os")])
    p = tmp_path / "good.ipynb"
    nbformat.write(good, p)
    assert book.check_notebook(p) == []
    glued = _nb([code("g", outputs=[nbformat.v4.new_output("display_data", data={
        "application/papermill.record/image/png": "iVBO", "application/papermill.record/text/plain": "<Image>"})])])
    nbformat.write(glued, p)
    assert book.check_notebook(p) == []  # a figure glued for a glue:figure directive counts
    bad = _nb([code("w", outputs=[nbformat.v4.new_output("stream", name="stderr",
                                                         text="x.py:3: FutureWarning: old\n")]),
               code("e", outputs=[nbformat.v4.new_output("stream", name="stdout", text="  \n")])])
    nbformat.write(bad, p)
    problems = book.check_notebook(p)
    assert any("prints a warning" in x for x in problems) and any("empty output" in x for x in problems)
    assert "no figure" in problems


NOTEBOOK = '''# %% tags=["parameters"]
profile = "default"
dataset = None
size = 3  # an int
label = None

# %%
import matplotlib.pyplot as plt
from megu_lib.profile import check_parameter
check_parameter("size", size, int, "an int")
print(profile, size)

# %%
fig, ax = plt.subplots(figsize=(2, 2))
ax.plot(range(size))
ax.set_xlabel("x")
'''


def _good_book(tmp_path):
    out = tmp_path / "book" / "_executed"
    out.mkdir(parents=True)
    (out / "good.ipynb").write_text("the previous book")
    return out


def _untouched(out):
    assert (out / "good.ipynb").read_text() == "the previous book"
    assert not out.with_name(out.name + ".staging").exists() or not any(
        p.suffix == ".ipynb" and p.stem == "good" for p in out.with_name(out.name + ".staging").iterdir())


def test_wrong_parameter_type_stops_before_any_notebook(tmp_path):
    nb = tmp_path / "a.py"
    nb.write_text(NOTEBOOK)
    out = _good_book(tmp_path)
    for params, match in ((dict(size="three"), r"parameter size must be of type int \(default 3\), got 'three'"),
                          (dict(size=2.5), "parameter size must be of type int"),
                          (dict(nope=1), "no notebook has a parameter 'nope'"),
                          (dict(profile="smoke"), "--profile")):
        with pytest.raises(MeguError, match=match):
            book.execute_notebooks([nb], out, "smoke", params=params, log=lambda m: None)
        _untouched(out)
    with pytest.raises(MeguError, match="NAME=VALUE"):
        book._parse_param("size")
    assert book._parse_param("size=[1, 2]") == ("size", [1, 2])


@pytest.mark.slow
def test_first_failing_notebook_stops_the_run_and_keeps_the_book(tmp_path, capsys):
    first, second = tmp_path / "01_first.py", tmp_path / "02_second.py"
    first.write_text(NOTEBOOK)
    second.write_text(NOTEBOOK.replace('print(profile, size)', 'open("ran-second", "w").close()'))
    out = _good_book(tmp_path)
    # a value the pre-check cannot judge (default None) reaches the notebook and stops it there
    bad = NOTEBOOK.replace('check_parameter("size", size, int, "an int")',
                           'check_parameter("label", label, str, "a name")')
    first.write_text(bad)
    rc = book.main([str(first), str(second), "--profile", "smoke", "--out", str(out), "-p", "label=7"])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert rc == 2
    assert err == "error: notebook 01_first.py failed in cell 3: MeguError: parameter label must be a name, got 7"
    assert not (tmp_path / "ran-second").exists()
    _untouched(out)
    # the same notebooks, good input: the book is replaced, with its run times; strict passes
    first.write_text(NOTEBOOK)
    seconds = book.execute_notebooks([first], out, "smoke", params={"size": 4}, strict=True, log=lambda m: None)
    assert set(seconds) == {"01_first"} and not (out / "good.ipynb").exists()
    assert (out / "01_first.ipynb").is_file() and json.loads((out / "run_times.json").read_text())["profile"] == "smoke"
    executed = nbformat.read(out / "01_first.ipynb", as_version=4)
    # the book shows the values the page ran with, in the documented cell, under a line saying how to change them
    assert executed.cells[0].source == book.PARAMETERS_NOTE
    assert "size = 4" in executed.cells[1].source and "hide-input" not in executed.cells[1].metadata["tags"]
    assert not any("injected-parameters" in c.metadata.get("tags", []) for c in executed.cells)
    # strict: a notebook that prints a warning fails and leaves the book as it was
    before = (out / "01_first.ipynb").read_text()
    first.write_text(NOTEBOOK + '\n# %%\nimport warnings\nwarnings.warn("careful")\n')
    with pytest.raises(MeguError, match="01_first.py: cell 5 prints a warning: .*UserWarning: careful"):
        book.execute_notebooks([first], out, "smoke", strict=True, log=lambda m: None)
    assert (out / "01_first.ipynb").read_text() == before


@pytest.mark.slow
def test_another_data_set_gets_a_forget_class_it_has(tmp_path):
    """``make book DATASET=folder``: the profile's forget class (e.g. Shirt) is not in the
    folder, so the chapters forget the folder's first class instead of failing, by the
    profile's one policy; the book runner says which."""
    import numpy as np
    from PIL import Image
    for c in ("cat", "dog"):
        (tmp_path / "imgs" / c).mkdir(parents=True)
        for i in range(6):
            Image.fromarray(np.full((8, 8), 30 * i, np.uint8)).save(tmp_path / "imgs" / c / f"{i}.png")
    nb = tmp_path / "00_forget.py"
    nb.write_text('# %% tags=["parameters"]\nprofile = "default"\ndataset = None\nforget_class = None\n\n'
                  '# %%\nfrom megu_lib.profile import load_config, load_data\n'
                  'cfg = load_config(profile, dataset=dataset)\n'
                  'print("forgetting", cfg.forget_class(load_data(cfg), forget_class)[0])\n')
    out = tmp_path / "executed"
    notes = []
    book.execute_notebooks([nb], out, "smoke", dataset=str(tmp_path / "imgs"), log=notes.append)
    executed = nbformat.read(out / "00_forget.ipynb", as_version=4)
    assert "forgetting cat" in "".join(o.get("text", "") for c in executed.cells for o in c.get("outputs", []))
    assert any("'Shirt' is not a class" in n and "forget 'cat'" in n for n in notes)


def test_markdown_cells_are_comments_throughout():
    """In the jupytext percent format every line of a markdown cell starts with '#'; a line
    that does not is parsed as code by linters and silently kept by jupytext."""
    bad = []
    for path in sorted((ROOT / "notebooks").glob("*.py")):
        markdown = False
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if line.startswith("# %%"):
                markdown = "[markdown]" in line
            elif markdown and line.strip() and not line.startswith("#"):
                bad.append(f"{path.name}:{number}")
    assert not bad, f"uncommented lines in markdown cells: {bad}"
