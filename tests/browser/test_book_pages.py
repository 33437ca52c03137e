"""Every page of the built book at 1280 px in headless Chromium: nothing overflows its column,
figures are legible (text at or above pagecheck.MIN_TEXT_PX) and captioned, no traceback or
empty output, no broken internal link. ``--book-html DIR`` picks the book (conftest.py)."""
import pagecheck
import pytest


def test_page(page, book_html, browser, ids_cache):
    problems = pagecheck.check_page(browser, book_html, page, ids_cache)
    if problems:
        pytest.fail(f"{len(problems)} problem(s) at 1280 px:\n" + "\n".join(problems), pytrace=False)
