"""'Find the bias' challenges: a secret world per student, an audit, an answer, a grade.

A teacher holds a **key** (64 hex characters in a file, made by the first ``challenge`` call).
Challenge ``id`` (an integer, e.g. the student's number) draws its secret from
``HMAC-SHA256(key, "challenge:<id>")``: which group of :data:`~.world.GROUPS` is
disadvantaged, by which mechanism of :data:`~.world.MECHANISMS`, at which strength, and the
world's seed.  The hand-out folder holds only the predictions table, the cohort table, a
README and ``challenge.json`` with the id and a *seal*, ``HMAC(key, secret)``: without the key
neither the id nor the seal tells anything about the secret (the id alone does not determine
it, and the seal cannot be tested against guesses).  ``grade`` re-draws the secret from the
key and the id, checks the seal (a wrong key or a hand-out from another key is refused) and
scores the answer.

Answer file (YAML, or JSON)::

    group: race=Black          # the disadvantaged group, as column=value
    mechanism: label_noise     # prevalence, sign_visibility, acquisition, label_noise, missingness
    strength: moderate         # optional: moderate or strong

A student is right when group and mechanism are both right; the strength is a bonus point.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import secrets
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import ConfigError, DataNotFoundError, InputError
from .world import ATTRIBUTES, GROUPS, MECHANISMS, STRENGTHS, mechanism_knobs, simulate_world

#: Version of the hand-out format (``challenge.json``'s ``format``).
FORMAT = 1
#: Rows of a challenge world.
DEFAULT_ROWS = 4000
#: Files of a hand-out folder.
HANDOUT_FILES = ("predictions.csv", "cohort.csv", "challenge.json", "README.md")
ANSWER_KEYS = ("group", "mechanism", "strength")


@dataclasses.dataclass(frozen=True)
class Secret:
    """What a challenge hides."""

    group: str
    mechanism: str
    strength: str
    world_seed: int

    def canonical(self) -> bytes:
        return json.dumps(dataclasses.asdict(self), sort_keys=True).encode()


# ------------------------------------------------------------------------------- key


def new_key() -> str:
    """A fresh teacher key (64 hex characters)."""
    return secrets.token_hex(32)


def read_key(path: str | Path) -> bytes:
    """The key in ``path``; a missing or malformed file is a one-line error."""
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(f"key file not found: {path}")
    text = path.read_text().strip()
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) != 32:
        raise InputError(f"{path}: not a challenge key (expected 64 hexadecimal characters)")
    return key


def load_or_create_key(path: str | Path) -> tuple[bytes, bool]:
    """The key in ``path``, creating it (readable by its owner only) when absent.
    Returns ``(key, created)``."""
    from ..atomic import atomic_write

    path = Path(path)
    if path.exists():
        return read_key(path), False
    path.parent.mkdir(parents=True, exist_ok=True)
    text = new_key()
    with atomic_write(path, "w") as fh:
        fh.write(text + "\n")
    path.chmod(0o600)
    return bytes.fromhex(text), True


def _mac(key: bytes, message: str | bytes) -> bytes:
    if isinstance(message, str):
        message = message.encode()
    return hmac.new(key, message, hashlib.sha256).digest()


def key_id(key: bytes) -> str:
    """A short public name of a key (tells which key sealed a hand-out, not the key)."""
    return _mac(key, "key-id").hex()[:12]


# ---------------------------------------------------------------------------- secret


def draw_secret(key: bytes, challenge_id: int) -> Secret:
    """The secret of challenge ``challenge_id`` under ``key`` (deterministic)."""
    rng = np.random.default_rng(int.from_bytes(_mac(key, f"challenge:{challenge_id}"), "little"))
    return Secret(group=str(rng.choice(GROUPS)), mechanism=str(rng.choice(list(MECHANISMS))),
                  strength=str(rng.choice(STRENGTHS)),
                  world_seed=int(rng.integers(0, 2**31 - 1)))


def seal(key: bytes, challenge_id: int, secret: Secret) -> str:
    return _mac(key, f"seal:{challenge_id}:".encode() + secret.canonical()).hex()


# ---------------------------------------------------------------------------- writing

_README = """# Find the bias: challenge {challenge_id}

Everything here is **synthetic**: a simulated classifier's predictions on a synthetic
chest-X-ray world (compendium.teaching; no patient data).  One group of patients was put at
a disadvantage by one mechanism of the synthetic world, at some strength.  Find which.

Files

- `predictions.csv`: one row per image: `sample_id, patient_id, {attributes}, y_true` (the
  *recorded* label: any finding), `y_score` (the classifier's probability).
- `cohort.csv`: the same rows with `age`, `view` (AP portable or PA film) and `ehr_measured`
  (how many of {n_measurements} EHR measurements were taken).

Audit it, for example

    compendium audit predictions.csv --task binary --attributes {attribute_list} --out audit.csv

and compare the groups' recorded prevalence, AUROC, TPR and FPR, and the cohort's columns.

Answer with a YAML file of three lines:

    group: sex=F               # one of: {groups}
    mechanism: label_noise     # one of: {mechanisms}
    strength: moderate         # optional: {strengths}

Your teacher grades it with `compendium teaching grade --challenge DIR --answer FILE --key KEY`.
"""


def write_challenge(out: str | Path, *, key: bytes, challenge_id: int,
                    n: int = DEFAULT_ROWS) -> Path:
    """Write the hand-out of challenge ``challenge_id`` to the folder ``out`` (atomically:
    the folder appears complete or not at all)."""
    from ..atomic import partial_dir, replace_dir, write_json

    secret = draw_secret(key, challenge_id)
    knobs = mechanism_knobs(secret.mechanism, secret.group, secret.strength)
    cohort, predictions = simulate_world(n, seed=secret.world_seed, knobs=knobs)
    # the world's ids carry its seed, from which the secret could be re-simulated: renumber
    ids = {"sample_id": [f"s{i:05d}" for i in range(len(cohort))],
           "patient_id": [f"p{c:05d}" for c in pd.factorize(cohort["patient_id"])[0]]}
    cohort = cohort.assign(**ids)
    predictions = predictions.assign(**ids)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    work = partial_dir(out.parent, out.name)
    try:
        predictions.to_csv(work / "predictions.csv", index=False)
        cohort.to_csv(work / "cohort.csv", index=False)
        write_json(work / "challenge.json", {
            "format": FORMAT, "challenge": int(challenge_id), "rows": int(n),
            "key_id": key_id(key), "seal": seal(key, challenge_id, secret),
            "synthetic": True,
        })
        (work / "README.md").write_text(_README.format(
            challenge_id=challenge_id, attributes=", ".join(ATTRIBUTES),
            attribute_list=",".join(ATTRIBUTES), n_measurements=17,
            groups=", ".join(GROUPS), mechanisms=", ".join(MECHANISMS),
            strengths=" or ".join(STRENGTHS)))
        replace_dir(work, out)
    except BaseException:
        import shutil

        shutil.rmtree(work, ignore_errors=True)
        raise
    return out


def read_challenge(folder: str | Path) -> dict[str, Any]:
    """``challenge.json`` of a hand-out folder, validated."""
    folder = Path(folder)
    path = folder / "challenge.json"
    if not path.is_file():
        raise DataNotFoundError(f"not a challenge folder (no challenge.json): {folder}")
    try:
        info = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not valid JSON ({exc.msg}, line {exc.lineno})") from None
    if not isinstance(info, dict) or info.get("format") != FORMAT or \
            not isinstance(info.get("challenge"), int) or not isinstance(info.get("seal"), str):
        raise InputError(f"{path}: not a challenge file of format {FORMAT}")
    return info


# ---------------------------------------------------------------------------- answers


def read_answer(path: str | Path) -> dict[str, str]:
    """An answer file (see the module docstring), validated with one-line errors."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(f"answer file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise InputError(f"{path}: not valid YAML ({' '.join(str(exc).split())})") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected 'group:', 'mechanism:' and optionally 'strength:'")
    unknown = sorted(set(map(str, data)) - set(ANSWER_KEYS))
    if unknown:
        raise InputError(f"{path}: unknown key {unknown[0]!r} (allowed: {', '.join(ANSWER_KEYS)})")
    answer = {k: str(v).strip() for k, v in data.items() if v is not None}
    for k in ("group", "mechanism"):
        if not answer.get(k):
            raise InputError(f"{path}: missing {k!r}")
    if answer["group"].replace(" ", "") not in GROUPS:
        raise InputError(f"{path}: group {answer['group']!r} is not a candidate "
                         f"(one of: {', '.join(GROUPS)})")
    answer["group"] = answer["group"].replace(" ", "")
    if answer["mechanism"] not in MECHANISMS:
        raise InputError(f"{path}: mechanism {answer['mechanism']!r} is not one of "
                         f"{', '.join(MECHANISMS)}")
    if "strength" in answer and answer["strength"] not in STRENGTHS:
        raise InputError(f"{path}: strength {answer['strength']!r} is not one of "
                         f"{', '.join(STRENGTHS)}")
    return answer


@dataclasses.dataclass(frozen=True)
class Grade:
    """The grade of one answer."""

    challenge: int
    group: bool
    mechanism: bool
    strength: bool | None   # None: not answered
    secret: Secret

    @property
    def correct(self) -> bool:
        return self.group and self.mechanism

    @property
    def points(self) -> int:
        return int(self.group) + int(self.mechanism) + int(bool(self.strength and self.mechanism))

    def lines(self, *, reveal: bool = False) -> list[str]:
        def word(ok):
            return "not answered" if ok is None else ("right" if ok else "wrong")

        out = [f"challenge {self.challenge}: {'RIGHT' if self.correct else 'WRONG'} "
               f"({self.points}/3 points)",
               f"  group: {word(self.group)}", f"  mechanism: {word(self.mechanism)}",
               f"  strength: {word(self.strength)}"]
        if reveal:
            s = self.secret
            out.append(f"  secret: {s.group}, {s.mechanism}, {s.strength} "
                       f"({', '.join(f'{g}: {k}' for g, k in mechanism_knobs(s.mechanism, s.group, s.strength)[s.group].items())})")
        return out


def grade(folder: str | Path, answer: dict[str, str], *, key: bytes) -> Grade:
    """Score ``answer`` against the secret of the hand-out in ``folder``."""
    info = read_challenge(folder)
    if info.get("key_id") != key_id(key):
        raise InputError(f"{folder}: this challenge was sealed with another key "
                         f"(key id {info.get('key_id')}, yours {key_id(key)})")
    secret = draw_secret(key, info["challenge"])
    if not hmac.compare_digest(info["seal"], seal(key, info["challenge"], secret)):
        raise InputError(f"{folder}: the seal does not match (challenge.json was edited or "
                         "written by another version)")
    strength = None if "strength" not in answer else answer["strength"] == secret.strength
    return Grade(challenge=info["challenge"], group=answer["group"] == secret.group,
                 mechanism=answer["mechanism"] == secret.mechanism, strength=strength,
                 secret=secret)
