#!/usr/bin/env bash
# Headless-Chromium check of the HTML audit report (issue 23, item 7). Audits bundled data
# (Cleveland heart, Adult), then for each report, at a desktop (1400 px) and a phone (400 px)
# width:
#   - measures, in the browser, every SVG text's rendered box (real fonts, rotation, scaling)
#     against its chart's box, and the page's width against the window (nothing may stick out
#     but the scroll boxes meant to scroll), by loading a copy of the report with a small
#     script appended (the report itself has no scripts) and reading the DOM it leaves;
#   - writes a full-page PNG screenshot for a person to look at.
# Exits 1 naming each text that sticks out; exits 0 with a notice when Chromium is absent
# (Debian: apt-get install chromium).
# Usage: tests/clients/html_screenshots.sh PRIVSYNTH_BINARY [OUT_DIR]
#        HTML_REPORTS="a.html b.html" tests/clients/html_screenshots.sh - [OUT_DIR]  (check given pages)
set -euo pipefail
cd "$(dirname "$0")/../.."
bin="${1:?usage: tests/clients/html_screenshots.sh PRIVSYNTH_BINARY [OUT_DIR]}"
# Without OUT_DIR the pages and screenshots go to a temporary folder removed at the end.
out="${2:-}"
browser="$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)"
if [ -z "$browser" ]; then
  echo "html_screenshots: no Chromium found, skipped (apt-get install chromium)"
  exit 0
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
if [ -z "$out" ]; then out="$work/out"; fi
mkdir -p "$out"
chrome() {
  # --no-sandbox: CI containers run as root; the pages are our own files.
  "$browser" --headless=new --no-sandbox --disable-gpu --hide-scrollbars --no-first-run \
    --disable-extensions --mute-audio "$@" 2>/dev/null
}

reports=()
if [ -n "${HTML_REPORTS:-}" ]; then
  for f in $HTML_REPORTS; do
    name="$(basename "$f" .html)"; cp "$f" "$out/$name.html"; reports+=("$name")
  done
else
  # Audits: exit 1 is a failed gate (a DP table at epsilon 1 may fail fidelity gates), not an error.
  audit() { "$@" || [ $? -eq 1 ]; }
  audit "$bin" synth data/uci-heart-disease/processed.cleveland.data --schema schemas/heart.yaml \
    --epsilon 1 -o "$work/heart.csv" --ledger "$work/l.jsonl" --seed 3 --audit-holdout 0.5 \
    --html "$out/heart.html" -q >"$work/log" 2>&1 || { cat "$work/log"; exit 1; }
  audit "$bin" synth data/adult/adult.csv --schema schemas/adult.yaml --epsilon 1 --mechanism mst \
    -o "$work/adult.csv" --ledger "$work/l.jsonl" --seed 4 --audit-holdout 0.5 \
    --html "$out/adult.html" -q >"$work/log" 2>&1 || { cat "$work/log"; exit 1; }
  reports=(heart adult)
fi

# The measuring script: one line per text outside its svg, then a summary line.
probe="$(cat <<'JS'
<script>
(function () {
  var bad = [], n = 0;
  document.querySelectorAll("svg").forEach(function (svg) {
    var b = svg.getBoundingClientRect();
    var name = (svg.querySelector("title") || {}).textContent || "";
    svg.querySelectorAll("text").forEach(function (t) {
      var r = t.getBoundingClientRect(); n++;
      if (r.left < b.left - 1 || r.right > b.right + 1 || r.top < b.top - 1 || r.bottom > b.bottom + 1)
        bad.push("OUTSIDE chart [" + name + "]: text [" + t.textContent + "] box " +
          [r.left, r.top, r.right, r.bottom].map(Math.round) + " chart " + [b.left, b.top, b.right, b.bottom].map(Math.round));
    });
  });
  var w = document.documentElement.scrollWidth, v = window.innerWidth;
  if (w > v + 1) bad.push("PAGE wider than the window: " + w + " > " + v);
  var pre = document.createElement("pre"); pre.id = "probe";
  var nl = String.fromCharCode(10);
  pre.textContent = bad.join(nl) + nl + "PROBE texts=" + n + " problems=" + bad.length;
  document.body.appendChild(pre);
})();
</script>
JS
)"

fail=0
for report in "${reports[@]}"; do
  { sed 's#</body></html>$##' "$out/$report.html"; printf '%s\n' "$probe" '</body></html>'; } >"$work/$report.probe.html"
  for width in 1400 400; do
    dom="$(chrome --window-size="$width,900" --virtual-time-budget=3000 --dump-dom "file://$work/$report.probe.html")"
    summary="$(grep -Eo 'PROBE texts=[0-9]+ problems=[0-9]+' <<<"$dom" || true)"
    if [ -z "$summary" ]; then
      echo "html_screenshots: $report at $width px: the probe did not run"; fail=1; continue
    fi
    echo "html_screenshots: $report at $width px: $summary"
    if ! grep -q 'problems=0$' <<<"$summary"; then
      awk '/<pre id="probe">/{f=1} f' <<<"$dom" | grep -Eo '(OUTSIDE|PAGE) .*' | head -20
      fail=1
    fi
    # Full-page screenshots (a tall window; the page is shorter, the rest is white).
    chrome --window-size="$width,$(( width < 800 ? 16000 : 9000 ))" --screenshot="$out/$report-$width.png" "file://$out/$report.html" >/dev/null
  done
done
[ -n "${2:-}" ] && echo "html_screenshots: screenshots in $out"
exit $fail
