"""Sphinx extension: write the generated reference fragments before the build reads the pages.

The generators live in :mod:`restorekit_docs.pages` and need no Sphinx, so the docs test can
run them too. Here they are hooked to ``builder-inited`` and their output goes to
``docs/generated/`` (git-ignored), which the pages ``{include}``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from . import pages  # imports no Sphinx: tests/test_docs.py uses it without Sphinx installed


def _generate(app: Any) -> None:
    from sphinx.util import logging

    logger = logging.getLogger(__name__)
    srcdir = Path(app.srcdir)
    written = pages.write_fragments(srcdir / "generated", data_dir=srcdir / "_data", root=srcdir.parent)
    for path in written:
        logger.info("restorekit_docs: wrote %s", path.relative_to(srcdir))


def _resolve_short_names(app: Any, env: Any, node: Any, contnode: Any) -> Any:
    """Resolve a docstring's short or re-exported name to the one restorekit object it means.

    Docstrings say :class:`ConfigError` where the module imported it, or
    :data:`restorekit.BACKBONES` for a name re-exported at the top: Sphinx looks only in the
    current module and for the exact path. This finds the object whose documented path ends
    with the name; a name that matches no documented object, or several, stays broken, so a
    stale reference still fails the build.
    """
    if node.get("refdomain") != "py":
        return None
    target = node.get("reftarget", "").lstrip("~.")
    if not target:
        return None
    domain = env.get_domain("py")
    objects = domain.objects
    suffixes = [target]
    if target.startswith("restorekit.") and target.count(".") >= 1:
        suffixes.append(target.rsplit(".", 1)[1])  # restorekit.BACKBONES -> ...registries.BACKBONES
    for suffix in suffixes:
        matches = sorted(name for name in objects if name == suffix or name.endswith("." + suffix))
        matches = [m for m in matches if m.startswith("restorekit.")]
        if len(matches) == 1:
            from sphinx.util.nodes import make_refnode

            entry = objects[matches[0]]
            return make_refnode(app.builder, node["refdoc"], entry.docname, entry.node_id, contnode, matches[0])
        if len(matches) > 1:
            return None
    return None


# --------------------------------------------------------------------------- math as MathML
# Equations are converted to MathML when the docs are built (docutils' own LaTeX converter),
# so they display without JavaScript or a CDN, offline included, and TeX that the converter
# cannot read is a build warning (an error under -W) instead of a page that shows raw TeX.
def _to_mathml(translator: Any, node: Any, latex: str, block: bool) -> str:
    from docutils.utils.math import MathError, latex2mathml
    from sphinx.util import logging

    try:
        return latex2mathml.tex2mathml(latex, as_block=block)
    except MathError as exc:
        logging.getLogger(__name__).warning("cannot render the equation %r: %s", latex, exc, location=node)
        return f'<code class="math">{translator.encode(latex)}</code>'


def _visit_math(translator: Any, node: Any) -> None:
    from docutils import nodes

    translator.body.append(translator.starttag(node, "span", "", CLASS="math"))
    translator.body.append(_to_mathml(translator, node, node.astext(), block=False) + "</span>")
    raise nodes.SkipNode


def _visit_displaymath(translator: Any, node: Any) -> None:
    from docutils import nodes
    from sphinx.util.math import get_node_equation_number

    translator.body.append(translator.starttag(node, "div", CLASS="math"))
    if node.get("number"):
        translator.body.append(f'<span class="eqno">({get_node_equation_number(translator, node)})</span>')
    translator.body.append(_to_mathml(translator, node, node.astext(), block=True))
    translator.body.append("</div>\n")
    raise nodes.SkipNode


def setup(app: Any) -> dict[str, Any]:
    app.connect("builder-inited", _generate)
    app.connect("missing-reference", _resolve_short_names)
    app.add_html_math_renderer("mathml", (_visit_math, None), (_visit_displaymath, None))
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
