"""Enhance-A-Video on diffusers video models, in the style of diffusers' own hooks::

    from eav_kernels import EnhanceAVideoConfig, apply_enhance_a_video, remove_enhance_a_video
    apply_enhance_a_video(pipe, EnhanceAVideoConfig(enhance_weight=4.0))   # every video model of the pipeline
    video = pipe(prompt, num_frames=49).frames[0]
    remove_enhance_a_video(pipe)

``config`` and ``spec`` import without diffusers; the hooks import it on first use.
"""

from __future__ import annotations

from typing import Any, Mapping

import torch

from .config import EnhanceAVideoConfig
from .spec import AdapterSpec

__all__ = ["AdapterSpec", "EnhanceAVideoConfig", "apply_enhance_a_video", "refused_models",
           "remove_enhance_a_video", "supported_models", "video_models"]

PipelineConfig = EnhanceAVideoConfig | Mapping[str, "EnhanceAVideoConfig | None"]


def apply_enhance_a_video(target: Any, config: PipelineConfig) -> None:
    """Enable Enhance-A-Video on a diffusers video model, or on every video model of a pipeline.

    ``target``: a supported model (``supported_models()``), or a pipeline (anything with a
    ``components`` dict, as ``DiffusionPipeline``): then every component that is a video model
    is enhanced, e.g. Wan 2.2's ``transformer`` (high noise) and ``transformer_2`` (low noise).
    ``config``: one ``EnhanceAVideoConfig`` for all of them, or (pipelines only)
    ``{component name: config or None}`` naming every video model of the pipeline (``None``
    leaves that one unenhanced, on purpose). A refused or unknown video model raises
    ``TypeError``; nothing is left half applied when one component fails.
    """
    if isinstance(target, torch.nn.Module):
        if not isinstance(config, EnhanceAVideoConfig):
            raise TypeError(f"a single model takes one EnhanceAVideoConfig, got {type(config).__name__}")
        from .hooks import apply_enhance_a_video as apply

        apply(target, config)
        return
    configs = _component_configs(target, config)
    from .hooks import apply_enhance_a_video as apply, remove_enhance_a_video as remove

    applied: list[torch.nn.Module] = []
    try:
        for name, component_config in configs.items():
            apply(target.components[name], component_config)
            applied.append(target.components[name])
    except BaseException:
        for model in applied:
            remove(model)
        raise


def remove_enhance_a_video(target: Any) -> None:
    """Remove Enhance-A-Video from a model, or from every model of a pipeline: it computes
    exactly as before."""
    from .hooks import remove_enhance_a_video as remove

    models = [target] if isinstance(target, torch.nn.Module) else [
        component for component in _components(target).values() if isinstance(component, torch.nn.Module)
    ]
    for model in models:
        remove(model)


def video_models(pipeline: Any) -> dict[str, torch.nn.Module]:
    """``{component name: model}`` of the pipeline's video models: supported or refused classes
    (an auxiliary network such as a VAE, text encoder or ControlNet is not one)."""
    from .models import REFUSED_MODELS, SUPPORTED_MODELS

    known = SUPPORTED_MODELS.keys() | REFUSED_MODELS.keys()
    return {
        name: component for name, component in _components(pipeline).items()
        if isinstance(component, torch.nn.Module)
        and any(cls.__name__ in known for cls in type(component).__mro__)
    }


def supported_models() -> list[str]:
    """Class names of the diffusers video models with an adapter."""
    from .models import SUPPORTED_MODELS

    return sorted(SUPPORTED_MODELS)


def refused_models() -> dict[str, str]:
    """``{class name: reason}`` of the diffusers video models Enhance-A-Video refuses."""
    from .refused import REFUSED_MODELS

    return dict(REFUSED_MODELS)


def _components(pipeline: Any) -> dict[str, Any]:
    components = getattr(pipeline, "components", None)
    if not isinstance(components, Mapping):
        raise TypeError(
            f"expected a diffusers video model or a pipeline (with a `components` dict), got "
            f"{type(pipeline).__name__}"
        )
    return dict(components)


def _component_configs(pipeline: Any, config: PipelineConfig) -> dict[str, EnhanceAVideoConfig]:
    """``{component name: config}`` to apply, checked against the pipeline's video models."""
    models = video_models(pipeline)
    if not models:
        raise TypeError(
            f"{type(pipeline).__name__} has no video model Enhance-A-Video knows (components: "
            f"{', '.join(sorted(_components(pipeline)))}); supported: {', '.join(supported_models())}"
        )
    if isinstance(config, EnhanceAVideoConfig):
        return {name: config for name in models}
    if not isinstance(config, Mapping):
        raise TypeError(f"config must be an EnhanceAVideoConfig or {{component: config}}, got {config!r}")
    unknown = sorted(set(config) - set(models))
    missing = sorted(set(models) - set(config))
    if unknown or missing:
        raise ValueError(
            f"{type(pipeline).__name__}'s video models are {sorted(models)}; the config "
            + (f"names {unknown}, which are not among them" if unknown else "")
            + ("; " if unknown and missing else "")
            + (f"leaves out {missing} (map them to None to leave them unenhanced on purpose)" if missing else "")
        )
    return {name: value for name, value in config.items() if value is not None}
