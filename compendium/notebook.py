"""The notebook side of the compendium: typed specs per notebook, and ``setup``.

Each notebook ``notebooks/<name>.ipynb`` has a frozen spec class, registered with
:func:`register_notebook` in a module of :mod:`compendium.specs` (one module per notebook).
The runner validates parameters against the spec *before* executing anything; inside the
notebook, one cell turns the papermill parameters into the validated spec::

    cfg, out = compendium.notebook.setup("glossary", globals())

``setup`` picks the spec's fields from the namespace, validates them, configures logging
for the notebook, shows the profile banner (synthetic-world results are labelled as such)
and returns the spec and a :class:`~compendium.results.Results` writer.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import logging
import pkgutil
from typing import Any, Callable, ClassVar, Literal, Mapping

from .config import SEED_MAX, Spec, ranged
from .registry import Registry
from .results import MIN_CELL_COUNT, Results

PROFILES = ("smoke", "demo", "full")
Profile = Literal["smoke", "demo", "full"]


@dataclasses.dataclass(frozen=True)
class NotebookSpec(Spec):
    """Fields every notebook has.  Subclasses add their own (with defaults)."""

    #: True for a notebook whose data are synthetic under every profile (its ``full`` is a
    #: larger synthetic run): lessons, the glossary, the synthetic world, the demos
    SYNTHETIC_ONLY: ClassVar[bool] = False

    #: the parameter profile (set by ``compendium run --profile``): smoke, demo or full
    profile: Profile = "demo"
    #: seed of every random step of the run (splits, training, bootstrap, permutations)
    seed: int = ranged(0, lo=0, hi=SEED_MAX)

    #: folder the run writes its tables, figures and values to (set by the runner)
    output_dir: str = ""

    def synthetic_data(self) -> bool:
        """Whether this run's own numbers come from the synthetic world (the banner and
        every table's source line say so): under ``smoke`` and ``demo``, and under ``full``
        for a :attr:`SYNTHETIC_ONLY` notebook; papers override it (``pixels``)."""
        return self.SYNTHETIC_ONLY or self.profile != "full"

    def check(self) -> None:
        """Fail fast, before a kernel starts, when data or weights the run needs are missing.

        Subclasses override this for the ``full`` profile and raise
        :class:`~compendium.errors.DataNotFoundError` naming what is missing and how to get it.
        """


@dataclasses.dataclass(frozen=True)
class NotebookEntry:
    name: str
    spec: type[NotebookSpec]
    title: str
    description: str = ""
    in_book: bool = True


NOTEBOOKS: Registry[NotebookEntry] = Registry("notebook")
_loaded = False


def register_notebook(name: str, *, title: str, description: str = "",
                      in_book: bool = True) -> Callable[[type[NotebookSpec]], type[NotebookSpec]]:
    """Class decorator registering the spec of ``notebooks/<name>.ipynb``."""

    def decorator(cls: type[NotebookSpec]) -> type[NotebookSpec]:
        if not (isinstance(cls, type) and issubclass(cls, NotebookSpec)):
            raise TypeError("register_notebook decorates NotebookSpec subclasses")
        NOTEBOOKS.add(name, NotebookEntry(name, cls, title, description, in_book), replace=True)
        return cls

    return decorator


def load_specs() -> Registry[NotebookEntry]:
    """Import the modules that register notebook specs: every module of
    :mod:`compendium.specs`, and the ``spec`` module of every paper package
    (``compendium/papers/<paper>/spec.py``)."""
    global _loaded
    if not _loaded:
        from . import papers, specs

        for mod in pkgutil.iter_modules(specs.__path__):
            importlib.import_module(f"{specs.__name__}.{mod.name}")
        for mod in pkgutil.iter_modules(papers.__path__):
            if mod.ispkg and importlib.util.find_spec(f"{papers.__name__}.{mod.name}.spec"):
                importlib.import_module(f"{papers.__name__}.{mod.name}.spec")
        _loaded = True
    return NOTEBOOKS


def get_spec(name: str) -> type[NotebookSpec]:
    """The spec class of notebook ``name`` (ConfigError naming the known ones if unknown)."""
    return load_specs().get(name).spec


def setup(name: str, namespace: Mapping[str, Any], *, banner: bool = True,
          log_level: int = logging.INFO) -> tuple[NotebookSpec, Results]:
    """Validate a notebook's parameters and prepare its outputs.

    Parameters
    ----------
    name : str
        Registered notebook name.
    namespace : mapping
        The notebook's ``globals()``; only the spec's fields are read from it.
    """
    spec_cls = get_spec(name)
    values = {k: namespace[k] for k in spec_cls.field_names() if k in namespace}
    cfg = spec_cls.from_dict(values, where=f"notebook {name}")
    _configure_logging(log_level)
    _configure_display()
    if banner:
        show_banner(cfg)
    min_cell = getattr(cfg, "min_cell_count", MIN_CELL_COUNT) if cfg.profile == "full" else None
    synthetic = cfg.synthetic_data()
    knobs = getattr(cfg, "knobs", None)
    return cfg, Results(cfg.output_dir or None, min_cell=min_cell, profile=cfg.profile,
                        synthetic=synthetic,
                        knobs=caption_knobs(knobs) if synthetic and knobs is not None else "")


def profile_banner(cfg: NotebookSpec) -> str:
    """Markdown text stating where this run's data come from."""
    knobs = getattr(cfg, "knobs", None)
    if not cfg.synthetic_data():
        return (
            "**Profile `full`**: real data and real pretrained weights from local paths. "
            "Only aggregate results are shown."
        )
    text = (
        f"**Profile `{cfg.profile}` — synthetic world.** Images, reports and outcomes in this "
        "notebook come from the compendium's synthetic generator (cohort rows may come from "
        "real public metadata); encoders are toy models pretrained on it. These numbers "
        "illustrate the method; they are **not** results on real patients."
    )
    if knobs is not None:
        text += f" Bias knobs: {describe_knobs(knobs)}."
    return text


def describe_knobs(knobs: Any) -> str:
    """One line naming every non-zero bias knob, e.g.
    ``default: sex=F soft_tissue 0.5, anatomy -0.06; ...`` (``zero``: none)."""
    from .synthetic.knobs import resolve_knobs

    groups = []
    for group, gk in resolve_knobs(knobs).groups.items():
        set_ = [f"{n} {v:g}" for n, v in gk.to_dict().items() if v]
        if set_:
            groups.append(f"`{group}` " + ", ".join(set_))
    name = f"`{knobs}` " if isinstance(knobs, str) else ""
    return name + ("(" + "; ".join(groups) + ")" if groups else "(none: every knob is zero)")


def caption_knobs(knobs: Any) -> str:
    """The bias knobs as a table's source line names them: a preset by its name
    (``default``, ``zero``), a mapping by :func:`describe_knobs` (without backticks).

    >>> caption_knobs({"sex=F": {"soft_tissue": 0.5}})
    'sex=F soft_tissue 0.5'
    """
    if isinstance(knobs, str):
        return knobs
    text = describe_knobs(knobs).replace("`", "")
    return text[1:-1] if text.startswith("(") and text.endswith(")") else text


def show_banner(cfg: NotebookSpec) -> None:
    try:
        from IPython.display import Markdown, display
    except ImportError:  # pragma: no cover
        return
    display(Markdown("> " + profile_banner(cfg)))


def _configure_display() -> None:
    """Tables shown in a notebook (and glued into the book) print every cell whole: pandas
    would cut text longer than 50 characters, and a reader would lose the end of a quote."""
    import pandas as pd

    pd.set_option("display.max_colwidth", None)


def _configure_logging(level: int) -> None:
    root = logging.getLogger("compendium")
    if not any(getattr(h, "_compendium", False) for h in root.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        handler._compendium = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(level)
