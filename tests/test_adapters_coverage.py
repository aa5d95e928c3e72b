"""Every video model diffusers exports is decided: supported (a spec, with notes and a tiny-model
case in tests/adapters_tiny_models.py) or refused with a reason. A diffusers upgrade that adds a
``*Transformer3DModel`` fails here until someone decides; video models named otherwise (the UNets,
Cosmos 3, LTX-2's diffusion decoder) are listed by name."""

import pytest
import torch

diffusers = pytest.importorskip("diffusers")

from adapters_tiny_base import enhance_config
from adapters_tiny_models import CASES
from eav_kernels import apply_enhance_a_video, remove_enhance_a_video
from eav_kernels.adapters import refused_models, supported_models
from eav_kernels.adapters.models import SUPPORTED_MODELS
from eav_kernels.adapters.spec import find_spec

VIDEO_UNETS = ("UNetMotionModel", "UNetSpatioTemporalConditionModel", "UNet3DConditionModel", "I2VGenXLUNet")
# video models whose names follow neither pattern (diffusers 0.42): Cosmos 3, LTX-2's diffusion decoder
OTHER_VIDEO_MODELS = ("Cosmos3OmniTransformer", "LTX2VideoDiffusionDecoderModel")

# The video models this adapter set was planned against (diffusers 0.42): a later diffusers that
# drops or renames one reports it here (skipped, with the name) instead of silently testing less.
PLANNED = (
    "HunyuanVideo15Transformer3DModel", "HunyuanVideoFramepackTransformer3DModel", "LTX2VideoTransformer3DModel",
    "SkyReelsV2Transformer3DModel", "WanVACETransformer3DModel", "WanAnimateTransformer3DModel",
    "WanAnimate2Transformer3DModel", "ChronoEditTransformer3DModel", "CosmosTransformer3DModel",
    "AllegroTransformer3DModel", "EasyAnimateTransformer3DModel", "ConsisIDTransformer3DModel",
    "Kandinsky5Transformer3DModel", "Kandinsky6Transformer3DModel", "SanaVideoTransformer3DModel",
    "MotifVideoTransformer3DModel", "HeliosTransformer3DModel", "AnyFlowTransformer3DModel",
    "MiniMaxH3Transformer3DModel", *VIDEO_UNETS, *OTHER_VIDEO_MODELS,
)


def _exported_video_models() -> list[str]:
    named = {name for name in dir(diffusers) if name.endswith("Transformer3DModel")}
    return sorted(named | {name for name in (*VIDEO_UNETS, *OTHER_VIDEO_MODELS) if hasattr(diffusers, name)})


def test_every_exported_video_model_is_supported_or_refused():
    decided = set(supported_models()) | set(refused_models())
    undecided = [name for name in _exported_video_models() if name not in decided]
    assert not undecided, (
        f"diffusers {diffusers.__version__} exports video models with no adapter and no refusal: "
        f"{undecided}. Add a spec (eav_kernels/adapters/models.py) and a tiny-model case, or a reason "
        "to eav_kernels/adapters/refused.py"
    )
    assert not set(supported_models()) & set(refused_models()), "a model is both supported and refused"


@pytest.mark.parametrize("name", PLANNED)
def test_planned_model_exists_in_installed_diffusers(name):
    if not hasattr(diffusers, name):
        pytest.skip(f"{name} is not exported by the installed diffusers {diffusers.__version__}")
    assert name in set(supported_models()) | set(refused_models())


@pytest.mark.parametrize("name", sorted(refused_models()))
def test_refused_model_raises_type_error_with_its_reason(name):
    stand_in = type(name, (torch.nn.Module,), {})()  # the class name is what the adapter checks
    with pytest.raises(TypeError) as error:
        apply_enhance_a_video(stand_in, enhance_config(4.0))
    message = str(error.value)
    assert f"does not apply to {name}" in message and refused_models()[name] in message
    assert len(refused_models()[name]) > 40, "a refusal must say why"
    assert "yet" not in refused_models()[name].split(), "a refusal is a reason, not a to-do"


def test_subclass_of_refused_model_is_refused():
    refused = type("ChronoEditTransformer3DModel", (torch.nn.Module,), {})
    with pytest.raises(TypeError, match="image editor"):
        find_spec(type("MyChronoEdit", (refused,), {})(), SUPPORTED_MODELS, refused_models())


def test_every_supported_model_has_notes_and_a_tiny_model_case():
    built = {type(case.build()).__name__: name for name, case in CASES.items()}
    missing = [model for model in supported_models() if model not in built]
    assert not missing, f"supported models without a tiny-model case: {missing}"
    for spec in SUPPORTED_MODELS.values():
        assert len(spec.notes) > 80, f"{spec.model}: write the traps found into the spec's notes"


@pytest.mark.parametrize("name, mode, reason", [
    ("skyreels_v2", lambda model, inputs: model.register_to_config(num_frame_per_block=3), "causal"),
    ("kandinsky5", lambda model, inputs: inputs.update(sparse_params={"to_fractal": False}), "NABLA"),
])
def test_model_mode_without_a_clear_meaning_refuses_the_forward(name, mode, reason):
    """A supported model in a mode where the method has no clear meaning (block-causal frames,
    block-sparse attention) raises TypeError before computing anything."""
    case = CASES[name]
    model = case.build()
    inputs = case.inputs(1, torch.Generator().manual_seed(0))
    mode(model, inputs)
    apply_enhance_a_video(model, enhance_config(4.0))
    try:
        with pytest.raises(TypeError, match=reason):
            model(**inputs)
    finally:
        remove_enhance_a_video(model)


def test_docs_list_every_supported_and_refused_model():
    from cli_helpers import REPO

    text = (REPO / "docs" / "diffusers.md").read_text()
    missing = [name for name in [*supported_models(), *refused_models()] if f"`{name}`" not in text]
    assert not missing, f"docs/diffusers.md does not list {missing}"
