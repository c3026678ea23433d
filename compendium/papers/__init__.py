"""The papers: one package per paper, on a shared framework.

* :mod:`.base` - :class:`~.base.PaperSpec` (the parameters every paper shares, checked before
  a kernel starts), :class:`~.base.ModelPlan` (which encoder runs for each of the paper's
  models: the model or its registry stand-in), :func:`~.base.load_plan_encoder`,
  :func:`~.base.audit_predictions`;
* :mod:`.reported` - the numbers each paper prints, in one schema (``<paper>/reported.yaml``),
  and :func:`~.reported.compare_reported`;
* :mod:`.plots` - figure pieces the papers share;
* ``paper_a/``, ``paper_d/``, ... - what is specific to one paper: ``spec.py`` (its notebook's
  parameters, registered for ``compendium run``), ``pipeline.py`` (its steps, each taking the
  spec and returning tidy results), ``tables.py``, ``figures.py`` and ``reported.yaml``.

Everything else (cohorts, encoders, pixels, cross-validation, selection by validation, the
audit) lives once in the lower layers: :mod:`compendium.cohorts`, :mod:`compendium.encoders`,
:mod:`compendium.imaging`, :mod:`compendium.adapt`, :mod:`compendium.audit`.
"""
