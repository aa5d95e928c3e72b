"""The ComfyUI node's hooks on stand-ins of ComfyUI's native Wan and HunyuanVideo (no ComfyUI in
CI: tests/comfyui_standins.py implements the hook contracts). Outputs are compared with an
independent float64 reference (tests/comfyui_reference.py)."""

from __future__ import annotations

import pytest
import torch

from comfyui_helpers import FRAMES, SPATIAL, assert_close, enhance, latent, patcher, text
from comfyui_reference import AFTER, BEFORE, Expectation, hunyuan_expected, reference_score, wan_expected
from comfyui_standin_models import HunyuanVideo, WanModel
from comfyui_standins import BaseModel, ModelPatcher, attention_pytorch
from eav_kernels.comfyui import EnhanceSettings, parse_blocks
from output_checks import assert_changed


def wan(seed=0, **kwargs) -> WanModel:
    torch.manual_seed(seed)
    return WanModel(**kwargs)


def hunyuan(seed=0) -> HunyuanVideo:
    torch.manual_seed(seed)
    return HunyuanVideo()


def _expected(family: str, diffusion_model, placement: str) -> ModelPatcher:
    """The stand-in model enhanced by the float64 reference (``comfyui_reference``)."""
    expectation = Expectation(placement=placement)
    expected = wan_expected(diffusion_model, expectation) if family == "wan" else \
        hunyuan_expected(diffusion_model, expectation, FRAMES, SPATIAL)
    return ModelPatcher(BaseModel(expected))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("placement", [AFTER, BEFORE])
@pytest.mark.parametrize("family", ["wan", "hunyuan"])
def test_node_matches_reference(generator, family, dtype, placement):
    model = patcher(wan() if family == "wan" else hunyuan(), dtype)
    x, context = latent(generator, dtype=dtype), text(generator, dtype=dtype)
    enhanced = enhance(model, weight=4.0, placement=placement).sample_call(x, 0.7, context)
    expected = _expected(family, model.model.diffusion_model, placement)
    assert_close(enhanced, expected.sample_call(x, 0.7, context))
    assert_changed(enhanced.float(), model.sample_call(x, 0.7, context).float())


def test_placements_differ_by_score_minus_one_times_bias(generator):
    """One block, no feed-forward: the block output is x + o(...), so scaling o's output instead
    of its input adds (score - 1) * o.bias to every video row."""
    model = patcher(wan(depth=1, ffn=False))
    x, context = latent(generator), text(generator)
    after = enhance(model, placement=AFTER).sample_call(x, 0.5, context)
    before = enhance(model, placement=BEFORE).sample_call(x, 0.5, context)
    attention = model.model.diffusion_model.blocks[0].self_attn
    captured = {}

    def capture(module, q, k, out, options):
        captured["score"] = reference_score(q, k, FRAMES, 4.0, None)
        return module.o(out)

    reference = wan_expected(model.model.diffusion_model, Expectation())
    reference.blocks[0].self_attn.reference = capture
    ModelPatcher(BaseModel(reference)).sample_call(x, 0.5, context)
    assert captured["score"] > 1.0
    expected = ((captured["score"] - 1) * attention.o.bias.double()).float().expand_as(after)
    torch.testing.assert_close(after - before, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("sigma, inside", [(0.9, False), (0.5, True), (0.3, False)])
def test_window_follows_percent_to_sigma(generator, sigma, inside):
    """start 0.2, end 0.6 on a flow schedule: sigma 0.8 down to 0.4 is enhanced."""
    model = patcher(wan())
    x, context = latent(generator), text(generator)
    out = enhance(model, start_percent=0.2, end_percent=0.6).sample_call(x, sigma, context)
    plain = model.sample_call(x, sigma, context)
    if inside:
        expected = ModelPatcher(BaseModel(wan_expected(model.model.diffusion_model, Expectation())))
        assert_close(out, expected.sample_call(x, sigma, context))
        assert_changed(out, plain)
    else:
        assert torch.equal(out, plain)


@pytest.mark.parametrize("family", ["wan", "hunyuan"])
def test_blocks_select_what_is_enhanced(generator, family):
    model = patcher(wan(depth=3) if family == "wan" else hunyuan())
    x, context = latent(generator), text(generator)
    out = enhance(model, blocks=parse_blocks("1-2")).sample_call(x, 0.5, context)
    expectation = Expectation(blocks={1, 2})
    reference = wan_expected(model.model.diffusion_model, expectation) if family == "wan" else \
        hunyuan_expected(model.model.diffusion_model, expectation, FRAMES, SPATIAL)
    assert_close(out, ModelPatcher(BaseModel(reference)).sample_call(x, 0.5, context))
    with pytest.raises(ValueError, match=r"blocks \[4, 5\] do not exist: this model has 4 blocks"):
        enhance(patcher(hunyuan()), blocks=parse_blocks("2, 4-5"))


def test_parse_blocks():
    assert parse_blocks("all") is None and parse_blocks(" ") is None
    assert parse_blocks("0-2, 7") == {0, 1, 2, 7}
    for bad in ("1-", "a", "3-1", "1-2-3"):
        with pytest.raises(ValueError, match="blocks"):
            parse_blocks(bad)


@pytest.mark.parametrize("family", ["wan", "hunyuan"])
def test_per_sample_scores_each_cond_or_uncond_entry_alone(generator, family):
    """cond and uncond batched together get the scores each gets when run alone; one shared
    score (per_sample=False) does not."""
    model = patcher(wan() if family == "wan" else hunyuan())
    x, context = latent(generator), text(generator)
    per_sample = enhance(model, per_sample=True)
    batched = per_sample.sample_call(x, 0.5, context, cond_or_uncond=(0, 1))
    alone = torch.cat([per_sample.sample_call(x[i:i + 1], 0.5, context[i:i + 1], cond_or_uncond=(i,))
                       for i in range(2)])
    assert_close(batched, alone)
    shared = enhance(model).sample_call(x, 0.5, context, cond_or_uncond=(0, 1))
    assert_changed(shared, batched, at_least=1e-6)
    expected = wan_expected(model.model.diffusion_model, Expectation(entries=2)) if family == "wan" else \
        hunyuan_expected(model.model.diffusion_model, Expectation(entries=2), FRAMES, SPATIAL)
    assert_close(batched, ModelPatcher(BaseModel(expected)).sample_call(x, 0.5, context, cond_or_uncond=(0, 1)))


@pytest.mark.parametrize("family", ["wan", "hunyuan"])
def test_an_attention_override_set_before_keeps_running(generator, family):
    """A Sage / Flash attention node's override stays in place and computes every attention."""
    model = patcher(wan() if family == "wan" else hunyuan())
    calls = []

    def override(attention_function, *args, **kwargs):
        calls.append(kwargs.get("heads", args[3] if len(args) > 3 else None))
        return attention_function(*args, **kwargs)

    with_override = model.clone()
    with_override.set_model_attention_override(override)
    x, context = latent(generator), text(generator)
    out = enhance(with_override).sample_call(x, 0.5, context)
    blocks = 2 if family == "wan" else 4
    assert len(calls) == blocks
    reference = wan_expected(model.model.diffusion_model, Expectation()) if family == "wan" else \
        hunyuan_expected(model.model.diffusion_model, Expectation(), FRAMES, SPATIAL)
    assert_close(out, ModelPatcher(BaseModel(reference)).sample_call(x, 0.5, context))


@pytest.mark.parametrize("placement", [AFTER, BEFORE])
def test_wan_vace_hint_blocks_are_left_alone(generator, placement):
    """VACE hint blocks call the same hook with the main block's index: not enhanced, and no score
    of theirs reaches a later call (the same clone sampled inside, then outside the window)."""
    model = patcher(wan(vace_layers=(0, 1)))
    x, context = latent(generator), text(generator)
    enhanced = enhance(model, placement=placement, start_percent=0.2, end_percent=0.6)
    reference = ModelPatcher(BaseModel(wan_expected(model.model.diffusion_model, Expectation(placement=placement))))
    for block in reference.model.diffusion_model.vace_blocks:
        block.self_attn.reference = None
    assert_close(enhanced.sample_call(x, 0.5, context), reference.sample_call(x, 0.5, context))
    assert torch.equal(enhanced.sample_call(x, 0.9, context), model.sample_call(x, 0.9, context))


def test_wan_extra_tokens_are_refused_with_the_numbers(generator):
    model = enhance(patcher(wan()))
    reference_latent = torch.randn(2, 4, 1, 6, 10, generator=generator)
    with pytest.raises(ValueError, match=r"got 60 image tokens.*F=3 frames of S=15 tokens = 45: 15 extra"):
        model.sample_call(latent(generator), 0.5, text(generator), reference_latent=reference_latent)


def test_hunyuan_video_reference_latent_is_located_before_the_video(generator):
    """HunyuanVideo prepends a reference latent's tokens to the image: attended, not measured or scaled."""
    model = patcher(hunyuan())
    x, context = latent(generator), text(generator)
    ref = torch.randn(2, 4, 1, 6, 10, generator=generator)
    out = enhance(model).sample_call(x, 0.5, context, ref_latent=ref)
    reference = hunyuan_expected(model.model.diffusion_model, Expectation(), FRAMES, SPATIAL)
    expected = ModelPatcher(BaseModel(reference)).sample_call(x, 0.5, context, ref_latent=ref)
    assert_close(out, expected)
    assert_changed(out, model.sample_call(x, 0.5, context, ref_latent=ref))


@pytest.mark.parametrize("family", ["wan", "hunyuan"])
def test_the_original_model_is_untouched(generator, family):
    model = patcher(wan() if family == "wan" else hunyuan())
    x, context = latent(generator), text(generator)
    before = model.sample_call(x, 0.5, context)
    options, modules = repr(model.model_options), dict(model.model.named_modules())
    enhanced = enhance(model)
    enhanced.sample_call(x, 0.5, context)
    assert repr(model.model_options) == options and not model.object_patches and not model.wrappers
    assert dict(model.model.named_modules()) == modules
    assert torch.equal(model.sample_call(x, 0.5, context), before)
    assert enhanced.object_patches and not model.object_patches_backup


@pytest.mark.parametrize("family", ["wan", "hunyuan"])
@pytest.mark.parametrize("placement", [AFTER, BEFORE])
def test_score_one_is_bit_identical_to_the_unpatched_model(generator, family, placement):
    """A weight that clamps every score to 1: the patched path (HunyuanVideo's RoPE applied by our
    hook, the object-patched projections) gives the unpatched model's bits."""
    model = patcher(wan() if family == "wan" else hunyuan(), torch.bfloat16)
    x, context = latent(generator, dtype=torch.bfloat16), text(generator, dtype=torch.bfloat16)
    out = enhance(model, weight=-100.0, placement=placement).sample_call(x, 0.5, context)
    assert torch.equal(out, model.sample_call(x, 0.5, context))


def test_a_block_that_would_not_call_the_hooks_is_refused():
    model = wan()

    class OtherSelfAttention(torch.nn.Module):
        pass

    model.blocks[1].self_attn = OtherSelfAttention()
    with pytest.raises(TypeError, match="Wan: found a OtherSelfAttention where a WanSelfAttention"):
        enhance(patcher(model))


def test_a_cache_that_skips_the_model_call_inside_ours(generator):
    """EasyCache applied after the node: its DIFFUSION_MODEL wrapper runs inside ours and may return
    without calling the model; nothing runs, nothing is refused."""
    enhanced = enhance(patcher(wan()))
    cached = torch.randn(2, 45, 24, generator=generator)
    enhanced.add_wrapper_with_key("diffusion_model", "easycache", lambda executor, *args, **kwargs: cached)
    assert enhanced.sample_call(latent(generator), 0.5, text(generator)) is cached


def test_unknown_and_refused_models(generator):
    with pytest.raises(TypeError, match="does not know Linear; it enhances .*Wan 2.1 / 2.2, HunyuanVideo"):
        enhance(ModelPatcher(BaseModel(torch.nn.Linear(2, 2))))

    class CausalWanModel(WanModel):
        pass

    with pytest.raises(TypeError, match="does not apply to CausalWanModel"):
        enhance(ModelPatcher(BaseModel(CausalWanModel())))
    with pytest.raises(ValueError, match="already enhanced"):
        enhance(enhance(patcher(wan())))


def test_pending_scores_are_kept_per_device():
    """Multi-GPU sampling runs one model call per device concurrently: a call starting on one
    device must not drop or take the score another device's block is about to apply."""
    from eav_kernels.comfyui.projection import PendingScores

    pending = PendingScores()
    cpu, meta = torch.tensor(1.5), torch.tensor(1.5, device="meta")
    pending.put(3, cpu, slice(0, 4))
    pending.put(3, meta, slice(0, 4))
    pending.clear(torch.device("cpu"))
    assert pending.take(3, torch.device("cpu")) is None
    assert pending.take(3, torch.device("meta"))[0] is meta


def test_settings_are_checked():
    with pytest.raises(ValueError, match="start_percent=0.7, end_percent=0.2"):
        EnhanceSettings(start_percent=0.7, end_percent=0.2)
    with pytest.raises(ValueError, match="placement"):
        EnhanceSettings(placement="somewhere")
    with pytest.raises(ValueError):
        EnhanceSettings(weight=float("nan"))


def test_standin_attention_is_sdpa(generator):
    """The stand-ins' attention itself: [B, L, H*D] in and out, heads split as ComfyUI splits them."""
    q, k, v = (torch.randn(2, 7, 6, generator=generator) for _ in range(3))
    split = [t.view(2, 7, 3, 2).transpose(1, 2) for t in (q, k, v)]
    expected = torch.nn.functional.scaled_dot_product_attention(*split).transpose(1, 2).reshape(2, 7, 6)
    torch.testing.assert_close(attention_pytorch(q, k, v, 3), expected)
