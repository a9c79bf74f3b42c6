"""Parameter coercion and the errors users see for wrong names and types."""

from dataclasses import dataclass, field

import pytest

from kit.core.params import ParameterError, build, coerce, collect
from kit.demo.params import DemoParams


@dataclass
class Example:
    count: int = 1
    ratio: float = 0.5
    flag: bool = False
    name: str = "x"
    sizes: list[int] = field(default_factory=list)
    maybe: int | None = None
    extra: dict = field(default_factory=dict)


def test_yaml_and_papermill_quirks_are_coerced():
    params = build(
        Example,
        {"count": "8192", "ratio": "1e-5", "flag": "yes", "sizes": "1,2, 3", "maybe": "None"},
    )
    assert params.count == 8192
    assert params.ratio == 1e-5  # YAML's SafeLoader reads 1e-5 as a string
    assert params.flag is True
    assert params.sizes == [1, 2, 3]
    assert params.maybe is None


def test_scalar_becomes_one_item_list():
    assert coerce("sizes", 7, list[int]) == [7]
    assert coerce("image", "a.png", list[str]) == ["a.png"]


@pytest.mark.parametrize(
    "name,value,expected",
    [
        ("count", "many", "must be an integer"),
        ("count", True, "must be an integer"),
        ("ratio", "fast", "must be a number"),
        ("flag", "maybe", "true or false"),
        ("extra", "k=v", "must be a mapping"),
    ],
)
def test_wrong_types_name_the_parameter_and_the_fix(name, value, expected):
    with pytest.raises(ParameterError) as info:
        build(Example, {name: value})
    message = str(info.value)
    assert repr(name) in message and expected in message and "Fix" in message


def test_unknown_parameter_suggests_the_closest_name():
    with pytest.raises(ParameterError, match=r"'cout' \(did you mean 'count'\?\)"):
        build(Example, {"cout": 3})


def test_collect_reads_notebook_globals_and_rejects_injected_unknowns():
    namespace = {"count": 3, "Example": Example, "__name__": "__main__", "_private": 1}
    assert collect(Example, namespace).count == 3
    with pytest.raises(ParameterError, match="max_output_lenn"):
        collect(Example, {**namespace, "max_output_lenn": 5})


def test_demo_params_checks():
    assert build(DemoParams, {"image": "a.png,b.png"}).limit_images == 2
    with pytest.raises(ParameterError, match="limit_images"):
        build(DemoParams, {"image": ["a.png", "b.png"], "limit_images": 1})
    with pytest.raises(ParameterError, match="num_crops"):
        build(DemoParams, {"num_crops": 32})
    with pytest.raises(ParameterError, match="gpu_memory_utilization"):
        build(DemoParams, {"gpu_memory_utilization": 1.5})
