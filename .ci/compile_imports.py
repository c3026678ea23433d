"""Write the bytecode (.pyc) of every module a notebook kernel or a test imports, once, at
set-up.

uv (unlike pip) writes no .pyc when it installs, and where ``PYTHONDONTWRITEBYTECODE`` is set
(as on this project's machines) no process writes one later either: every notebook kernel,
sweep point and CLI test would then compile torch, pandas & co. from source again (~6 s of
CPU each).  Compiling all of site-packages (``uv pip install --compile-bytecode``) costs two
minutes; importing what we use, with bytecode writing switched on for this one process, costs
seconds and writes the same files for those modules.  Run by ``make setup``.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

sys.dont_write_bytecode = False

#: Third-party modules the package imports lazily (inside functions), heaviest first.  Not
#: umap: its import compiles pynndescent with numba (30 s), cached on first use by the one
#: notebook that needs it.
MODULES = (
    "torch", "torch.nn", "torch.optim", "torch.utils.data", "torchvision", "torchvision.models",
    "transformers", "transformers.models.bert.modeling_bert",
    "transformers.models.siglip.modeling_siglip", "transformers.models.dinov2.modeling_dinov2",
    "open_clip", "timm", "timm.models", "peft", "safetensors.torch", "huggingface_hub",
    "numpy", "pandas", "scipy.stats", "scipy.optimize", "sklearn.linear_model",
    "sklearn.model_selection", "sklearn.metrics", "sklearn.cluster", "sklearn.preprocessing",
    "statsmodels.api", "lightgbm", "matplotlib.pyplot", "seaborn",
    "PIL.Image", "pydicom", "nibabel", "tqdm.auto", "yaml", "filelock", "psutil",
    "papermill", "nbclient", "nbformat", "ipykernel.kernelapp", "IPython", "myst_nb",
    "pytest",
)


def main() -> int:
    failed = []
    for name in MODULES:
        try:
            importlib.import_module(name)
        except Exception as exc:  # an optional extra not installed: nothing to compile
            failed.append(f"{name} ({type(exc).__name__})")
    import compendium

    for info in pkgutil.walk_packages(compendium.__path__, "compendium."):
        if info.name.endswith("__main__"):
            continue
        try:
            importlib.import_module(info.name)
        except Exception as exc:
            failed.append(f"{info.name} ({type(exc).__name__})")
    if failed:
        print("compile_imports: not importable here (skipped): " + ", ".join(failed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
