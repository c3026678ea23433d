"""Prepare chest radiographs for a vendor's embedding tool as Paper D's section 2.2 describes.

Paper D gives its images to CXR-Foundation and MedImageInsight, which run outside the
compendium (their embeddings come back as files: see the model registry's
``medimageinsight`` / ``cxr-foundation`` entries).  This command prepares those images the
same way for everyone: each file is read (DICOM with pydicom, the manufacturer's rescale,
MONOCHROME1 inverted to MONOCHROME2; PNG/JPEG as grey), scaled to [0, 1], resized to
``--size`` (the paper: 1024) and written as

* ``png``: a 16-bit grey PNG of the [0, 1] image (what image-based tools take; a PNG cannot
  hold the z-scored values, so the tool's own normalisation applies), or
* ``npy``: float32, z-scored (mean 0, sd 1) as the paper standardises, or [0, 1] with
  ``--no-zscore``.

Example::

    compendium prepare-cxr /data/mimic-cxr/files --out prepared/ --size 1024 --format png

Input: a folder (searched recursively for ``.dcm``/``.dicom`` and image files) or a CSV with
a ``path`` column (relative paths are taken from the CSV's folder).  Output: the prepared
files, mirroring the input's relative paths, and ``manifest.csv`` (source, output, the
source's shape).  The folder appears only when everything is written; a file that cannot be
read stops the run with its name (``--skip-unreadable`` lists such files in
``unreadable.csv`` instead).  Nothing here leaves the user's machine.
"""

from __future__ import annotations

import argparse
from pathlib import Path

#: A folder written by this command carries this marker; only such a folder is replaced.
MARKER = ".compendium-prepare-cxr"
FORMATS = ("png", "npy")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..config import cli_number

    parser.add_argument("input", metavar="INPUT",
                        help="a folder of DICOM/PNG/JPEG files (searched recursively) or a CSV "
                             "with a 'path' column")
    parser.add_argument("--out", required=True,
                        help="output folder (created; a folder written by this command is "
                             "replaced as a whole, one holding anything else is refused)")
    parser.add_argument("--size", type=cli_number(int, lo=16, hi=4096), default=1024,
                        help="side of the square output in pixels (default 1024, the paper's)")
    parser.add_argument("--format", default="png", choices=FORMATS,
                        help="png: 16-bit grey in [0, 1] (default); npy: float32, z-scored")
    parser.add_argument("--no-zscore", action="store_true",
                        help="npy only: keep [0, 1] instead of z-scoring")
    parser.add_argument("--skip-unreadable", action="store_true",
                        help="list files that cannot be read in unreadable.csv instead of "
                             "stopping")


def find_inputs(source: str | Path) -> tuple[Path, list[Path]]:
    """The base folder and the image files of ``source`` (a folder or a CSV of paths)."""
    import pandas as pd

    from ..errors import DataNotFoundError, InputError
    from .io import DICOM_SUFFIXES, IMAGE_SUFFIXES

    src = Path(source).expanduser()
    if not src.exists():
        raise DataNotFoundError(f"{src}: no such file or folder")
    if src.is_dir():
        suffixes = tuple(s for s in (*DICOM_SUFFIXES, *IMAGE_SUFFIXES) if s)
        files = sorted(p for p in src.rglob("*") if p.is_file()
                       and p.suffix.lower() in suffixes and not p.name.startswith("."))
        if not files:
            raise InputError(f"{src}: no DICOM or image file in this folder "
                             f"(looked for {', '.join(suffixes)})")
        return src, files
    if src.suffix.lower() != ".csv":
        raise InputError(f"{src}: give a folder or a CSV with a 'path' column")
    try:
        table = pd.read_csv(src)
    except (ValueError, OSError) as exc:
        raise InputError(f"{src}: not a readable CSV ({exc})") from None
    if "path" not in table.columns:
        raise InputError(f"{src}: no 'path' column (columns: {', '.join(map(str, table.columns))})")
    if table["path"].isna().any():
        raise InputError(f"{src}: column 'path' has {int(table['path'].isna().sum())} empty rows")
    base = src.parent
    files = [Path(p) if Path(p).is_absolute() else base / p for p in table["path"].astype(str)]
    missing = [p for p in files if not p.is_file()]
    if missing:
        raise DataNotFoundError(f"{src}: {len(missing)} listed file(s) not found "
                                f"(first: {missing[0]})")
    if len(set(files)) != len(files):
        raise InputError(f"{src}: column 'path' lists a file more than once")
    return base, files


def _relative(path: Path, base: Path) -> Path:
    try:
        return path.resolve().relative_to(base.resolve())
    except ValueError:       # a CSV may list files outside its folder
        return Path(*[p for p in path.resolve().parts if p not in ("/", "\\")])


def prepare(files: list[Path], base: Path, work: Path, *, size: int, fmt: str, zscore: bool,
            skip_unreadable: bool, progress: bool = True) -> tuple[list[dict], list[dict]]:
    """Write every prepared file under ``work``; return the manifest and unreadable rows."""
    import numpy as np
    from PIL import Image
    from tqdm.auto import tqdm

    from ..errors import InputError
    from .io import read_pixels, standardise_cxr

    rows, bad = [], []
    # disable=None: no bar when stderr is not a terminal (logs, pipes)
    for path in tqdm(files, desc="prepare", unit="image", disable=None if progress else True):
        try:
            raw = read_pixels(path)
            if raw.ndim != 2:
                raise InputError(f"not one grey image (shape {raw.shape})")
            img = standardise_cxr(raw, size=size, zscore=zscore and fmt == "npy")
        except Exception as exc:      # any reader failure names the file
            if not skip_unreadable:
                raise InputError(f"{path}: cannot be prepared ({exc}); use --skip-unreadable "
                                 "to list such files and go on") from None
            bad.append({"source": str(path), "error": str(exc).splitlines()[0][:200]})
            continue
        rel = _relative(path, base).with_suffix("." + fmt)
        dst = work / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        if fmt == "png":
            Image.fromarray(np.round(np.clip(img, 0, 1) * 65535).astype(np.uint16)).save(
                dst, format="PNG")
        else:
            np.save(dst, img.astype(np.float32))
        rows.append({"source": str(path), "output": str(rel), "source_height": raw.shape[0],
                     "source_width": raw.shape[1], "size": size, "format": fmt,
                     "zscored": bool(zscore and fmt == "npy")})
    return rows, bad


def run(args: argparse.Namespace) -> int:
    import shutil

    import pandas as pd

    from ..atomic import check_output, partial_dir, replace_dir, sweep_partials
    from ..errors import ConfigError, InputError

    if args.no_zscore and args.format != "npy":
        raise ConfigError("--no-zscore applies to --format npy only (PNG holds [0, 1])")
    base, files = find_inputs(args.input)
    out = check_output(args.out, directory=True, inputs=[args.input])
    target = out.resolve()
    inside = [f for f in files if target in f.resolve().parents]
    if inside or (Path(args.input).is_dir() and base.resolve() in [target, *target.parents]):
        raise ConfigError(f"--out {out} overlaps the input {'file ' + str(inside[0]) if inside else 'folder ' + str(base)}: "
                          "choose a folder outside it")
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).exists():
        raise ConfigError(f"--out {out} exists and holds other files: give a new or empty "
                          "folder (a folder written by `compendium prepare-cxr` is replaced)")
    sweep_partials(out.parent, out.name)
    work = partial_dir(out.parent, out.name)
    try:
        (work / MARKER).write_text(f"compendium prepare-cxr --size {args.size} "
                                   f"--format {args.format}\n", encoding="utf-8")
        rows, bad = prepare(files, base, work, size=args.size, fmt=args.format,
                            zscore=not args.no_zscore, skip_unreadable=args.skip_unreadable)
        if not rows:
            raise InputError(f"{args.input}: none of the {len(files)} file(s) could be read")
        pd.DataFrame(rows).to_csv(work / "manifest.csv", index=False, lineterminator="\n")
        if bad:
            pd.DataFrame(bad).to_csv(work / "unreadable.csv", index=False, lineterminator="\n")
        replace_dir(work, out)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    print(f"prepared {len(rows)} image(s) at {args.size} px as {args.format} in {out}"
          + (f"; {len(bad)} unreadable, listed in {out / 'unreadable.csv'}" if bad else ""))
    return 0
