"""Contract and size tests for the model families (minarch.models)."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import pydantic
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from minarch import plugins
from minarch.errors import MinarchError, ModelError
from minarch.models import (
    Example,
    build_model,
    config_class,
    count_flops,
    count_parameters,
    describe,
    example,
    families,
    family_names,
    registry,
)
from minarch.spec import expand, parse_study
from tests import test_fused, test_prune, test_quant

NUM_CLASSES = 5


def _build(family, config, shape, seed=0, num_classes=NUM_CLASSES):
    return build_model(
        family, config, shape, num_classes, generator=torch.Generator().manual_seed(seed)
    )


def _state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("family", family_names())
def test_family_contract(family):
    config, shape = example(family).config, example(family).input_shape
    model = _build(family, config, shape)
    x = torch.randn(4, *shape, generator=torch.Generator().manual_seed(1))
    y = torch.arange(4) % NUM_CLASSES

    assert model(x).shape == (4, NUM_CLASSES)
    assert count_parameters(model) > 0
    assert count_flops(model, shape) > 0
    assert model.training  # count_flops restores the mode

    before = _state(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    optimizer.step()
    assert torch.isfinite(loss)
    assert any(not torch.equal(p, before[n]) for n, p in model.named_parameters())

    torch.manual_seed(123)
    first = _state(_build(family, config, shape, seed=7))
    torch.manual_seed(456)  # the global RNG must not matter
    second = _state(_build(family, config, shape, seed=7))
    other = _state(_build(family, config, shape, seed=8))
    assert first.keys() == second.keys()
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert any(not torch.equal(first[k], other[k]) for k in first)


@pytest.mark.parametrize("family", ["mlp", "cnn", "vit"])
@pytest.mark.parametrize("shape", [(1, 40), (1, 8, 8), (1, 28, 28), (3, 32, 32)])
def test_small_families_on_signals_and_images(family, shape):
    config = {"mlp": {"width": 8}, "cnn": {"channels": 4}, "vit": {"dim": 8}}[family]
    model = _build(family, config, shape, num_classes=3)
    assert model(torch.randn(2, *shape)).shape == (2, 3)
    assert count_flops(model, shape) > 0


def test_vit_patch_7_on_28x28():
    model = _build("vit", {"dim": 8, "patch_size": 7}, (1, 28, 28))
    assert model(torch.randn(2, 1, 28, 28)).shape == (2, NUM_CLASSES)


@pytest.mark.parametrize("family", family_names())
def test_any_input_channel_count(family):
    config, shape = example(family).config, example(family).input_shape
    shape = (5, *shape[1:])
    assert _build(family, config, shape)(torch.randn(2, *shape)).shape == (2, NUM_CLASSES)


def _resnet_cifar(depth):
    return _build("resnet_cifar", {"depth": depth}, (3, 32, 32), num_classes=10)


def test_resnet56_matches_li_et_al():
    model = _resnet_cifar(56)
    assert count_parameters(model) == pytest.approx(0.85e6, rel=0.02)
    assert count_flops(model, (3, 32, 32)) / 2 == pytest.approx(1.25e8, rel=0.03)


def test_resnet20_size():
    assert count_parameters(_resnet_cifar(20)) == pytest.approx(0.27e6, rel=0.02)


def test_mobilenetv2_cifar_size():
    model = _build("mobilenetv2_cifar", {}, (3, 32, 32), num_classes=10)
    assert count_parameters(model) == pytest.approx(2.2e6, rel=0.05)


def test_resnet50_size():
    model = _build("resnet50", {}, (3, 224, 224), num_classes=1000)
    assert count_parameters(model) == pytest.approx(25.6e6, rel=0.01)
    assert count_flops(model, (3, 224, 224)) / 2 == pytest.approx(4.1e9, rel=0.03)


@pytest.mark.parametrize(
    ("depth", "width", "shape"), [(0, 16, (1, 8, 8)), (1, 16, (1, 8, 8)), (3, 7, (3, 5, 4))]
)
def test_mlp_parameter_closed_form(depth, width, shape):
    inputs = shape[0] * shape[1] * shape[2]
    if depth == 0:
        expected = inputs * 10 + 10
    else:
        expected = (inputs + 1) * width + (depth - 1) * (width + 1) * width + (width + 1) * 10
    model = _build("mlp", {"depth": depth, "width": width}, shape, num_classes=10)
    assert count_parameters(model) == expected


def test_count_flops_of_linear():
    assert count_flops(nn.Linear(784, 10), (784,)) == 2 * 784 * 10


def test_count_parameters_skips_frozen():
    model = nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 2))
    model[0].requires_grad_(False)
    assert count_parameters(model) == 3 * 2 + 2


def test_negative_width_is_a_validation_error():
    with pytest.raises(pydantic.ValidationError):
        build_model("mlp", {"width": -4}, (1, 8, 8), 10)
    with pytest.raises(pydantic.ValidationError):
        config_class("cnn")(channels=4, kernel=4)
    with pytest.raises(pydantic.ValidationError):
        config_class("mlp")(width=4, colour="red")


def test_configs_are_frozen_with_scalar_defaults():
    config = config_class("vit")(dim=8)
    assert (config.patch_size, config.depth, config.heads, config.mlp_ratio) == (4, 2, 2, 2.0)
    with pytest.raises(pydantic.ValidationError):
        config.dim = 16


def test_resnet_depth_not_6n_plus_2():
    with pytest.raises(ModelError, match="resnet_cifar.depth"):
        build_model("resnet_cifar", {"depth": 21}, (3, 32, 32), 10)


def test_resnet_cifar_needs_images():
    with pytest.raises(ModelError, match="resnet_cifar"):
        build_model("resnet_cifar", {"depth": 20}, (1, 40), 10)


def test_vit_heads_must_divide_dim():
    with pytest.raises(ModelError, match="vit.heads"):
        build_model("vit", {"dim": 10, "heads": 3}, (1, 8, 8), 10)


def test_vit_patch_size_must_divide_input():
    with pytest.raises(ModelError, match=r"vit.patch_size: 28×28 input .* patch size 5"):
        build_model("vit", {"dim": 8, "patch_size": 5}, (1, 28, 28), 10)


def test_unknown_family_lists_valid_ones():
    with pytest.raises(ModelError, match="resnet_cifar") as info:
        config_class("resnet18")
    assert all(name in str(info.value) for name in family_names())
    assert isinstance(info.value, MinarchError)


def test_config_of_wrong_family_is_rejected():
    with pytest.raises(ModelError, match="MLPConfig"):
        build_model("mlp", config_class("cnn")(channels=4), (1, 8, 8), 10)


def test_describe():
    assert describe("mlp", {"depth": 2, "width": 16}) == "mlp d2 w16"
    assert describe("resnet_cifar", {"depth": 56}) == "resnet_cifar 56 ×1"
    assert describe("resnet50", config_class("resnet50")(width_multiplier=0.5)) == "resnet50 ×0.5"
    assert describe("cnn", {"channels": 8, "pooling": "avg"}) == "cnn d2 c8 pool-avg"
    assert describe("vit", {"dim": 32}) == "vit p4 dim32 d2 h2"
    assert describe("mobilenetv2_cifar", {}) == "mobilenetv2_cifar ×1"


def test_latency_and_size_of_a_smaller_model_are_smaller():
    from minarch.models import cpu_latency_ms, serialized_size

    big = build_model("mlp", {"width": 2048, "depth": 2}, (1, 28, 28), 10)
    small = build_model("mlp", {"width": 16, "depth": 2}, (1, 28, 28), 10)
    assert serialized_size(big) > 10 * serialized_size(small)
    assert serialized_size(big) > 4 * count_parameters(big)  # fp32: 4 bytes per parameter
    big.train()
    latency = cpu_latency_ms(big, (1, 28, 28), batch_size=8, repeats=5)
    assert latency > 0 and big.training  # the training flag is restored
    assert cpu_latency_ms(small, (1, 28, 28), batch_size=8, repeats=5) < latency


def test_vit_flops_count_the_attention_products():
    """QK^T and AV cost 2 x tokens^2 x dim FLOPs each; the CPU flash kernel hid them.

    On the meta device attention runs no CPU kernel, so its count is the reference.
    """
    config = {"dim": 32, "depth": 1, "heads": 2}
    on_cpu = count_flops(build_model("vit", config, (1, 28, 28), 10), (1, 28, 28))
    on_meta = count_flops(build_model("vit", config, (1, 28, 28), 10).to("meta"), (1, 28, 28))
    tokens = (28 // 4) ** 2 + 1  # patches and the class token
    assert on_cpu == on_meta and on_cpu > 2 * 2 * tokens**2 * 32


# --- A new family is one file ---------------------------------------------------------------

LENET5 = """\
\"\"\"LeNet-5 (LeCun et al. 1998) with ReLU and max pooling, on 32×32 inputs.\"\"\"

from pydantic import BaseModel, ConfigDict
from torch import nn

from minarch.models.registry import Example, register


class LeNet5Config(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def build(config, input_shape, num_classes):
    return nn.Sequential(
        nn.Conv2d(input_shape[0], 6, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(16 * 5 * 5, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
        nn.Linear(84, num_classes),
    )


register(
    "lenet5", LeNet5Config, build, lambda config: "lenet5",
    example=Example(LeNet5Config(), (1, 32, 32)),
)
"""


@pytest.fixture
def package_file(tmp_path, monkeypatch):
    """Writes a module into the built-in families (through a second folder on the path of
    ``models/families/``) and scans them again as the first look-up does; cleans up."""
    folder = tmp_path / "package"
    folder.mkdir()
    monkeypatch.setattr(registry, "_FAMILIES", dict(registry._FAMILIES))
    monkeypatch.setattr(families, "__path__", [*families.__path__, str(folder)])
    written = []

    def add(name: str, source: str) -> None:
        (folder / f"{name}.py").write_text(source)
        written.append(name)
        monkeypatch.setattr(plugins, "_scanned", set())
        family_names()

    yield add
    for name in written:
        sys.modules.pop(f"{families.__name__}.{name}", None)
        if hasattr(families, name):
            delattr(families, name)


def _parametrised_families(test) -> list[str]:
    marks = [m for m in test.pytestmark if m.name == "parametrize"]
    (families,) = [m.args[1] for m in marks if m.args[0] == "family"]
    return families


# The tests that run once per family: contract, fused engine, pruning, quantization.
FAMILY_TESTS = [
    test_family_contract,
    test_any_input_channel_count,
    test_fused.test_fused_member_equals_plain_member,
    test_prune.test_structured_hits_flop_target_and_runs,
    test_prune.test_save_load_round_trip,
    test_quant.test_every_family_quantizes_activations,
]
# ... and once per family with BatchNorm.
FOLDABLE_TESTS = [
    test_quant.test_folding_keeps_eval_outputs,
    test_quant.test_quantize_scheme_end_to_end,
    test_quant.test_qat_forward_matches_ptq_and_keeps_the_family_keys,
]


def test_family_tests_run_over_the_registry():
    assert all(_parametrised_families(test) == family_names() for test in FAMILY_TESTS)
    foldable = test_quant.foldable_families()
    assert all(_parametrised_families(test) == foldable for test in FOLDABLE_TESTS)
    assert "resnet_cifar" in foldable and "mlp" not in foldable


def test_a_new_family_is_one_file_and_every_suite_covers_it(package_file, tmp_path):
    """LeNet-5 as one new module and nothing else: it is registered, listed where the
    per-family tests take their families from, and passes each of them."""
    package_file("lenet5", LENET5)
    assert "lenet5" in family_names()
    assert describe("lenet5", {}) == "lenet5"
    test_family_contract("lenet5")
    test_any_input_channel_count("lenet5")
    test_fused.test_fused_member_equals_plain_member("lenet5")
    for scope in ("uniform", "global"):
        test_prune.test_structured_hits_flop_target_and_runs("lenet5", scope)
    test_prune.test_save_load_round_trip("lenet5", tmp_path)
    test_quant.test_every_family_quantizes_activations("lenet5")
    assert "lenet5" not in test_quant.foldable_families()  # no BatchNorm to fold


def test_importing_the_package_registers_a_file_dropped_into_it(tmp_path):
    """What start-up does: a fresh ``minarch.models.families`` finds the new module alone."""
    (tmp_path / "lenet5.py").write_text(LENET5)
    script = (
        "import importlib.util, sys\n"
        "from minarch.models import family_names\n"
        "spec = importlib.util.find_spec('minarch.models.families')\n"
        f"spec.submodule_search_locations.append({str(tmp_path)!r})\n"
        "package = importlib.util.module_from_spec(spec)\n"
        "sys.modules[spec.name] = package\n"
        "spec.loader.exec_module(package)\n"
        "print(family_names())\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert "'lenet5'" in result.stdout and "'resnet_cifar'" in result.stdout


def test_the_throwaway_family_is_gone_afterwards():
    assert "lenet5" not in family_names()
    assert "minarch.models.families.lenet5" not in sys.modules


def test_every_family_module_is_imported():
    family_names()
    names = [module.name for module in pkgutil.iter_modules(families.__path__)]
    assert {"cnn", "mlp", "resnet_cifar", "vit"} <= set(names)
    assert all(f"{families.__name__}.{name}" in sys.modules for name in names)


def test_a_module_that_fails_to_import_fails_loudly(package_file):
    with pytest.raises(AttributeError, match="Sequentail"):
        package_file("broken", "from torch import nn\n\nLAYER = nn.Sequentail()\n")


def test_an_example_must_be_a_config_of_its_family(monkeypatch):
    monkeypatch.setattr(registry, "_FAMILIES", dict(registry._FAMILIES))
    mlp = example("mlp")
    with pytest.raises(ModelError, match="'wide_mlp': its example is not a CNNConfig"):
        registry.register("wide_mlp", type(example("cnn").config), None, None, example=mlp)
    assert "wide_mlp" not in family_names()
    assert isinstance(mlp, Example) and isinstance(mlp.config, config_class("mlp"))


# --- ResNet-CIFAR shortcuts (He et al. 2016, section 4.2) -----------------------------------

RESNETS = """
name: resnets
datasets: [cifar10]
models:
  - family: resnet_cifar
    depth: [20, 56]
training: {lr: 0.1, weight_decay: 0.0001, epochs: 180}
seeds: 1
"""
# Run ids and pack keys of ResNet-20 and ResNet-56 as stored before ``shortcut`` existed,
# when every CIFAR ResNet had option-B shortcuts; and those of option A, new with it.
OPTION_B_IDS = [("7b26be3f2dd1ae40", "7ec9c4722100b757"), ("9589a82ab14ddf57", "8218ff25553da0b4")]
OPTION_A_IDS = [("3cb0f26a920a34ce", "c95e936ffc507390"), ("9a553bb4d0c38619", "9bea076cdad0877f")]


def _ids(shortcut: str | None = None) -> list[tuple[str, str]]:
    text = RESNETS if shortcut is None else RESNETS.replace("56]", f"56]\n    shortcut: {shortcut}")
    return [(run.id, run.pack_key) for run in expand(parse_study(text, "resnets.yaml"))]


def test_option_b_keeps_the_run_ids_of_the_runs_stored_before_the_setting():
    assert _ids("B") == OPTION_B_IDS


def test_option_a_is_the_default_and_has_its_own_run_ids():
    assert _ids() == _ids("A") == OPTION_A_IDS
    (run,) = expand(parse_study(RESNETS.replace("[20, 56]", "20"), "resnets.yaml"))
    assert run.dump()["model"]["shortcut"] == "A", "stored configs name the option"


@pytest.mark.parametrize(
    ("depth", "shortcut", "parameters"),
    [(20, "A", 269_722), (56, "A", 853_018), (20, "B", 272_474), (56, "B", 855_770)],
)
def test_resnet_cifar_parameters_per_shortcut_option(depth, shortcut, parameters):
    """docs/methods.md B.2; option A is the default."""
    config = {"depth": depth, "shortcut": shortcut}
    assert count_parameters(_build("resnet_cifar", config, (3, 32, 32), num_classes=10)) == (
        parameters
    )
    if shortcut == "A":
        assert count_parameters(_resnet_cifar(depth)) == parameters


def test_option_a_shortcut_subsamples_and_zero_pads_the_new_channels():
    model = _build("resnet_cifar", {"depth": 8, "width_multiplier": 0.5}, (3, 8, 8))  # 8, 16, 32
    assert isinstance(model.stages[0][0].shortcut, nn.Identity)
    shortcut = model.stages[1][0].shortcut
    assert not list(shortcut.parameters()) and not list(shortcut.buffers())
    x = torch.randn(2, 8, 8, 8)
    out = shortcut(x)
    assert out.shape == (2, 16, 4, 4)
    assert torch.equal(out[:, 4:12], x[:, :, ::2, ::2])
    assert not out[:, :4].any() and not out[:, 12:].any()


def test_option_b_keeps_its_weight_names_and_label():
    """Stored option-B weights load into a model built with ``shortcut: B``."""
    model = _build("resnet_cifar", {"depth": 8, "shortcut": "B"}, (3, 8, 8))
    assert {"stages.1.0.shortcut.0.weight", "stages.1.0.shortcut.1.running_var"} <= set(
        model.state_dict()
    )
    assert (
        describe("resnet_cifar", {"depth": 56, "shortcut": "B"}) == "resnet_cifar 56 ×1 shortcut-B"
    )
    with pytest.raises(pydantic.ValidationError, match="shortcut"):
        config_class("resnet_cifar")(depth=20, shortcut="C")
