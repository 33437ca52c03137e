"""Checks of one page of the built book as a reader sees it: headless Chromium, 1280 px wide.

Each ``check_*`` function looks at the page loaded in the driver (:func:`open_page`) and returns
a list of problems, one readable line each (page, element, what is wrong), empty when the page
is fine. Only what is visible is checked for layout (closed ``<details>``, the sidebars, the
header, the search dialog and MathJax are left alone):

- :func:`check_overflow`: a table, code block, output area or image in the article that is
  wider than its box (it scrolls sideways) or runs past the article column's right edge;
- :func:`check_images`: a figure whose smallest text, as displayed, is below
  :data:`MIN_TEXT_PX` (read from the PNG's ``megu:min_text_px`` text chunk, written by
  ``megu_lib.plotting``, scaled by displayed / natural width), or that has no caption;
- :func:`check_outputs`: a traceback on the page, or an output area that shows nothing;
- :func:`check_links`: an internal link to a file, or to a ``#fragment``, that does not exist.

The tests in this folder run them on every page (``test_book_pages.py``) and on small
synthetic pages (``test_pagecheck.py``); ``make test-book`` runs both on the smoke book.
"""
from __future__ import annotations

import base64
import io
import os
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

# The smallest text a figure may show, in CSS px: 9 pt at 96 CSS px per inch (9 * 96 / 72).
MIN_TEXT_PX = 12.0
# The PNG text chunk megu_lib.plotting writes: the smallest text's height in image pixels.
TEXT_CHUNK = "megu:min_text_px"
WINDOW = (1280, 900)
# Images smaller than this (natural size, both sides) are icons, not figures.
ICON_PX = 50
TRACEBACK = "Traceback (most recent call last)"
SKIP_NAMES = {"genindex.html", "search.html", "py-modindex.html"}
INSTALL_HINT = ("the browser test cannot start headless Chromium ({what}): "
                "apt-get install chromium chromium-driver (as root; `make browser` does it) "
                "and `make env` (selenium)")


class BrowserMissing(RuntimeError):
    """Chromium, chromedriver or selenium is not installed (the message says how to install)."""


# ---------------------------------------------------------------------------------------------
# The browser and the pages


def find_browser() -> tuple[str, str]:
    """The paths of Chromium and chromedriver, or :class:`BrowserMissing`."""
    browser = next((p for p in (shutil.which("chromium"), shutil.which("chromium-browser"),
                                "/usr/bin/chromium") if p and os.access(p, os.X_OK)), None)
    driver = next((p for p in (shutil.which("chromedriver"), "/usr/bin/chromedriver")
                   if p and os.access(p, os.X_OK)), None)
    missing = [name for name, path in (("chromium", browser), ("chromedriver", driver)) if path is None]
    if missing:
        raise BrowserMissing(INSTALL_HINT.format(what=" and ".join(missing)))
    return browser, driver


def make_driver():
    """A headless Chromium (Selenium 4, the system's chromedriver: nothing is downloaded) with a
    1280 x 900 window."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError as e:
        raise BrowserMissing(INSTALL_HINT.format(what=f"python package selenium: {e}")) from None
    browser, driver = find_browser()
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    # scrollbars kept: they take their width from the page, as on a reader's desktop
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu",
                f"--window-size={WINDOW[0]},{WINDOW[1]}", "--force-device-scale-factor=1"):
        options.add_argument(arg)
    try:
        d = webdriver.Chrome(service=Service(executable_path=driver), options=options)
    except Exception as e:  # a driver that does not match the browser, a browser that cannot start
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise BrowserMissing(INSTALL_HINT.format(what=f"Chromium did not start: {first}")) from None
    d.set_script_timeout(30)
    d.set_page_load_timeout(60)
    return d


def content_pages(root) -> list[str]:
    """Every content page of the build at ``root`` (paths relative to it, sorted): all ``.html``
    files but ``_static`` and the generated index, search and module-index pages."""
    root = Path(root)
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*.html")
                  if "_static" not in p.relative_to(root).parts and p.name not in SKIP_NAMES)


_REFRESH = re.compile(r"""<meta\s+http-equiv=["']?refresh["']?\s+content=["']?\s*\d+\s*;\s*url=([^"'>]+)""", re.I)


def redirect_target(path) -> str | None:
    """The ``url=`` of a page that is only a ``<meta http-equiv="refresh">`` redirect
    (jupyter-book's ``index.html``), else None."""
    head = Path(path).read_text(errors="replace")[:2000]
    m = _REFRESH.search(head)
    return m.group(1).strip() if m and "<article" not in head else None


def open_page(driver, root, page: str) -> None:
    """Load ``page`` (relative to ``root``) and wait until it is laid out: images loaded,
    fonts ready, MathJax typeset (at most 10 s)."""
    driver.get((Path(root).resolve() / page).as_uri())
    driver.execute_async_script("""
        const done = arguments[arguments.length - 1];
        const waits = [];
        if (document.fonts) waits.push(document.fonts.ready);
        if (window.MathJax && MathJax.startup && MathJax.startup.promise) waits.push(MathJax.startup.promise);
        for (const img of document.images) {
          img.loading = 'eager';
          if (!img.complete) waits.push(new Promise(r => {
            img.addEventListener('load', r); img.addEventListener('error', r);
          }));
        }
        Promise.race([Promise.all(waits), new Promise(r => setTimeout(r, 10000))])
          .catch(() => null)
          .then(() => requestAnimationFrame(() => requestAnimationFrame(() => done(true))));
    """)


def check_page(driver, root, page: str, ids_cache: dict | None = None) -> list[str]:
    """Every check on ``page``: load it, then overflow, images, outputs and links."""
    root = Path(root)
    target = redirect_target(root / page)
    if target is not None:  # a redirect: only its target must exist
        return _check_hrefs(root, page, [{"href": target, "text": "meta refresh", "n": 1}], ids_cache)
    open_page(driver, root, page)
    return (check_overflow(driver, page) + check_images(driver, root, page)
            + check_outputs(driver, page) + check_links(driver, root, page, ids_cache))


# ---------------------------------------------------------------------------------------------
# What the page shows, measured in the browser

# Shared JavaScript: the article column, visibility, a short snippet and the section of an element.
_JS_LIB = r"""
const ART = document.querySelector('article.bd-article') || document.querySelector('main article')
            || document.querySelector('article') || document.querySelector('main') || document.body;
function visible(el) {
  if (el.closest('details:not([open])') && !el.closest('summary')) return false;
  if (el.checkVisibility && !el.checkVisibility({checkOpacity: true, checkVisibilityCSS: true,
                                                  contentVisibilityAuto: false})) return false;
  return el.getClientRects().length > 0;
}
function snippet(el, n) {
  n = n || 50;
  let t = '';
  if (el.tagName === 'IMG') t = el.getAttribute('src') || '';
  else if (el.tagName === 'TABLE') {
    const head = el.querySelector('thead') || el.querySelector('tr');
    t = (head ? head.innerText : el.innerText);
  } else t = el.innerText || el.textContent || '';
  t = t.replace(/\s+/g, ' ').trim();
  return t.length > n ? t.slice(0, n - 1) + '\u2026' : t;
}
function where(el) {
  const s = el.closest('section[id]');
  return s ? s.id : '';
}
"""

_JS_OVERFLOW = _JS_LIB + r"""
const cs = getComputedStyle(ART), ar = ART.getBoundingClientRect();
const colRight = ar.right - parseFloat(cs.paddingRight) - parseFloat(cs.borderRightWidth);
// margin notes and full-width cells are meant to leave the column
const WIDE_OK = '.margin, aside.margin, aside.sidebar, .tag_margin, .full-width, .tag_full-width';
const found = [];
for (const el of ART.querySelectorAll('table, pre, div.highlight, .cell_output, .output, img')) {
  if (!visible(el)) continue;
  const r = el.getBoundingClientRect();
  const own = el.tagName === 'IMG' ? 0 : el.scrollWidth - el.clientWidth;
  // the nearest ancestor inside the article that clips or scrolls: the element's box to fit in
  let c = el.parentElement;
  while (c && c !== ART && getComputedStyle(c).overflowX === 'visible') c = c.parentElement;
  let boxOver = 0, boxWidth = 0;
  if (c && c !== ART) {
    const cr = c.getBoundingClientRect();
    boxWidth = c.clientWidth;
    boxOver = r.right - (cr.left + c.clientLeft + c.clientWidth);
  }
  const colOver = el.closest(WIDE_OK) ? 0 : r.right - colRight;
  const over = Math.max(own, boxOver, colOver);
  if (over <= 1) continue;
  let kind = 'output';
  if (el.tagName === 'TABLE') kind = 'table';
  else if (el.tagName === 'IMG') kind = 'image';
  else if (el.matches('pre, div.highlight')) kind = el.closest('.cell_output, .output') ? 'output text' : 'code block';
  found.push({el: el, kind: kind, text: snippet(el), where: where(el), own: own, scroll: el.scrollWidth,
              client: el.clientWidth, boxOver: boxOver, boxWidth: boxWidth, colOver: colOver,
              right: r.right, colRight: colRight, width: r.width});
}
// report the innermost culprit only (a wide table, not also the output area around it)
return found.filter(f => !found.some(g => g !== f && f.el.contains(g.el)))
            .map(f => { delete f.el; return f; });
"""

_JS_IMAGES = _JS_LIB + r"""
const out = [];
for (const img of ART.querySelectorAll('img')) {
  if (!visible(img)) continue;
  const fig = img.closest('figure');
  let caption = '';
  if (fig) {
    const fc = fig.querySelector(':scope > figcaption');
    if (fc) {
      const c = fc.cloneNode(true);
      c.querySelectorAll('.caption-number, .headerlink').forEach(n => n.remove());
      caption = c.textContent.trim();
    }
  }
  const cell = img.closest('.cell');
  const src = cell && cell.querySelector('.cell_input pre');
  out.push({figure: fig && fig.id ? fig.id : '', code: src ? snippet(src, 40) : '',
            src: img.currentSrc || img.src, attr: img.getAttribute('src') || '', complete: img.complete,
            naturalWidth: img.naturalWidth, naturalHeight: img.naturalHeight,
            clientWidth: img.clientWidth, clientHeight: img.clientHeight,
            inFigure: !!fig, caption: caption, where: where(img)});
}
return out;
"""

_JS_OUTPUTS = _JS_LIB + r"""
const PHRASE = arguments[0];
const ERR = '.traceback, .output.error, div[class*="highlight-ipythontb"]';
const tracebacks = [], texts = [], empty = [];
// myst-nb's error outputs (shown or folded)
for (const el of ART.querySelectorAll(ERR)) {
  if (el.parentElement && el.parentElement.closest(ERR)) continue;
  tracebacks.push({text: snippet(el, 70), where: where(el), shown: visible(el)});
}
// visible text with a Python traceback in it, innermost block
if ((ART.innerText || '').includes(PHRASE)) {
  const blocks = Array.from(ART.querySelectorAll('pre, p, li, td, th, dd, dt, blockquote, .cell_output, .output'))
    .filter(el => visible(el) && (el.innerText || '').includes(PHRASE));
  for (const el of blocks) {
    if (blocks.some(o => o !== el && el.contains(o))) continue;
    if (el.closest(ERR)) continue;
    texts.push({text: snippet(el, 70), where: where(el)});
  }
}
// output areas that show nothing
const MEDIA = 'img, svg, table, canvas, video, audio, iframe, object, embed, math, .math, mjx-container';
for (const el of ART.querySelectorAll('.cell_output')) {
  if (!visible(el)) continue;
  if ((el.innerText || '').trim() !== '' || el.querySelector(MEDIA)) continue;
  const cell = el.closest('.cell');
  const src = cell && cell.querySelector('.cell_input pre');
  empty.push({code: src ? snippet(src, 60) : '', where: where(el), html: (el.innerHTML || '').trim().slice(0, 80)});
}
return {tracebacks: tracebacks, texts: texts, empty: empty};
"""

_JS_LINKS = r"""
const seen = new Map();
for (const a of document.querySelectorAll('a[href]')) {
  const href = a.getAttribute('href');
  const t = (a.innerText || a.textContent || a.getAttribute('title') || '').replace(/\s+/g, ' ').trim();
  if (seen.has(href)) seen.get(href).n += 1;
  else seen.set(href, {href: href, text: t.length > 40 ? t.slice(0, 39) + '\u2026' : t, n: 1});
}
return Array.from(seen.values());
"""


def _at(page: str, where: str) -> str:
    return f"{page}#{where}" if where else page


def _quote(text: str) -> str:
    return f'"{text}"' if text else "(no text)"


def check_overflow(driver, page: str) -> list[str]:
    """Tables, code blocks, output areas and images in the article that are wider than their box
    (``scrollWidth > clientWidth + 1``, on themselves or their scroll container) or that run
    past the article column's right edge."""
    problems = []
    for f in driver.execute_script(_JS_OVERFLOW):
        why = []
        if f["own"] > 1:
            why.append(f"scrolls sideways: {f['scroll']} px of content in a {f['client']} px box")
        if f["boxOver"] > 1:
            why.append(f"{f['width']:.0f} px wide in a {f['boxWidth']} px scroll box")
        if f["colOver"] > 1:
            why.append(f"right edge {f['right']:.0f} px past the column's {f['colRight']:.0f} px")
        over = max(f["own"], f["boxOver"], f["colOver"])
        problems.append(f"{_at(page, f['where'])}: {f['kind']} {_quote(f['text'])} overflows by "
                        f"{over:.0f} px ({'; '.join(why)})")
    return problems


def _image_file(root: Path, src: str):
    """(bytes or path, label) of an image's source, or (None, reason) when it is not in the build."""
    parts = urlsplit(src)
    if parts.scheme == "data":
        head, _, data = src.partition(",")
        raw = base64.b64decode(data) if head.endswith(";base64") else unquote(data).encode()
        return io.BytesIO(raw), f"inline {head[5:].split(';')[0] or 'data'} image"
    if parts.scheme != "file":
        return None, f"image {src} is not a file of the build"
    path = Path(unquote(parts.path))
    try:
        rel = path.resolve().relative_to(root.resolve())
    except ValueError:
        return None, f"image {path} lies outside the build folder"
    return path, rel.as_posix()


def text_scale(image) -> float | None:
    """The ``megu:min_text_px`` record of an image (path or file object), None when absent;
    ValueError when it is not a number."""
    from PIL import Image
    with Image.open(image) as im:
        fmt = im.format
        if fmt not in ("PNG", "JPEG"):
            raise TypeError(fmt or "unknown")
        value = (getattr(im, "text", None) or {}).get(TEXT_CHUNK, im.info.get(TEXT_CHUNK))
    if value is None:
        return None
    return float(value)


def check_images(driver, root, page: str) -> list[str]:
    """Every visible image of the article (icons under ``_static`` and images under
    :data:`ICON_PX` left out) must load, carry its text-scale record, show its smallest text
    at :data:`MIN_TEXT_PX` or more, and sit in a ``figure`` with a non-empty ``figcaption``."""
    root = Path(root)
    problems = []
    for im in driver.execute_script(_JS_IMAGES):
        source, label = _image_file(root, im["src"])
        if isinstance(source, Path) and Path(label).parts[:1] == ("_static",):
            continue
        name = label if source is not None else im["attr"]
        if len(name) > 40:  # the build names images by a hash: its start is enough
            name = f"{name[:24]}\u2026{name[-4:]}"
        origin = (f" (figure #{im['figure']})" if im["figure"]
                  else f" (of code {_quote(im['code'])})" if im["code"] else "")
        at = f"{_at(page, im['where'])}: image {name}{origin}"
        if source is None:
            problems.append(f"{at}: {label}")
            continue
        if isinstance(source, Path) and not source.is_file():
            problems.append(f"{at}: the file does not exist")
            continue
        if im["naturalWidth"] == 0:
            problems.append(f"{at}: does not load")
            continue
        if max(im["naturalWidth"], im["naturalHeight"]) < ICON_PX:
            continue
        try:
            recorded = text_scale(source)
        except TypeError as e:
            problems.append(f"{at}: unknown format {e} (the book's figures are PNG)")
            recorded = "skip"
        except (ValueError, OSError) as e:
            problems.append(f"{at}: unreadable text-scale record ({e})")
            recorded = "skip"
        if recorded is None:
            problems.append(f"{at}: no text-scale record (save figures through megu_lib.plotting)")
        elif recorded != "skip":
            scale = im["clientWidth"] / im["naturalWidth"]
            shown = recorded * scale
            if shown < MIN_TEXT_PX - 1e-6:
                problems.append(
                    f"{at}: smallest text shown at {shown:.1f} px, below the {MIN_TEXT_PX:g} px floor "
                    f"({recorded:g} px in the image, displayed at {im['clientWidth']}/{im['naturalWidth']} px)")
        if not im["inFigure"]:
            problems.append(f"{at}: no caption (not inside a <figure>)")
        elif not im["caption"]:
            problems.append(f"{at}: no caption (its <figure> has no <figcaption> text)")
    return problems


def check_outputs(driver, page: str) -> list[str]:
    """Tracebacks (myst-nb error outputs, shown or folded, and any visible text with
    ``Traceback (most recent call last)``) and visible output areas that show nothing (no text,
    image, table, SVG or math)."""
    found = driver.execute_script(_JS_OUTPUTS, TRACEBACK)
    problems = []
    for t in found["tracebacks"]:
        folded = "" if t["shown"] else " (folded)"
        problems.append(f"{_at(page, t['where'])}: error output{folded} {_quote(t['text'])}")
    for t in found["texts"]:
        problems.append(f"{_at(page, t['where'])}: traceback shown {_quote(t['text'])}")
    for e in found["empty"]:
        after = f"of code {_quote(e['code'])}" if e["code"] else "(its code is hidden)"
        problems.append(f"{_at(page, e['where'])}: empty output {after}")
    return problems


class _Ids(HTMLParser):
    """The ids (and ``<a name>``) of an HTML file."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        for k, v in attrs:
            if v and (k == "id" or (k == "name" and tag == "a")):
                self.ids.add(v)


def page_ids(path: Path, cache: dict | None = None) -> set[str]:
    """The anchors of an HTML file (cached per file in ``cache``)."""
    key = str(Path(path).resolve())
    if cache is not None and key in cache:
        return cache[key]
    parser = _Ids()
    parser.feed(Path(path).read_text(errors="replace"))
    parser.close()
    if cache is not None:
        cache[key] = parser.ids
    return parser.ids


_EXTERNAL = re.compile(r"^(https?|mailto|tel|javascript|data|ftp|ftps):", re.I)


def _check_hrefs(root: Path, page: str, links: list[dict], ids_cache: dict | None) -> list[str]:
    problems = []
    base = (root.resolve() / page).as_uri()
    for link in links:
        href = link["href"].strip()
        if not href or href.startswith("//") or _EXTERNAL.match(href):
            continue
        url = urlsplit(urljoin(base, href))
        if url.scheme != "file":
            continue
        target = Path(unquote(url.path))
        fragment = unquote(url.fragment)
        times = f" ({link['n']} links)" if link["n"] > 1 else ""
        at = f"{page}: link {_quote(link['text'])} -> {href}{times}"
        try:
            rel = target.resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            problems.append(f"{at}: points outside the build folder")
            continue
        if target.is_dir():
            target = target / "index.html"
            rel = (Path(rel) / "index.html").as_posix()
        if not target.is_file():
            problems.append(f"{at}: no file {rel}")
            continue
        if fragment and target.suffix in (".html", ".htm") and fragment not in page_ids(target, ids_cache):
            problems.append(f"{at}: no id '{fragment}' in {rel}")
    return problems


def check_links(driver, root, page: str, ids_cache: dict | None = None) -> list[str]:
    """Every internal ``a[href]`` of the page (not http(s), mailto, ...) must name a file of the
    build and, with a ``#fragment``, an element with that id (or ``<a name>``) in it."""
    return _check_hrefs(Path(root), page, driver.execute_script(_JS_LINKS), ids_cache)
