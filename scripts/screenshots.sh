#!/usr/bin/env bash
# Screenshot every page of a built book with headless Chromium (Debian: apt-get install chromium),
# to look at it as a reader would:  scripts/screenshots.sh [BUILD_HTML_DIR] [OUT_DIR] [HEIGHT]
set -euo pipefail
html=${1:-book/_build/html}
out=${2:-.cache/screenshots}
height=${3:-6000}
browser=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
[ -n "$browser" ] || { echo "no chromium found: apt-get install chromium" >&2; exit 1; }
[ -d "$html" ] || { echo "no built book at $html: run make book (or make test for the smoke book)" >&2; exit 1; }
mkdir -p "$out"
find "$html" -name '*.html' -not -path '*/_static/*' -not -name 'genindex.html' -not -name 'search.html' \
     -not -name 'py-modindex.html' | sort | while read -r page; do
  name=$(realpath --relative-to="$html" "$page" | tr '/' '_' | sed 's/\.html$//')
  "$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1280,"$height" \
    --screenshot="$out/$name.png" "file://$(realpath "$page")" >/dev/null 2>&1
  echo "$out/$name.png"
done
