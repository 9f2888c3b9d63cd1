"""Results reports: one self-contained HTML page per test set or folder of photos, to judge by eye.

``restorekit test ... --report DIR`` and ``restorekit restore ... --report DIR`` write
``DIR/index.html`` with the images beside it in ``DIR/images/`` (lossless PNG: a report that
added compression artefacts would misjudge the restoration). The page is plain HTML with its
CSS and a little JavaScript inlined (``restorekit/report_assets/``): no CDN, no web font,
nothing fetched, so it works from ``file://``, offline, and as a folder sent to someone.

A test report holds:

* the mean table: the degraded input, the baselines (the soft-label filter the model was
  trained against, when the run folder's ``config.yaml`` names one) and the network, PSNR and
  SSIM on Y and RGB;
* the five worst images (lowest PSNR-Y after restoration) first, in a section of their own;
* every image in a table sortable by any column (click a header), each with a before/after
  slider (input | restored: drag across the picture, or focus it and use the arrow keys), its
  scores, its gain over the input, and a button that swaps the input for the ground truth.

A restore report (real photos: no truth, so no scores) holds the sliders and a table sortable
by name, size and how much the network changed each photo (the mean absolute difference
between input and output, in grey levels: a photo the network left untouched, or changed
wholesale, stands out).
"""

from __future__ import annotations

import datetime
import html
import json
import math
import re
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__, _atomic
from .data.io import write_image
from .metrics import ImageScores

__all__ = [
    "ReportImage",
    "MeanRow",
    "ReportFolder",
    "TestReport",
    "RestoreReport",
    "render_page",
    "write_index",
    "run_baselines",
    "model_facts",
    "open_test_report",
    "open_restore_report",
    "WORST",
    "PAGE",
]

#: How many of the worst images the page shows first.
WORST = 5
#: The page's file name in the report folder.
PAGE = "index.html"
IMAGES = "images"
#: Pictures narrower than this are shown enlarged (pixelated), so small test crops can be judged.
MIN_SHOWN = 320
#: Pictures are shown at most this wide; the full-size file is one click away.
MAX_SHOWN = 640


@dataclass
class ReportImage:
    """One image of a report: its files (relative to the page), its size and, for a test, its scores."""

    index: int
    name: str
    width: int
    height: int
    input: str
    restored: str
    truth: str | None = None
    scores: ImageScores | None = None
    input_scores: ImageScores | None = None
    #: Mean absolute difference between input and restored image, in grey levels (0-255).
    change: float = 0.0

    @property
    def gain(self) -> float | None:
        """PSNR-Y of the restored image minus that of the input (dB)."""
        if self.scores is None or self.input_scores is None:
            return None
        return self.scores.psnr_y - self.input_scores.psnr_y


@dataclass
class MeanRow:
    """One row of the mean table: a label, its role (``input``, ``baseline``, ``network``) and its means."""

    label: str
    role: str
    means: Mapping[str, float]


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._")[:80] or "image"


class ReportFolder:
    """The ``images/`` of a report: writes each image's PNGs in a background thread as they come.

    Args:
        folder: the report folder (made if missing).
        pending: images waiting to be encoded at most (bounds the memory a large folder costs).
    """

    def __init__(self, folder: str | Path, *, pending: int = 4) -> None:
        self.folder = Path(folder)
        (self.folder / IMAGES).mkdir(parents=True, exist_ok=True)
        self.images: list[ReportImage] = []
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="report-write")
        self._pending: list[Future[None]] = []
        self._limit = pending

    def add(
        self, name: str, degraded: np.ndarray, restored: np.ndarray, truth: np.ndarray | None = None
    ) -> ReportImage:
        """Write one image's input, restored and (for a test) truth PNGs; returns its entry."""
        index = len(self.images)
        stem = f"{IMAGES}/{index:05d}-{_slug(name)}"
        files = {"input": degraded, "restored": restored, **({"truth": truth} if truth is not None else {})}
        change = float(np.abs(restored.astype(np.int16) - degraded.astype(np.int16)).mean())
        entry = ReportImage(
            index, name, degraded.shape[1], degraded.shape[0], f"{stem}-input.png", f"{stem}-restored.png",
            f"{stem}-truth.png" if truth is not None else None, change=change,
        )
        self.images.append(entry)
        while len(self._pending) >= self._limit:
            self._pending.pop(0).result()  # an encoding error (disk full...) stops the report
        self._pending.append(self._pool.submit(self._write, stem, files))
        return entry

    def _write(self, stem: str, files: Mapping[str, np.ndarray]) -> None:
        for kind, image in files.items():
            write_image(self.folder / f"{stem}-{kind}.png", image)

    def close(self) -> None:
        """Wait for every image to be written."""
        try:
            for pending in self._pending:
                pending.result()
        finally:
            self._pending = []
            self._pool.shutdown(wait=True)

    def write_page(self, text: str) -> Path:
        """Write the page (atomically) once every image is on disk."""
        self.close()
        path = self.folder / PAGE
        _atomic.write_text(path, text)
        return path


# --------------------------------------------------------------------------- the page
def _asset(name: str) -> str:
    return resources.files("restorekit").joinpath("report_assets", name).read_text(encoding="utf-8")


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _number(value: float | None, digits: int) -> str:
    if value is None or math.isnan(value):
        return "–"
    if math.isinf(value):
        return "∞"
    return f"{value:.{digits}f}"


def _data_value(value: float | None) -> str:
    """A score for a ``data-*`` attribute that JavaScript's parseFloat reads (``Infinity`` included)."""
    if value is None or math.isnan(value):
        return ""
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return repr(float(value))


def _compare(image: ReportImage, *, eager: bool) -> str:
    """A before/after slider of one image (input | restored), with the truth one click away."""
    shown = max(MIN_SHOWN, min(MAX_SHOWN, image.width))
    upscaled = " upscaled" if shown > image.width else ""
    loading = "eager" if eager else "lazy"
    size = f'width="{image.width}" height="{image.height}"'
    name = _e(image.name)
    parts = [
        f'<figure class="compare" style="--w: {shown}px; width: min(100%, {shown}px)" data-name="{name}">',
        '<div class="frame">',
        f'<img class="after{upscaled}" src="{_e(image.restored)}" alt="{name}: restored" {size} loading="{loading}">',
        f'<img class="before input{upscaled}" src="{_e(image.input)}" alt="{name}: input" {size} loading="{loading}">',
    ]
    if image.truth is not None:
        parts.append(
            f'<img class="before truth{upscaled}" src="{_e(image.truth)}" alt="{name}: ground truth" {size} '
            f'loading="{loading}">'
        )
    left = '<span class="input-word">input</span>' + ('<span class="truth-word">truth</span>' if image.truth else "")
    parts += [
        '<span class="divider" aria-hidden="true"></span>',
        f'<span class="tag left">{left}</span><span class="tag right">restored</span>',
        f'<input type="range" min="0" max="100" step="0.5" value="50" aria-label="{name}: slide between the '
        f'{"input (or truth)" if image.truth else "input"} on the left and the restored image on the right">',
        '<span class="focus-ring"></span>',
        "</div>",
        "<figcaption>",
        f'<span>{image.width}×{image.height}</span>',
    ]
    if image.truth is not None:
        parts.append('<button type="button" class="truth-toggle" aria-pressed="false">compare with the truth</button>')
    parts.append(f'<a href="{_e(image.restored)}">restored, full size</a>')
    parts += ["</figcaption>", "</figure>"]
    return "".join(parts)


_SCORE_COLUMNS = (
    ("psnry", "PSNR-Y (dB)", "psnr_y", 2),
    ("ssimy", "SSIM-Y", "ssim_y", 4),
    ("psnrrgb", "PSNR-RGB (dB)", "psnr_rgb", 2),
    ("ssimrgb", "SSIM-RGB", "ssim_rgb", 4),
)


def _means_table(rows: Sequence[MeanRow]) -> str:
    out = [
        '<table class="means"><thead><tr><th class="text">restoration</th>',
        *(f"<th>{_e(title)}</th>" for _, title, _, _ in _SCORE_COLUMNS),
        "</tr></thead><tbody>",
    ]
    for row in rows:
        cells = "".join(f"<td>{_number(row.means.get(key), digits)}</td>" for _, _, key, digits in _SCORE_COLUMNS)
        out.append(f'<tr class="{_e(row.role)}"><td class="text">{_e(row.label)}</td>{cells}</tr>')
    out.append("</tbody></table>")
    return "".join(out)


def _score_line(image: ReportImage) -> str:
    if image.scores is None:
        return f"changed by {image.change:.1f} grey levels on average"
    gain = image.gain
    text = f"PSNR-Y {_number(image.scores.psnr_y, 2)} dB, SSIM-Y {_number(image.scores.ssim_y, 4)}"
    if gain is not None:
        text += f" ({'+' if gain >= 0 else ''}{_number(gain, 2)} dB over the input)"
    return text


def _worst_section(images: Sequence[ReportImage]) -> str:
    scored = [i for i in images if i.scores is not None]
    worst = sorted(scored, key=lambda i: (i.scores.psnr_y, i.index))[:WORST]  # type: ignore[union-attr]
    if not worst:
        return ""
    out = [
        f'<section id="worst"><h2>The {len(worst)} worst image{"s" if len(worst) != 1 else ""}</h2>',
        '<p class="note">Lowest PSNR-Y after restoration, worst first. Drag across a picture to compare the input '
        "with the restored image; the button swaps the input for the ground truth.</p>",
        '<div class="cards">',
    ]
    for rank, image in enumerate(worst, start=1):
        out.append(
            f'<article class="card"><h3>{rank}. {_e(image.name)}</h3>{_compare(image, eager=True)}'
            f'<p class="scores">{_e(_score_line(image))}</p></article>'
        )
    out.append("</div></section>")
    return "".join(out)


def _image_table(images: Sequence[ReportImage], scored: bool) -> str:
    headers = [("index", "#", "number", False), ("name", "image", "text", True)]
    if scored:
        headers += [(key, title, "number", False) for key, title, _, _ in _SCORE_COLUMNS]
        headers += [("inputpsnry", "input PSNR-Y (dB)", "number", False), ("gain", "gain (dB)", "number", False)]
    else:
        headers += [
            ("pixels", "size (pixels)", "number", False),
            ("change", "mean change (grey levels)", "number", False),
        ]
    out = ['<table class="sortable images"><thead><tr>']
    for key, title, kind, text in headers:
        sort = "ascending" if key == "index" else "none"
        css = ' class="text"' if text else ""
        button = f'<button type="button">{_e(title)}</button>'
        out.append(f'<th data-key="{key}" data-type="{kind}" aria-sort="{sort}"{css}>{button}</th>')
        if key == "name":
            out.append('<th class="text">input | restored</th>')
    out.append("</tr></thead><tbody>")
    for image in images:
        data = {"index": str(image.index), "name": image.name}
        cells = [f"<td>{image.index + 1}</td>", f'<td class="text">{_e(image.name)}</td>',
                 f'<td class="compare-cell">{_compare(image, eager=False)}</td>']
        if scored and image.scores is not None:
            for key, _, attr, digits in _SCORE_COLUMNS:
                value = getattr(image.scores, attr)
                data[key] = _data_value(value)
                cells.append(f"<td>{_number(value, digits)}</td>")
            input_psnr = image.input_scores.psnr_y if image.input_scores is not None else None
            gain = image.gain
            data["inputpsnry"], data["gain"] = _data_value(input_psnr), _data_value(gain)
            up = gain is not None and math.isfinite(gain) and gain > 0
            down = gain is not None and math.isfinite(gain) and gain < 0
            trend = " up" if up else " down" if down else ""
            cells.append(f"<td>{_number(input_psnr, 2)}</td>")
            cells.append(f'<td class="gain{trend}">{"+" if up else ""}{_number(gain, 2)}</td>')
        elif not scored:
            data["pixels"], data["change"] = str(image.width * image.height), _data_value(image.change)
            cells.append(f"<td>{image.width}×{image.height}</td>")
            cells.append(f"<td>{image.change:.1f}</td>")
        attributes = " ".join(f'data-{key}="{_e(value)}"' for key, value in data.items())
        out.append(f"<tr {attributes}>{''.join(cells)}</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def render_page(
    title: str,
    facts: Sequence[tuple[str, str]],
    images: Sequence[ReportImage],
    means: Sequence[MeanRow] | None = None,
    *,
    note: str = "",
) -> str:
    """The whole page as text: header and facts, the mean table, the worst images, every image.

    Args:
        title: the page's heading.
        facts: ``(what, value)`` lines under it (model, data, settings).
        images: the report's images (with scores for a test report).
        means: the mean table's rows (None: a report without ground truth).
        note: a paragraph under the facts.
    """
    scored = means is not None
    body = [
        f"<header><h1>{_e(title)}</h1>",
        '<dl class="facts">' + "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in facts) + "</dl>",
        f'<p class="note">{_e(note)}</p>' if note else "",
        "</header><main>",
    ]
    if scored:
        body += [
            '<section id="means"><h2>Mean scores</h2>',
            f'<p class="note">Over {len(images)} image{"s" if len(images) != 1 else ""}; PSNR and SSIM on the Y '
            "channel of YCbCr (how deraining papers report) and on RGB.</p>",
            _means_table(means or []),
            "</section>",
            _worst_section(images),
        ]
    body += [
        f'<section id="images"><h2>Every image ({len(images)})</h2>',
        '<p class="note">Click a column header to sort by it (again to reverse). Drag across a picture to move the '
        "divider between the input (left) and the restored image (right).</p>",
        _image_table(images, scored),
        "</section></main>",
        f"<footer>Made by restorekit {_e(__version__)} on {_e(datetime.datetime.now().isoformat(timespec='seconds'))}. "
        "This page and its images/ folder are self-contained: open it in any browser, offline.</footer>",
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_asset('report.css')}</style></head><body>"
        + "".join(body)
        + f"<script>{_asset('report.js')}</script></body></html>\n"
    )


def write_index(folder: str | Path, title: str, entries: Sequence[tuple[str, str, Sequence[MeanRow]]]) -> Path:
    """A page linking several reports (``restorekit test --data A B --report DIR``): ``(subfolder, title, means)``."""
    parts = [f"<header><h1>{_e(title)}</h1></header><main>"]
    for sub, heading, rows in entries:
        parts.append(f'<section><h2><a href="{_e(sub)}/{PAGE}">{_e(heading)}</a></h2>{_means_table(rows)}</section>')
    parts.append(f"</main><footer>Made by restorekit {_e(__version__)}.</footer>")
    text = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{_e(title)}</title><style>{_asset('report.css')}</style></head><body>"
        + "".join(parts)
        + "</body></html>\n"
    )
    path = Path(folder) / PAGE
    path.parent.mkdir(parents=True, exist_ok=True)
    _atomic.write_text(path, text)
    return path


# --------------------------------------------------------------------------- facts and baselines
def _yaml_inline(spec: Any) -> str:
    if isinstance(spec, Mapping):
        return "{" + ", ".join(f"{k}: {_yaml_inline(v)}" for k, v in spec.items()) + "}"
    return json.dumps(spec) if isinstance(spec, str) and (not spec or " " in spec) else str(spec)


def model_facts(loaded: Any, settings: str = "") -> list[tuple[str, str]]:
    """The page's lines about a model: its file, network, how it was trained, how it ran here."""
    info = dict(getattr(loaded, "info", {}) or {})
    trained = ", ".join(
        part for part in (
            f"method {info['method']}" if info.get("method") else "",
            f"{info['iteration']} iterations" if info.get("iteration") else "",
            f"config {info['config']}" if info.get("config") else "",
        ) if part
    )
    facts = [("model", str(loaded.path)), ("network", _yaml_inline(loaded.spec))]
    if trained:
        facts.append(("trained", trained))
    if settings:
        facts.append(("restored with", settings))
    facts.append(("command", " ".join(["restorekit", *sys.argv[1:]]) if sys.argv[1:] else "(Python)"))
    return facts


def _run_config(model_path: Path) -> dict[str, Any] | None:
    """The resolved ``config.yaml`` of the run a model file belongs to (run folder or checkpoint), if any."""
    import yaml

    for folder in (model_path.parent, *model_path.parents[1:3]):
        config = folder / "config.yaml"
        if config.is_file():
            try:
                data = yaml.safe_load(config.read_text(encoding="utf-8"))
            except (OSError, yaml.YAMLError):
                return None
            return data if isinstance(data, dict) else None
    return None


def run_baselines(model_path: str | Path) -> list[tuple[str, Callable[[np.ndarray], np.ndarray]]]:
    """The classic restorations the model was trained against: for ``dt``, its soft-label filter.

    Read from the run folder's resolved ``config.yaml`` (the same label the training's own
    final table gives it); a model file without its run folder has none.
    """
    from .registries import FILTERS

    config = _run_config(Path(model_path))
    spec = ((config or {}).get("dt") or {}).get("soft_label") if (config or {}).get("method") == "dt" else None
    if not isinstance(spec, Mapping) or "type" not in spec:
        return []
    try:
        label_filter = FILTERS.build(dict(spec), path="dt.soft_label")
    except Exception:  # a run of another installation (a plugin filter missing here): no baseline, not an error
        return []
    return [(f"{spec['type']} filter (soft label)", label_filter)]


# --------------------------------------------------------------------------- the two reports
class TestReport:
    """The report of ``restorekit test``: fed each restored image, then the scores.

    Args:
        folder: where the page and its images go.
        pairs: the test pairs (``name, degraded, clean``), as :class:`restorekit.data.pairs.PairedSet` holds them.
        title: the page's heading.
        facts: lines under the heading (:func:`model_facts` and the data).
    """

    def __init__(
        self, folder: str | Path, pairs: Iterable[tuple[str, np.ndarray, np.ndarray]], *, title: str,
        facts: Sequence[tuple[str, str]], baselines_of: str | Path | None = None, subfolder: str | None = None,
    ) -> None:
        self.out = ReportFolder(folder)
        self.title = title
        #: The model file whose run's baselines the mean table shows (:func:`run_baselines`).
        self.baselines_of = baselines_of
        #: Its folder's name under a parent report (``test --data A B --report DIR``), else None.
        self.subfolder = subfolder
        self.facts = list(facts)
        self._pairs = {name: (degraded, clean) for name, degraded, clean in pairs}
        self._entries: dict[str, ReportImage] = {}

    def on_image(self, name: str, restored: np.ndarray) -> None:
        """Called with each restored image (``evaluate(..., on_image=report.on_image)``)."""
        degraded, clean = self._pairs[name]
        self._entries[name] = self.out.add(name, degraded, restored, clean)

    def finish(
        self, network: Any, baselines: Sequence[tuple[str, Callable[[np.ndarray], np.ndarray]]] = ()
    ) -> tuple[Path, list[MeanRow]]:
        """Score the input and the baselines, write the page; ``network`` is the network's
        :class:`restorekit.evaluation.EvalResult`. Returns the page and its mean rows."""
        from .metrics import score_pair

        rows = [MeanRow("degraded input", "input", _mean_scores(
            [self._set_input_scores(name, score_pair(d, c)) for name, (d, c) in self._pairs.items()]
        ))]
        for label, restore in baselines:
            scores = [score_pair(restore(degraded), clean) for degraded, clean in self._pairs.values()]
            rows.append(MeanRow(label, "baseline", _mean_scores(scores)))
        for name, scores in network.per_image:
            if name in self._entries:
                self._entries[name].scores = scores
        rows.append(MeanRow(network.label, "network", network.means))
        return self.out.write_page(render_page(self.title, self.facts, self.out.images, rows)), rows

    def finish_and_say(self, network: Any, console: Any) -> tuple[str, str, list[MeanRow]]:
        """:meth:`finish` with the run's baselines, say where the page is; returns its entry for :func:`write_index`."""
        baselines = run_baselines(self.baselines_of) if self.baselines_of is not None else []
        page, rows = self.finish(network, baselines)
        console.print(f"report: {page}")
        return self.subfolder or ".", self.title, rows

    def _set_input_scores(self, name: str, scores: ImageScores) -> ImageScores:
        if name in self._entries:
            self._entries[name].input_scores = scores
        return scores


def _mean_scores(scores: Sequence[ImageScores]) -> dict[str, float]:
    out = {}
    for _, _, key, _ in _SCORE_COLUMNS:
        values = [getattr(s, key) for s in scores if math.isfinite(getattr(s, key))]
        out[key] = float(np.mean(values)) if values else math.inf
    return out


@dataclass
class RestoreReport:
    """The report of ``restorekit restore`` (real photos, no truth): fed each photo and its result.

    Args:
        folder: where the page and its images go.
        source: the file or folder restored (names are relative to a folder).
        title: the page's heading.
        facts: lines under the heading.
    """

    folder: str | Path
    source: Path
    title: str
    facts: Sequence[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.out = ReportFolder(self.folder)

    def on_image(self, path: Path, image: np.ndarray, restored: np.ndarray) -> None:
        """Called with each photo read and its restoration (``restore_files(..., on_image=...)``)."""
        source = Path(self.source)
        name = path.relative_to(source).as_posix() if source.is_dir() else path.name
        self.out.add(name, image, restored)

    def finish(self) -> Path:
        """Write the page."""
        note = "Real photos without ground truth: no scores. 'Mean change' is how much the network altered each photo."
        return self.out.write_page(render_page(self.title, list(self.facts), self.out.images, None, note=note))


# --------------------------------------------------------------------------- for the command line
def _settings(restorer: Any) -> str:
    parts = [str(restorer.device), restorer.precision]
    if restorer.channels_last:
        parts.append("channels-last")
    if restorer.tile:
        parts.append(f"tiles of {restorer.tile}² (overlap {restorer.margin})")
    return ", ".join(parts)


def open_test_report(
    args: Any, data: str, folder: Path, subfolder: str | None, pairs: Any, loaded: Any, restorer: Any
) -> TestReport | None:
    """The report ``restorekit test --report DIR`` writes for one ``--data`` (None without ``--report``).

    With several ``--data``, each set's page goes to ``DIR/<set name>/`` and ``DIR/index.html`` links them.
    """
    if not getattr(args, "report", None):
        return None
    target = Path(args.report) / subfolder if subfolder else Path(args.report)
    shown = data if data == str(folder) else f"{data} ({folder})"
    facts = [*model_facts(loaded, _settings(restorer)), ("data", f"{shown}: {len(pairs)} pairs")]
    title = f"{loaded.spec.get('type', 'model')} on {data}"
    return TestReport(target, pairs.pairs, title=title, facts=facts, baselines_of=loaded.path, subfolder=subfolder)


def open_restore_report(args: Any, source: Path, loaded: Any, restorer: Any) -> RestoreReport | None:
    """The report ``restorekit restore --report DIR`` writes (None without ``--report``)."""
    if not getattr(args, "report", None):
        return None
    facts = [*model_facts(loaded, _settings(restorer)), ("photos", str(source)), ("restored into", str(args.output))]
    title = f"{loaded.spec.get('type', 'model')} on {source.name or source}"
    return RestoreReport(Path(args.report), source, title, facts)
