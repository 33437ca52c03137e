"""The browser test of the built book: ``--book-html DIR`` (default: the smoke book that
``make test-book`` builds), one headless Chromium for the session, one test per page."""
from pathlib import Path

import pagecheck
import pytest

DEFAULT_BOOK = ".cache/book-smoke/book/_build/html"


def pytest_addoption(parser):
    parser.addoption("--book-html", default=None, metavar="DIR",
                     help=f"the built book's HTML folder for tests/browser (default: {DEFAULT_BOOK})")


def book_root(config) -> Path:
    given = config.getoption("book_html", default=None)
    return Path(given).resolve() if given else (config.rootpath / DEFAULT_BOOK).resolve()


def pytest_generate_tests(metafunc):
    """One test per content page of the book; a single failing 'no-book' test when there is none."""
    if "page" in metafunc.fixturenames:
        root = book_root(metafunc.config)
        pages = pagecheck.content_pages(root) if root.is_dir() else []
        metafunc.parametrize("page", pages or [None], ids=pages or ["no-book"])


@pytest.fixture(scope="session")
def book_html(request) -> Path:
    root = book_root(request.config)
    if not root.is_dir() or not pagecheck.content_pages(root):
        pytest.fail(f"no built book at {root}: build it with `make test-book` (the smoke book) "
                    "or `make book`, or pass --book-html DIR", pytrace=False)
    return root


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium at 1280 x 900 for the whole session; fails (never skips) when
    Chromium, chromedriver or selenium is missing."""
    try:
        driver = pagecheck.make_driver()
    except pagecheck.BrowserMissing as e:
        pytest.fail(str(e), pytrace=False)
    yield driver
    driver.quit()


@pytest.fixture(scope="session")
def ids_cache() -> dict:
    """The anchors of each HTML file, parsed once per session."""
    return {}
