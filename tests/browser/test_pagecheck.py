"""The browser checks themselves, on small synthetic pages in headless Chromium: each flags
exactly what it should (a wide table, a scrolling code block, a small or unrecorded or
uncaptioned figure, a traceback, an empty output, a broken link) and nothing else."""
import pagecheck
import pytest
from PIL import Image, PngImagePlugin

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>t</title><style>
  body {{ margin: 0; font: 16px/1.4 sans-serif; }}
  main {{ display: flex; }}
  nav {{ width: 200px; }}
  article.bd-article {{ width: 600px; padding: 0 20px; }}
  pre {{ overflow-x: auto; }}
  .cell_output .output {{ overflow-x: auto; }}
</style></head>
<body><main><nav><pre>a sidebar line far wider than its narrow column: never checked ...............</pre></nav>
<article class="bd-article"><section id="s1"><h1>Page</h1>
{body}
</section></article></main></body></html>
"""


def write(root, rel, body):
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(PAGE.format(body=body))
    return rel


def png(path, size=(400, 200), min_text_px=None, fmt="PNG"):
    path.parent.mkdir(parents=True, exist_ok=True)
    info = None
    if min_text_px is not None:
        info = PngImagePlugin.PngInfo()
        info.add_text(pagecheck.TEXT_CHUNK, f"{min_text_px:.2f}")
    Image.new("RGB", size, "white").save(path, fmt, **({"pnginfo": info} if info else {}))


def code_cell(code, output):
    return (f'<div class="cell"><div class="cell_input"><div class="highlight"><pre>{code}</pre></div></div>'
            f'<div class="cell_output">{output}</div></div>')


WIDE_ROW = "".join(f"<td>a_rather_long_value_{i}</td>" for i in range(12))
LONG_LINE = "x = " + "1 + " * 80 + "1"


def test_floor_is_nine_points():
    assert pagecheck.MIN_TEXT_PX == pytest.approx(9 * 96 / 72)


def test_content_pages(tmp_path):
    for rel in ("index.html", "genindex.html", "search.html", "py-modindex.html", "_static/x.html",
                "book/a.html", "book/_executed/n.html"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("<html></html>")
    assert pagecheck.content_pages(tmp_path) == ["book/_executed/n.html", "book/a.html", "index.html"]


def test_missing_browser_says_how_to_install(monkeypatch):
    monkeypatch.setattr(pagecheck.shutil, "which", lambda name: None)
    monkeypatch.setattr(pagecheck.os, "access", lambda path, mode: False)
    with pytest.raises(pagecheck.BrowserMissing, match="apt-get install chromium chromium-driver"):
        pagecheck.find_browser()


def test_overflow(tmp_path, browser):
    body = "\n".join([
        "<table><tr><td>fine</td><td>table</td></tr></table>",
        code_cell("short = 1", f'<div class="output text_html"><table><tr>{WIDE_ROW}</tr></table></div>'),
        f'<div class="highlight"><pre>{LONG_LINE}</pre></div>',
        "<pre>a short code block</pre>",
        f"<details><summary>folded</summary><pre>{LONG_LINE}</pre><table><tr>{WIDE_ROW}</tr></table></details>",
        f'<table style="display: none"><tr>{WIDE_ROW}</tr></table>',
    ])
    page = write(tmp_path, "p.html", body)
    pagecheck.open_page(browser, tmp_path, page)
    problems = pagecheck.check_overflow(browser, page)
    assert len(problems) == 2, problems
    table, code = sorted(problems, key=lambda p: "code block" in p)
    assert table.startswith('p.html#s1: table "a_rather_long_value_0') and "overflows by" in table
    assert "past the column" in table and "scroll box" in table
    assert code.startswith('p.html#s1: code block "x = 1 + 1') and "scrolls sideways" in code


def test_images(tmp_path, browser):
    png(tmp_path / "_images/rec.png", min_text_px=20)   # 20 px text: fine at full size, 10 px at half
    png(tmp_path / "_images/norec.png")
    png(tmp_path / "_images/tiny.png", size=(20, 20))
    png(tmp_path / "_static/logo.png")
    png(tmp_path / "_images/anim.gif", fmt="GIF")

    def fig(src, width, caption='<figcaption><p><span class="caption-number">Fig. 1 </span>'
                                '<span class="caption-text">A caption.</span></p></figcaption>', fid="f"):
        return f'<figure id="{fid}"><img src="{src}" width="{width}">{caption}</figure>'
    body = "\n".join([
        fig("_images/rec.png", 400, fid="ok"),
        fig("_images/rec.png", 200, fid="small"),
        fig("_images/norec.png", 400, fid="norec"),
        '<p><img src="_images/rec.png" width="400"></p>',
        fig("_images/rec.png", 400, caption="", fid="nocap"),
        fig("_images/rec.png", 400, fid="numonly",
            caption='<figcaption><p><span class="caption-number">Fig. 2 </span></p></figcaption>'),
        '<p><img src="_images/tiny.png"><img src="_static/logo.png" width="400"></p>',
        fig("_images/anim.gif", 400, fid="gif"),
        f"<details><summary>folded</summary>{fig('_images/norec.png', 100, caption='')}</details>",
    ])
    page = write(tmp_path, "p.html", body)
    pagecheck.open_page(browser, tmp_path, page)
    problems = pagecheck.check_images(browser, tmp_path, page)
    expected = [
        "p.html#s1: image _images/rec.png (figure #small): smallest text shown at 10.0 px, below the 12 px floor",
        "p.html#s1: image _images/norec.png (figure #norec): no text-scale record "
        "(save figures through megu_lib.plotting)",
        "p.html#s1: image _images/rec.png: no caption (not inside a <figure>)",
        "p.html#s1: image _images/rec.png (figure #nocap): no caption (its <figure> has no <figcaption> text)",
        "p.html#s1: image _images/rec.png (figure #numonly): no caption (its <figure> has no <figcaption> text)",
        "p.html#s1: image _images/anim.gif (figure #gif): unknown format GIF (the book's figures are PNG)",
    ]
    assert len(problems) == len(expected), problems
    for got, want in zip(problems, expected):
        assert got.startswith(want), (got, want)


def test_outputs(tmp_path, browser):
    body = "\n".join([
        code_cell("raise ValueError", '<div class="output traceback highlight-ipythontb"><pre>'
                  "ValueError                                Traceback (most recent call last)</pre></div>"),
        code_cell("print(err)", '<div class="output stream"><pre>Traceback (most recent call last):\n'
                  '  File "x.py", line 1\nKeyError: 1</pre></div>'),
        code_cell("x = 1", ""),
        code_cell("style_only()", "<style>.a { color: red; }</style>"),
        code_cell("fig", '<img src="nowhere.png" width="100" height="50" alt="">'),
        code_cell("print(1)", '<div class="output stream"><pre>1</pre></div>'),
        '<p>A traceback is what Python prints when a cell fails.</p>',
        f"<details><summary>folded</summary>{code_cell('y = 2', '')}</details>",
    ])
    page = write(tmp_path, "p.html", body)
    pagecheck.open_page(browser, tmp_path, page)
    problems = pagecheck.check_outputs(browser, page)
    assert problems == [
        'p.html#s1: error output "ValueError Traceback (most recent call last)"',
        'p.html#s1: traceback shown "Traceback (most recent call last): File "x.py", line 1 KeyError: 1"',
        'p.html#s1: empty output of code "x = 1"',
        'p.html#s1: empty output of code "style_only()"',
    ], problems


def test_links(tmp_path, browser):
    write(tmp_path, "book/b.html", '<h2 id="there">There</h2><a name="old-anchor"></a>')
    write(tmp_path, "index.html", "<p>index</p>")
    body = "\n".join([
        '<p id="here"><a href="b.html#there">good</a> <a href="b.html?x=1#there">good query</a>',
        '<a href="b.html#old-anchor">good name</a> <a href="#here">self</a> <a href="#">top</a>',
        '<a href="../index.html">up</a> <a href="../">folder</a> <a href="https://example.org/nope">web</a>',
        '<a href="mailto:someone@example.org">mail</a></p>',
        '<p><a href="b.html#gone">bad anchor</a> <a href="missing.html">bad file</a>',
        '<a href="missing.html">bad file</a> <a href="#nowhere">bad self</a></p>',
    ])
    page = write(tmp_path, "book/a.html", body)
    pagecheck.open_page(browser, tmp_path, page)
    problems = pagecheck.check_links(browser, tmp_path, page, {})
    assert problems == [
        "book/a.html: link \"bad anchor\" -> b.html#gone: no id 'gone' in book/b.html",
        'book/a.html: link "bad file" -> missing.html (2 links): no file book/missing.html',
        "book/a.html: link \"bad self\" -> #nowhere: no id 'nowhere' in book/a.html",
    ], problems


def test_redirect_page(tmp_path, browser):
    write(tmp_path, "book/intro.html", "<p>intro</p>")
    (tmp_path / "index.html").write_text('<meta http-equiv="Refresh" content="0; url=book/intro.html" />')
    (tmp_path / "old.html").write_text('<meta http-equiv="Refresh" content="0; url=book/gone.html" />')
    assert pagecheck.check_page(browser, tmp_path, "index.html") == []
    assert pagecheck.check_page(browser, tmp_path, "old.html") == [
        'old.html: link "meta refresh" -> book/gone.html: no file book/gone.html']


def test_clean_page_passes(tmp_path, browser):
    png(tmp_path / "_images/fig.png", size=(600, 300), min_text_px=24)
    body = "\n".join([
        "<p>Some prose with a <a href='#s1'>link to this section</a>.</p>",
        code_cell("fig = plot()", '<div class="output stream"><pre>done</pre></div>'),
        '<figure id="fig-x"><img src="_images/fig.png" width="300" alt="a figure"><figcaption><p>'
        '<span class="caption-number">Fig. 1 </span><span class="caption-text">What it shows.</span>'
        "</p></figcaption></figure>",
        "<table><thead><tr><th>method</th><th>gap</th></tr></thead><tr><td>megu</td><td>0.1</td></tr></table>",
    ])
    page = write(tmp_path, "p.html", body)
    assert pagecheck.check_page(browser, tmp_path, page, {}) == []
