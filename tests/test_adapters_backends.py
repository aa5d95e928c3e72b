"""apply_enhance_a_video on every attention backend of diffusers' dispatcher: tiny Wan,
HunyuanVideo and CogVideoX, against the independent reference (tests/adapters_tiny_models.py,
computed on the native backend). CPU: ``native``, ``_native_math``, ``_native_flash``, ``flex``
and a backend registered into diffusers' registry that never calls SDPA. GPU-only backends
(``flash``, ``_flash_3``, ``sage``, ``xformers``) run under ``-m gpu`` where their package is
installed (benchmarks/gpu_check.sh) and skip with the reason otherwise.
"""

from __future__ import annotations

import contextlib
import importlib.util

import pytest
import torch

pytest.importorskip("diffusers")  # before the imports that need it: a machine without it skips

from adapters_tiny_models import CASES, attention_layer_names, reference_output, run
from diffusers.models.attention_dispatch import AttentionBackendName, _AttentionBackendRegistry
from eav_kernels import EnhanceAVideoConfig, apply_enhance_a_video, remove_enhance_a_video
from eav_kernels.telemetry import CFIRecorder

MODELS = ["wan", "hunyuan_video", "cogvideox"]
CPU_BACKENDS = ["native", "_native_math", "_native_flash", "flex"]
PLACEMENTS = ["to_out", "attention_output"]
# Backends diffusers itself refuses for a model's inputs (not an Enhance-A-Video limit).
REFUSED = {("hunyuan_video", "_native_flash"): "diffusers' _native_flash takes no attn_mask; "
                                               "HunyuanVideo passes its text mask"}


@pytest.fixture(scope="module", params=MODELS)
def case_and_model(request):
    case = CASES[request.param]
    return case, case.build()


@contextlib.contextmanager
def attention_backend(model, backend: str):
    """``model.set_attention_backend(backend)`` for the block (it also sets diffusers' global
    active backend, which is put back)."""
    active = _AttentionBackendRegistry._active_backend
    model.set_attention_backend(backend)
    try:
        yield
    finally:
        model.reset_attention_backend()
        _AttentionBackendRegistry.set_active_backend(active)


def _reference(model, case, inputs, placement):
    weights = {name: 4.0 for name in attention_layer_names(model, case)}
    expected = reference_output(model, case, inputs, weights, placement=placement)
    assert (expected - run(model, inputs)).abs().max() > 1e-3, "enhancement changed nothing: the test is blind"
    return expected


def _enhanced(model, inputs, placement, recorder=None):
    apply_enhance_a_video(model, EnhanceAVideoConfig(enhance_weight=4.0, placement=placement, recorder=recorder))
    try:
        return run(model, inputs)  # under torch.no_grad(): flex has no CPU backward
    finally:
        remove_enhance_a_video(model)


@pytest.mark.parametrize("placement", PLACEMENTS)
@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_cpu_backends_match_reference(case_and_model, backend, placement):
    case, model = case_and_model
    if (case.name, backend) in REFUSED:
        pytest.skip(REFUSED[case.name, backend])
    inputs = case.inputs(2, torch.Generator().manual_seed(7))
    expected = _reference(model, case, inputs, placement)
    with attention_backend(model, backend):
        out = _enhanced(model, inputs, placement)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)


def _hand_written_attention(query, key, value, attn_mask, scale):
    """softmax(q kᵀ) v on diffusers' ``[B, N, H, D]``, in float32, with neither SDPA nor a softmax
    call (which the engine would also see): only the tap on the registry entry shows it."""
    q, k, v = (x.transpose(1, 2).float() for x in (query, key, value))
    logits = (q @ k.transpose(-2, -1)) * (q.shape[-1] ** -0.5 if scale is None else scale)
    if attn_mask is not None:  # diffusers' 2-D key mask [B, N_k] (True = attend), or additive
        mask = attn_mask if attn_mask.dim() == 4 else attn_mask[:, None, None, :]
        logits = logits.masked_fill(~mask, float("-inf")) if mask.dtype == torch.bool else logits + mask
    weights = (logits - logits.amax(-1, keepdim=True)).exp()
    return ((weights / weights.sum(-1, keepdim=True)) @ v).transpose(1, 2).to(query.dtype)


@contextlib.contextmanager
def registered_backend(name: AttentionBackendName, function):
    """``function`` registered as diffusers backend ``name`` (through diffusers' own decorator)
    for the block; the registry's previous entry is put back."""
    registry = _AttentionBackendRegistry
    saved = (registry._backends.get(name), registry._constraints.get(name), registry._supported_arg_names.get(name))
    registry.register(name)(function)
    try:
        yield
    finally:
        registry._backends[name], registry._constraints[name], registry._supported_arg_names[name] = saved


@pytest.mark.parametrize("placement", PLACEMENTS)
def test_third_party_backend_never_calling_sdpa(case_and_model, placement):
    """Registered after apply_enhance_a_video (the engine taps it at the next forward), under
    the name of a CUDA-only backend this machine cannot run. CogVideoX's processor calls SDPA
    itself whatever the backend: there the custom backend is never called."""
    case, model = case_and_model
    inputs = case.inputs(2, torch.Generator().manual_seed(7))
    expected = _reference(model, case, inputs, placement)
    calls = []

    def backend(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None,
                enable_gqa=False, return_lse=False, _parallel_config=None):
        calls.append(query.shape)
        return _hand_written_attention(query, key, value, attn_mask, scale)

    apply_enhance_a_video(model, EnhanceAVideoConfig(enhance_weight=4.0, placement=placement))
    try:
        with registered_backend(AttentionBackendName._NATIVE_CUDNN, backend), \
                attention_backend(model, "_native_cudnn"):
            out = run(model, inputs)
    finally:
        remove_enhance_a_video(model)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    if case.name == "cogvideox":
        assert not calls
    else:
        assert len(calls) >= len(attention_layer_names(model, case))


# ---- GPU-only backends ---------------------------------------------------------------------

GPU_BACKENDS = {  # backend -> the package it needs
    "flash": "flash_attn", "_flash_3": "flash_attn_interface", "sage": "sageattention", "xformers": "xformers",
}


@pytest.mark.gpu
@pytest.mark.parametrize("placement", PLACEMENTS)
@pytest.mark.parametrize("backend", sorted(GPU_BACKENDS))
def test_gpu_backends_match_native(case_and_model, backend, placement):
    """bf16 on CUDA: the enhanced output on ``backend`` differs from the native-backend
    reference by at most twice what the unenhanced model's outputs differ between the two
    backends, times the largest score (kernels round differently; the score multiplies that),
    plus two bf16 ulps of the output (the score's own rounding)."""
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device (none available)")
    if importlib.util.find_spec(GPU_BACKENDS[backend]) is None:
        pytest.skip(f"the {backend} backend needs {GPU_BACKENDS[backend]}, which is not installed")
    case, _ = case_and_model
    model = case.build().to("cuda", torch.bfloat16)
    inputs = {key: value.to("cuda", torch.bfloat16 if value.is_floating_point() else value.dtype)
              if isinstance(value, torch.Tensor) else value
              for key, value in case.inputs(2, torch.Generator().manual_seed(7)).items()}
    expected = _reference(model, case, inputs, placement).float()
    plain_native = run(model, inputs).float()
    recorder = CFIRecorder()
    with attention_backend(model, backend):
        plain = run(model, inputs).float()
        out = _enhanced(model, inputs, placement, recorder).float()
    largest_score = max(layer["score"] for layer in recorder.to_dict()["forwards"][0]["layers"].values())
    allowed = (2 * largest_score * (plain - plain_native).abs().max()
               + 2 * torch.finfo(torch.bfloat16).eps * expected.abs().max())
    assert (out - expected).abs().max() <= allowed


def test_taps_keep_an_unenhanced_attention_compilable_fullgraph():
    """The taps stay in diffusers' registry after removal; an unenhanced Wan attention layer
    through them still compiles without a graph break and computes what eager does."""
    case = CASES["wan"]
    model = case.build()
    apply_enhance_a_video(model, EnhanceAVideoConfig())  # installs the taps
    remove_enhance_a_video(model)
    registry = _AttentionBackendRegistry._backends
    assert type(registry[AttentionBackendName.NATIVE]).__name__ == "AttentionTap"
    attention = model.blocks[0].attn1
    hidden = torch.randn(2, 12, 16, generator=torch.Generator().manual_seed(3))
    torch._dynamo.reset()
    try:
        with torch.no_grad():
            compiled = torch.compile(attention, fullgraph=True)(hidden)
            eager = attention(hidden)
    finally:
        torch._dynamo.reset()
    torch.testing.assert_close(compiled, eager, rtol=1e-5, atol=1e-5)
