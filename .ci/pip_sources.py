"""Print this machine's pip package sources as uv options, one per line.

``make setup`` installs with uv (it resolves and installs several times faster than pip),
but uv does not read pip's configuration.  This prints, as uv options, the sources pip is
configured with here (``pip config list``: files and ``PIP_*`` variables): find-links
folders, index and extra-index URLs, and constraint files, plus pip's rule of taking the
best version across all indexes.  Nothing configured: nothing printed (uv uses PyPI).
"""

from __future__ import annotations

import ast
import subprocess
import sys

OPTIONS = {"find-links": "--find-links", "index-url": "--index-url",
           "extra-index-url": "--extra-index-url", "constraint": "--constraint"}


def main() -> int:
    out = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True,
                         text=True, check=False).stdout
    seen: list[tuple[str, str]] = []
    for line in out.splitlines():
        key, _, value = line.partition("=")
        name = key.rsplit(".", 1)[-1]
        if name not in OPTIONS or not value:
            continue
        try:
            value = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            pass
        for item in str(value).split():
            if (name, item) not in seen:
                seen.append((name, item))
    for name, item in seen:
        print(OPTIONS[name])
        print(item)
    if any(name in ("index-url", "extra-index-url") for name, _ in seen):
        print("--index-strategy")
        print("unsafe-best-match")
    return 0


if __name__ == "__main__":
    sys.exit(main())
