from dataclasses import dataclass, field
from typing import Literal

import pytest

from compendium.config import Spec, load_yaml, parse_assignment
from compendium.errors import ConfigError, DataNotFoundError
from compendium.registry import Registry


@dataclass(frozen=True)
class Inner(Spec):
    rank: int = 8


@dataclass(frozen=True)
class Outer(Spec):
    name: str
    method: Literal["linear", "mlp"] = "linear"
    lr: float = 1e-3
    models: list[str] = field(default_factory=lambda: ["a"])
    limit: int | None = None
    lora: Inner = field(default_factory=Inner)
    flag: bool = False


def test_valid_dict_builds_frozen_spec():
    s = Outer.from_dict({"name": "x", "lr": 1, "models": ["a", "b"], "lora": {"rank": 4}})
    assert s == Outer(name="x", lr=1.0, models=["a", "b"], lora=Inner(rank=4))
    assert isinstance(s.lr, float)
    with pytest.raises(Exception):
        s.name = "y"  # frozen
    assert s.to_dict()["lora"] == {"rank": 4}


@pytest.mark.parametrize("data, message", [
    ({"name": "x", "epoch": 3}, "unknown key 'epoch' (allowed: flag, limit, lora, lr, method, models, name)"),
    ({}, "missing required key 'name' (str)"),
    ({"name": 3}, "name: expected str, got 3"),
    ({"name": "x", "method": "svm"}, "method: 'svm' is not allowed (allowed: 'linear', 'mlp')"),
    ({"name": "x", "lr": "fast"}, "lr: expected float, got 'fast'"),
    ({"name": "x", "models": "a"}, "models: expected a list of str"),
    ({"name": "x", "models": ["a", 2]}, "models[1]: expected str, got 2"),
    ({"name": "x", "flag": 1}, "flag: expected bool, got 1"),
    ({"name": "x", "limit": 1.5}, "limit: expected int or null, got 1.5"),
    ({"name": "x", "lora": {"rnk": 2}}, "lora: unknown key 'rnk' (allowed: rank)"),
])
def test_invalid_values_name_the_key(data, message):
    with pytest.raises(ConfigError) as info:
        Outer.from_dict(data, where="p.yaml")
    assert str(info.value).startswith("p.yaml: ")
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_bool_is_not_an_int_and_int_is_a_float():
    @dataclass(frozen=True)
    class N(Spec):
        n: int = 1
        x: float = 0.0

    with pytest.raises(ConfigError):
        N.from_dict({"n": True})
    assert N.from_dict({"x": 2}).x == 2.0


def test_parse_assignment_reads_yaml_values():
    assert parse_assignment("seed=3") == ("seed", 3)
    key, value = parse_assignment("lr=1e-4")
    assert Outer.from_dict({"name": "x", key: value}).lr == 1e-4  # YAML 1.1 gives a str
    assert parse_assignment("name=toy-vit") == ("name", "toy-vit")
    assert parse_assignment("models=[a, b]") == ("models", ["a", "b"])
    assert parse_assignment("flag=true") == ("flag", True)
    with pytest.raises(ConfigError, match="key=value"):
        parse_assignment("seed")
    with pytest.raises(ConfigError, match="key=value"):
        parse_assignment("=3")


def test_load_yaml_errors(tmp_path):
    with pytest.raises(DataNotFoundError, match="not found"):
        load_yaml(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [1, 2\n")
    with pytest.raises(ConfigError, match="invalid YAML at line"):
        load_yaml(bad)
    lst = tmp_path / "list.yaml"
    lst.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_yaml(lst)
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    assert load_yaml(empty) == {}


def test_registry_lookup_and_errors():
    reg = Registry("widget")

    @reg.register("Big-One")
    def big(size=1):
        return size * 10

    assert "big-one" in reg and "BIG-ONE" in reg
    assert reg.create("big-one", size=2) == 20
    assert reg.names() == ["big-one"]
    with pytest.raises(ConfigError, match=r"unknown widget 'small' \(allowed: big-one\)"):
        reg.get("small")
    with pytest.raises(ValueError, match="already registered"):
        reg.add("big-one", lambda: 0)
