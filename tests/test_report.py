"""Issue 19, the results report: a self-contained page, checked as written and in a real browser.

The browser test loads the page in headless Chromium (Debian's ``chromium`` package; ``.ci/run``
installs it) and is skipped, with the reason, where none is installed.
"""

from __future__ import annotations

import html.parser
import json
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pytest

from restorekit import report as reports
from restorekit._browser import find_browser, run_in_page, screenshot
from restorekit.data.io import read_image
from restorekit.data.pairs import PairedSet
from restorekit.evaluation import evaluate
from restorekit.model_file import save_model
from restorekit.registries import BACKBONES
from restorekit.report import PAGE, WORST
from restorekit.testing import make_paired_folder

ROOT = Path(__file__).resolve().parents[1]
SPEC = {"type": "hagg", "channels": 4, "num_blocks": 2}


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    import torch

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("run")
    # A run folder's config names the soft-label filter: the report's mean table shows it as a baseline.
    (folder / "config.yaml").write_text("method: dt\ndt:\n  soft_label: {type: median, kernel_size: 3}\n")
    return save_model(folder / "model.safetensors", {"backbone": BACKBONES.build(SPEC)}, {"backbone": SPEC})


@pytest.fixture(scope="module")
def paired(tmp_path_factory) -> Path:
    return make_paired_folder(tmp_path_factory.mktemp("data") / "paired", n=7, size=40)


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "restorekit", *args], capture_output=True, text=True, cwd=ROOT)


class Links(html.parser.HTMLParser):
    """Every src and href of a page, and the ids of its sections."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.ids: list[str] = []

    def handle_starttag(self, tag, attrs):
        for key, value in attrs:
            if key in ("src", "href") and value is not None:
                self.links.append(value)
            if key == "id":
                self.ids.append(value)


def links_of(page: Path) -> Links:
    parser = Links()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser


def assert_self_contained(page: Path) -> list[str]:
    text = page.read_text(encoding="utf-8")
    assert "http://" not in text and "https://" not in text and "@import" not in text and "url(" not in text
    links = links_of(page).links
    for link in links:
        parsed = urlparse(link)
        assert not parsed.scheme and not parsed.netloc and not link.startswith("/"), link
        assert (page.parent / link).is_file(), link
    return links


@pytest.fixture(scope="module")
def test_report(model, paired, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report")
    done = run_cli("test", "--checkpoint", str(model.parent), "--data", str(paired), "--report", str(out),
                   "--csv", str(out / "scores.csv"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"report: {out / PAGE}" in done.stdout
    return out / PAGE


# --------------------------------------------------------------------------- the page as written
def test_test_report_is_self_contained_with_means_worst_and_every_image(test_report, paired):
    links = assert_self_contained(test_report)
    images = [link for link in links if link.endswith(".png")]
    # input, restored and truth of 7 pairs, each linked (the five worst are shown twice)
    assert len(set(images)) == 3 * 7
    for link in set(images):
        assert read_image(test_report.parent / link).shape == (40, 40, 3)
    text = test_report.read_text()
    assert ["means", "worst", "images"] == [i for i in links_of(test_report).ids if i in ("means", "worst", "images")]
    assert "median filter (soft label)" in text and "degraded input" in text and f"The {WORST} worst images" in text


def test_the_report_scores_agree_with_the_csv_and_the_worst_come_first(test_report):
    import csv

    rows = list(csv.DictReader((test_report.parent / "scores.csv").open()))
    by_psnr = [r["image"] for r in sorted(rows, key=lambda r: float(r["psnr_y"]))][:WORST]
    text = test_report.read_text()
    worst = text[text.index('id="worst"') : text.index('id="images"')]
    shown = [worst.index(f"{rank}. {name}<") for rank, name in enumerate(by_psnr, start=1)]
    assert shown == sorted(shown)
    table = text[text.index('id="images"') :]
    shown_scores = dict(re.findall(r'data-name="([^"]+)" data-psnry="([^"]+)"', table))
    assert shown_scores.keys() == {r["image"] for r in rows}
    for row in rows:
        assert float(shown_scores[row["image"]]) == pytest.approx(float(row["psnr_y"]), abs=1e-5)


def test_restore_report_has_sliders_and_no_scores(model, paired, tmp_path):
    out = tmp_path / "report"
    done = run_cli("restore", "--checkpoint", str(model), "--input", str(paired / "rain"), "--output",
                   str(tmp_path / "restored"), "--report", str(out))
    assert done.returncode == 0, done.stdout + done.stderr
    links = assert_self_contained(out / PAGE)
    assert len({link for link in links if link.endswith(".png")}) == 2 * 7  # input and restored, no truth
    text = (out / PAGE).read_text()
    assert 'id="worst"' not in text and "PSNR" not in text and "mean change" in text
    assert text.count('<figure class="compare"') == 7


def test_several_test_sets_get_a_page_each_and_an_index(model, paired, tmp_path):
    other = make_paired_folder(tmp_path / "other", n=2, size=32)
    out = tmp_path / "report"
    done = run_cli("test", "--checkpoint", str(model), "--data", str(paired), str(other), "--report", str(out))
    assert done.returncode == 0, done.stdout + done.stderr
    assert assert_self_contained(out / PAGE) == ["paired/index.html", "other/index.html"]
    assert_self_contained(out / "other" / PAGE)


def test_report_classes_from_python(model, paired, tmp_path):
    from restorekit.inference import Restorer
    from restorekit.model_file import load_model

    pairs = PairedSet(paired, limit=3)
    restorer = Restorer(load_model(model).backbone)
    report = reports.TestReport(tmp_path / "t", pairs.pairs, title="three pairs", facts=[("model", "untrained")])
    result = evaluate(pairs, restorer, "network", on_image=report.on_image)
    page, rows = report.finish(result)
    assert [r.role for r in rows] == ["input", "network"] and rows[-1].means == result.means
    assert page.read_text().count("<tr data-index=") == 3
    photos = reports.RestoreReport(tmp_path / "r", paired / "rain", "photos")
    image = read_image(paired / "rain" / "p000.png")
    photos.on_image(paired / "rain" / "p000.png", image, np.zeros_like(image))
    text = photos.finish().read_text()
    assert "p000.png" in text and f"{float(image.mean()):.1f}" in text  # how much the 'network' changed it


# --------------------------------------------------------------------------- in a real browser
CHECK = r"""
document.querySelectorAll('img').forEach(function (img) { img.loading = 'eager'; });
window.addEventListener('load', function () {
  var images = Array.prototype.slice.call(document.images);
  var broken = images.filter(function (i) { return !(i.complete && i.naturalWidth > 0); })
                     .map(function (i) { return i.getAttribute('src'); });
  var figure = document.querySelector('#worst figure.compare');
  var range = figure.querySelector('input[type=range]');
  var frame = figure.querySelector('.frame'), divider = figure.querySelector('.divider');
  var before = figure.querySelector('img.input');
  function moveTo(value) {
    range.value = value;
    range.dispatchEvent(new Event('input', {bubbles: true}));
    var f = frame.getBoundingClientRect(), d = divider.getBoundingClientRect();
    return {divider: (d.left + d.width / 2 - f.left) / f.width, clip: getComputedStyle(before).clipPath};
  }
  var positions = [moveTo(20), moveTo(75)];
  var truth = figure.querySelector('img.truth'), toggle = figure.querySelector('button.truth-toggle');
  var shown = function () { return [getComputedStyle(before).display, getComputedStyle(truth).display]; };
  var beforeToggle = shown();
  toggle.click();
  var afterToggle = shown();
  var table = document.querySelector('table.sortable');
  var header = table.querySelector('th[data-key=psnry] button');
  var column = function () {
    return Array.prototype.map.call(table.tBodies[0].rows, function (r) { return parseFloat(r.dataset.psnry); });
  };
  header.click();
  var ascending = column();
  header.click();
  var descending = column();
  report({images: images.length, broken: broken, positions: positions, beforeToggle: beforeToggle,
          afterToggle: afterToggle, pressed: toggle.getAttribute('aria-pressed'), ascending: ascending,
          descending: descending, width: frame.getBoundingClientRect().width});
});
"""


@pytest.fixture(scope="module")
def browser() -> str:
    found = find_browser()
    if found is None:
        pytest.skip("no headless Chromium here (Debian: apt-get install chromium; or set RESTOREKIT_BROWSER): "
                    "the report was NOT checked in a browser")
    return found


def test_the_report_works_in_a_real_browser(test_report, browser, tmp_path):
    result = run_in_page(test_report, CHECK, browser=browser)
    # every picture decoded: 3 per pair in the table, 3 per pair again in the worst section
    assert result["images"] == 3 * 7 + 3 * WORST and result["broken"] == []
    # the slider moves the divider and the clip of the input with it
    (at20, at75) = result["positions"]
    assert at20["divider"] == pytest.approx(0.20, abs=0.01) and at75["divider"] == pytest.approx(0.75, abs=0.01)
    # the input is clipped to the left of the divider: inset(top right bottom left), right = 100% - position
    right_insets = [float(re.match(r"inset\(\S+ ([\d.]+)%", p["clip"]).group(1)) for p in (at20, at75)]
    assert right_insets == [80, 25]
    # the truth is one click away
    assert result["beforeToggle"] == ["block", "none"] and result["afterToggle"] == ["none", "block"]
    assert result["pressed"] == "true"
    # the per-image rows sort by a click on a header, and back
    assert result["ascending"] == sorted(result["ascending"]) and len(result["ascending"]) == 7
    assert result["descending"] == sorted(result["ascending"], reverse=True)
    assert result["width"] >= 320  # 40-pixel test images are shown enlarged

    shot = screenshot(test_report, tmp_path / "report.png", width=1200, height=900, browser=browser)
    picture = read_image(shot)
    assert picture.shape == (900, 1200, 3) and picture.std() > 20  # drawn, not blank
    print(f"screenshot of the report: {shot}")


def test_the_browser_reports_a_page_that_breaks(tmp_path, browser):
    page = tmp_path / PAGE
    page.write_text('<html><body><img src="missing.png"></body></html>')
    script = "window.addEventListener('load', function () { report(document.images[0].naturalWidth); });"
    assert run_in_page(page, script, browser=browser) == 0  # a missing image is seen as one
    assert json.loads(json.dumps(run_in_page(page, "report({ok: 1});", browser=browser))) == {"ok": 1}


def test_names_and_facts_are_escaped(tmp_path):
    folder = reports.ReportFolder(tmp_path)
    image = np.full((8, 8, 3), 100, np.uint8)
    entry = folder.add('a"<b>&c/ü', image, image)
    page = folder.write_page(reports.render_page("<title>", [("x", "<script>alert(1)</script>")], folder.images))
    text = page.read_text()
    assert "<script>alert(1)" not in text and "&lt;script&gt;" in text and "&lt;title&gt;" in text
    assert 'data-name="a&quot;&lt;b&gt;&amp;c/ü"' in text
    assert entry.input == "images/00000-a_b_c-input.png" and (tmp_path / entry.input).is_file()
    assert_self_contained(page)
