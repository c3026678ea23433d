"""Shared fixtures. Results and caches of the whole test session go under a temp folder,
never into the repository's results/ or the user's cache."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session", autouse=True)
def _isolated_outputs(tmp_path_factory):
    base = tmp_path_factory.mktemp("compendium-session")
    saved = {k: os.environ.get(k) for k in ("COMPENDIUM_RESULTS", "COMPENDIUM_CACHE",
                                             "HF_HUB_OFFLINE")}
    os.environ["COMPENDIUM_RESULTS"] = str(base / "results")
    # always the session's own cache: a user's cache must neither feed nor receive test runs
    os.environ["COMPENDIUM_CACHE"] = str(base / "cache")
    os.environ["HF_HUB_OFFLINE"] = "1"
    yield base
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="session")
def smoke_runs(_isolated_outputs):
    """Execute every notebook under its smoke profile once per session."""
    from compendium.runner import is_current, list_notebooks, resolve_params, results_dir, run_notebook

    outputs = {}
    for name in list_notebooks():
        spec = resolve_params(name, "smoke")
        if not is_current(name, spec):
            run_notebook(name, "smoke", progress=False)
        outputs[name] = results_dir(name, "smoke")
    return outputs
