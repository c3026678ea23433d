"""A small Sphinx extension used by the book's ``_config.yml``.

- glued numbers (``{glue}`` of a value) read as text, not as inline code;
- a figure of an executed notebook whose caption does not say what its data are gets the
  run's statement (synthetic world and its bias knobs, or real data);
- every image has alt text (the run's description of the figure, or its caption), and a
  build warning names an image without one;
- the book's stylesheet and scripts in ``book/_static`` (tables, the ledger's filter) are
  served from the book;
- repeated inline scripts are de-duplicated:

Jupyter Book 1.0.4 with sphinx-thebe 0.3.1 and sphinx-togglebutton emits the inline
configuration scripts of those extensions once per read phase, so a page can carry the same
``const THEBE_JS_URL = ...`` several times and the browser reports a SyntaxError.  This
extension keeps the first copy of each identical script entry on every page.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

from docutils import nodes
from sphinx.transforms.post_transforms import SphinxPostTransform
from sphinx.util import logging

logger = logging.getLogger(__name__)


def _dedupe_scripts(app, pagename, templatename, context, doctree) -> None:
    scripts = context.get("script_files")
    if not scripts:
        return
    seen: set[tuple[Any, ...]] = set()
    unique = []
    for script in scripts:
        filename = getattr(script, "filename", str(script)) or ""  # None and "" both mean inline
        attrs = getattr(script, "attributes", {}) or {}
        key = (filename, tuple(sorted((k, str(v)) for k, v in attrs.items())))
        if key in seen:
            continue
        seen.add(key)
        unique.append(script)
    context["script_files"] = unique


# ------------------------------------------------------------------ glued numbers as text


class GluedValuesAsText(SphinxPostTransform):
    """A number pasted with ``{glue}`/book/generated/NB.ipynb::key``` reads as text.

    myst-nb resolves a cross-document glue reference whose output is only ``text/plain``
    into an inline *literal* (a code pill).  Before it runs (priority 5), this replaces such a
    reference with plain inline text of class ``glued-value``; references to tables, figures
    or HTML are left to myst-nb.
    """

    default_priority = 4

    def apply(self, **kwargs: Any) -> None:
        from myst_nb.ext.glue.crossref import read_glue_cache
        from myst_nb.ext.glue.utils import PendingGlueReference

        folder = self.env.mystnb_config.output_folder  # type: ignore[attr-defined]
        for node in list(self.document.findall(PendingGlueReference)):
            if not node.inline or node.gtype == "text":
                continue
            data = read_glue_cache(folder, node.refdoc).get(node.key, {}).get("data", {})
            if set(data) != {"text/plain"}:
                continue
            text = data["text/plain"]
            if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
                text = text[1:-1]
            node.replace_self(nodes.inline(text, text, classes=["glued-value"]))


# -------------------------------------------------------------- what a figure rests on

_PROVENANCE = re.compile(r"synthetic|real|toy", re.IGNORECASE)


def run_statement(notebook: Path) -> str:
    """One sentence on the data of an executed notebook, from the parameters papermill
    recorded in it: the synthetic world with its bias knobs, or the full profile's real data."""
    try:
        meta = json.loads(notebook.read_text())["metadata"]["papermill"]["parameters"]
    except (OSError, ValueError, KeyError, TypeError):
        return ""
    profile = meta.get("profile", "")
    if profile == "full" or meta.get("pixels") == "real":
        return f"Real data and weights (profile {profile})."
    text = (f"Synthetic world (profile {profile}): generated images, reports and outcomes "
            "(cohort rows may come from real public metadata) and toy encoders, not real "
            "patients")
    if "knobs" in meta:
        from .errors import CompendiumError
        from .notebook import describe_knobs

        try:
            text += "; bias knobs " + describe_knobs(meta["knobs"]).replace("`", "")
        except (CompendiumError, TypeError, ValueError) as exc:  # the caption stays shorter
            logger.warning("cannot describe the bias knobs of %s: %s", notebook.name, exc)
    return text + "."


class FigureProvenance(SphinxPostTransform):
    """A figure of an executed notebook (``/book/generated/<notebook>/<name>.png``) whose
    caption does not say what its data are gets the run's statement appended
    (:func:`run_statement`): the reader always knows what is synthetic."""

    default_priority = 19  # before ImageAltText, which may use the caption

    def apply(self, **kwargs: Any) -> None:
        cache: dict[str, str] = {}
        for fig in list(self.document.findall(nodes.figure)):
            images = list(fig.findall(nodes.image))
            captions = [c for c in fig.children if isinstance(c, nodes.caption)]
            if not images or not captions:
                continue
            parts = Path(str(images[0].get("uri", ""))).parts
            if "generated" not in parts:
                continue
            i = parts.index("generated")
            if len(parts) < i + 3:
                continue
            name = parts[i + 1]
            if _PROVENANCE.search(captions[0].astext()):
                continue
            if name not in cache:
                cache[name] = run_statement(
                    Path(self.app.srcdir) / "book" / "generated" / f"{name}.ipynb")
            if cache[name]:
                captions[0] += nodes.Text(" " + cache[name])


# ------------------------------------------------------------------------------ alt text


def _caption_text(figure: nodes.figure) -> str:
    for child in figure.children:
        if isinstance(child, nodes.caption):
            return " ".join(child.astext().split())
    return ""


class ImageAltText(SphinxPostTransform):
    """Every image gets alt text, and the build warns about one that has none.

    An image without an explicit ``:alt:`` takes the description its run wrote beside the
    saved figure (``figures/<name>.alt.txt``, matched by the image's bytes: a notebook's
    output image is the saved file), else its figure's caption.
    """

    default_priority = 20  # after myst-nb pasted glued figures (priority 5)

    def apply(self, **kwargs: Any) -> None:
        alts = _alt_texts(self.app)
        for node in list(self.document.findall(nodes.image)):
            if node.get("alt"):
                continue
            alt = alts.get(Path(str(node.get("uri", ""))).stem, "")
            if not alt and isinstance(node.parent, nodes.figure):
                alt = _caption_text(node.parent)
            if not alt and isinstance(node.parent, nodes.reference) and \
                    isinstance(node.parent.parent, nodes.figure):
                alt = _caption_text(node.parent.parent)
            if alt:
                node["alt"] = alt
            else:
                logger.warning("image %s has no alt text (give the figure a caption or "
                               "an :alt:)", node.get("uri"), location=node)


def _alt_texts(app) -> dict[str, str]:
    """sha256 of each saved figure's bytes, and its file stem -> its alt text."""
    cached = getattr(app.env, "_compendium_alt", None)
    if cached is not None:
        return cached
    out: dict[str, str] = {}
    for alt_file in Path(app.srcdir).glob("book/generated/*/*.alt.txt"):
        png = alt_file.with_name(alt_file.name[: -len(".alt.txt")] + ".png")
        text = " ".join(alt_file.read_text().split())
        if png.is_file() and text:
            out[hashlib.sha256(png.read_bytes()).hexdigest()] = text
            out[png.stem] = text
    app.env._compendium_alt = out
    return out


def _static_files(app, config) -> None:
    """The book's own stylesheet and scripts (``book/_static``), served from the book."""
    static = Path(app.srcdir) / "book" / "_static"
    if static.is_dir():
        config.html_static_path.append(str(static))
        for f in sorted(static.glob("*.css")):
            app.add_css_file(f.name)
        for f in sorted(static.glob("*.js")):
            app.add_js_file(f.name)


def setup(app) -> dict[str, Any]:
    app.connect("config-inited", _static_files)
    app.add_post_transform(GluedValuesAsText)
    app.add_post_transform(FigureProvenance)
    app.add_post_transform(ImageAltText)
    app.connect("html-page-context", _dedupe_scripts, priority=1)  # emit_firstresult: run before handlers that return a template
    return {"parallel_read_safe": True, "parallel_write_safe": True}
