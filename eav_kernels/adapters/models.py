"""The supported diffusers video models, one ``AdapterSpec`` each (data only), and the refused
ones (``refused.py``). ``notes`` hold the traps found reading each model's diffusers source."""

from __future__ import annotations

import dataclasses

from .readers import (
    frames_axis,
    grid_tokens,
    ltx2_num_frames,
    ltx2_video_tokens,
    kandinsky5_sparse_attention,
    ltx_num_frames,
    ltx_video_tokens,
    minimax_h3_num_frames,
    minimax_h3_video_tokens,
    skyreels_causal_blocks,
    wan_animate2_num_frames,
    wan_animate2_reference_pass,
    wan_animate2_video_tokens,
)
from .refused import REFUSED_MODELS
from .spec import AdapterSpec

__all__ = ["REFUSED_MODELS", "SUPPORTED_MODELS"]

_EDM_TIMESTEP = ("its pipeline passes an EDM noise level (c_noise = log(sigma) / 4), not a "
                 "0..num_train_timesteps timestep; use the whole schedule")

# ---- joint [text; video] attention ----------------------------------------------------------

COGVIDEOX = AdapterSpec(
    model="CogVideoXTransformer3DModel",
    self_attention=r"transformer_blocks\.\d+\.attn1",
    text="first",
    num_frames=frames_axis(1, "patch_size_t"),  # [B, F, C, H, W]; 1.5 patches time by 2
    recommended_weight=3.4,
    notes="Joint [text; video] attention through F.scaled_dot_product_attention directly (not "
    "dispatch_attention_fn); RoPE is applied to the video part only. attn1 returns "
    "(video, text) after to_out.",
)

CONSISID = AdapterSpec(
    model="ConsisIDTransformer3DModel",
    self_attention=r"transformer_blocks\.\d+\.attn1",
    text="first",
    num_frames=frames_axis(1),  # [B, F, C, H, W]; no temporal patching
    notes="CogVideoX's blocks and processor: [text; video] joint attention, (video, text) out. The "
    "identity conditioning runs in separate modules (local_facial_extractor, "
    "perceiver_cross_attention, adding to the video tokens between blocks) and is left alone. The "
    "I2V input concatenates the image latents on channels, so every frame is generated.",
)

EASYANIMATE = AdapterSpec(
    model="EasyAnimateTransformer3DModel",
    self_attention=r"transformer_blocks\.\d+\.attn1",
    text="first",
    num_frames=frames_axis(2),  # [B, C, F, H, W]; 2D patches per frame, no temporal patching
    notes="[text; video] joint attention (MMDiT blocks project text with add_*_proj; the other "
    "blocks concatenate text onto hidden_states inside the processor: same token order). "
    "Inpaint and control latents are concatenated on channels, not frames. The text is CLIP/Qwen "
    "tokens plus optional T5 tokens, all before the video.",
)

HUNYUAN_VIDEO = AdapterSpec(
    model="HunyuanVideoTransformer3DModel",
    self_attention=r"(transformer_blocks|single_transformer_blocks)\.\d+\.attn",
    text="last",
    num_frames=frames_axis(2, "patch_size_t"),  # [B, C, F, H, W]
    recommended_weight=4.0,
    notes="Dual-stream blocks: [video; text] joint attention, to_out on the video part. "
    "Single-stream blocks: the attention has no to_out; its video output goes with the MLP "
    "branch into the block's proj_out, so both placements scale it before proj_out. The token "
    "refiner (context_embedder.token_refiner) is text-only and left alone. The text padding "
    "mask only masks text keys; video-to-video attention (all CFI reads) is unmasked.",
)

HUNYUAN_VIDEO_15 = AdapterSpec(
    model="HunyuanVideo15Transformer3DModel",
    self_attention=r"transformer_blocks\.\d+\.attn",
    text="last",
    num_frames=frames_axis(2, "patch_size_t"),  # [B, C, F, H, W]
    notes="Dual-stream blocks only: [video; text] joint attention, to_out on the video part. The "
    "'text' stream holds the image embedding (SigLIP tokens, zeroed and masked in T2V), ByT5 and "
    "the MLLM tokens, reordered valid-first; the mask pads video as valid, so video-to-video "
    "attention is unmasked. I2V concatenates the image latent and a mask on channels: every "
    "latent frame is a token frame.",
)

HUNYUAN_VIDEO_FRAMEPACK = AdapterSpec(
    model="HunyuanVideoFramepackTransformer3DModel",
    self_attention=r"(transformer_blocks|single_transformer_blocks)\.\d+\.attn",
    text="last",
    num_frames=frames_axis(2, "patch_size_t"),  # [B, C, F, H, W]: the section being generated
    video_tokens=grid_tokens(2, (3, 4), "patch_size", "patch_size_t"),
    conditioning="before",
    notes="HunyuanVideo's blocks, but each layer's input is [history 4x; history 2x; clean latents; "
    "current section]: the history latents are downsampled (2x, 4x) and the clean ones are earlier "
    "frames, none frame-major with the section's spatial grid. Only the current section (the last "
    "F*H*W tokens) is measured and scaled; history tokens are attended normally. The image "
    "embedding rides in the text stream (last). One Framepack section is F latent frames, "
    "so CFI is per section.",
)

MOTIF_VIDEO = AdapterSpec(
    model="MotifVideoTransformer3DModel",
    self_attention=r"(transformer_blocks|single_transformer_blocks)\.\d+\.attn",
    text="last",
    num_frames=frames_axis(2, "patch_size_t"),  # [B, C, F, H, W]
    notes="HunyuanVideo-like: dual-stream attn returns (video, text) after to_out; single-stream "
    "attn has no to_out and feeds the block's proj_out. Optional text cross-attention (cross_attn) "
    "takes the self-attention's video output as its input, so it sees the scaled output under "
    "both placements. Decoder single-stream blocks (num_decoder_layers > 0) attend "
    "[decoder video; encoder video]: the encoder's video tokens sit in the text slot (last) and "
    "are neither measured nor scaled. The first-frame image embedding rides in the text stream.",
)

MOCHI = AdapterSpec(
    model="MochiTransformer3DModel",
    self_attention=r"transformer_blocks\.\d+\.attn1",
    text="last",
    num_frames=frames_axis(2),  # [B, C, F, H, W]; no temporal patching
    residual_branch="norm2",
    timestep_rises=True,
    notes="The block adds norm2(attn_output, tanh(gate)) to the residual, and norm2 is an RMSNorm: "
    "a scalar on the attention output (before or after to_out) is normalised away. The score "
    "scales norm2's output, i.e. what is added to the residual, for both placements. The "
    "processor calls SDPA once per batch element (dropping padded text tokens), so one layer "
    "makes B attention calls of batch 1. Mochi's pipeline passes a rising timestep "
    "(0 = noise, 1000 = clean).",
)

# ---- video-only self-attention, text in cross-attention ------------------------------------

_WAN_FRAMES = frames_axis(2, "patch_size", patch_index=0)  # [B, C, F, H, W]; patch (t, h, w)

WAN = AdapterSpec(
    model="WanTransformer3DModel",
    self_attention=r"blocks\.\d+\.attn1",
    text=None,
    num_frames=_WAN_FRAMES,
    recommended_weight=4.0,
    notes="Layers are WanAttention, not diffusers' Attention: isinstance(m, Attention) finds "
    "nothing (the paper's code silently patches no layer). Text is in attn2 (cross-attention, "
    "left alone). The residual add runs in float32: hidden.float() + attn_output * gate. Wan 2.2 "
    "A14B pipelines carry two experts (transformer: high noise, transformer_2: low noise): give "
    "apply_enhance_a_video the pipeline to enhance both. Wan 2.2 TI2V-5B (expand_timesteps) puts "
    "the conditioning image in latent frame 0 with timestep 0 for its tokens: that frame counts "
    "in F, and the window reads the noisiest token's timestep.",
)

SKYREELS_V2 = AdapterSpec(
    model="SkyReelsV2Transformer3DModel",
    self_attention=r"blocks\.\d+\.attn1",
    text=None,
    num_frames=_WAN_FRAMES,
    forward_refusal=skyreels_causal_blocks,
    notes="Wan's blocks. Diffusion forcing passes one timestep per latent frame ([B, F]): the "
    "window reads the noisiest frame, so a forward is enhanced while any frame is still in the "
    "window. Long videos are generated in overlapping segments whose first frames are clean "
    "context: those count in F. With num_frame_per_block > 1 (causal_block_size) attention is "
    "block-causal over frames and the forward is refused. I2V (SkyReelsV2ImageToVideo) puts the "
    "CLIP image tokens in attn2's context.",
)

WAN_VACE = AdapterSpec(
    model="WanVACETransformer3DModel",
    self_attention=r"blocks\.\d+\.attn1",
    text=None,
    num_frames=_WAN_FRAMES,
    notes="Only the main blocks are enhanced. The VACE control branch (vace_blocks.*, attending "
    "over the control video) only produces hints added to the main blocks, and is left alone. "
    "Reference images (reference_images=...) are prepended to the latent video as extra latent "
    "frames: the transformer cannot tell them apart, so they count in F and are scaled with "
    "the video (the pipeline drops them after decoding).",
)

WAN_ANIMATE = AdapterSpec(
    model="WanAnimateTransformer3DModel",
    self_attention=r"blocks\.\d+\.attn1",
    text=None,
    num_frames=frames_axis(2, "patch_size", patch_index=0, reference_frames=1),
    video_tokens=grid_tokens(2, (3, 4), "patch_size", reference_frames=1),
    conditioning="before",
    notes="Latent frame 0 is the reference character image (pose latents are added to frames "
    "1: only), so F = latent frames - 1 and the first frame's tokens are conditioning: attended, "
    "not measured, not scaled. The face adapter (face_adapter.*) is a separate cross-attention "
    "from video tokens to motion vectors, left alone. Text and CLIP image tokens are in attn2.",
)

WAN_ANIMATE_2 = AdapterSpec(
    model="WanAnimate2Transformer3DModel",
    self_attention=r"blocks\.\d+\.self_attn",
    text="last",
    num_frames=wan_animate2_num_frames,
    video_tokens=wan_animate2_video_tokens,
    conditioning="before",
    forward_untouched=wan_animate2_reference_pass,
    notes="Two passes per segment. The reference pass (kv_cache_mode='extract') encodes the driving "
    "video and fills each layer's K/V cache: it is no denoising pass of the generated video and "
    "runs untouched. Each denoising pass (kv_cache_mode='cached') attends through one flex "
    "BlockMask call over a 128-aligned buffer: queries [generation; zero padding], keys "
    "[generation; zero padding; cached reference K/V], each generation frame seeing every "
    "generation token plus the reference frame of its index. The generation rows are the "
    "buffer's first rows, frame-major (checked: origin_area must give the latents' positions per "
    "frame), the padding sits where a last text would (so text='last'). The CFI is the generated "
    "frames' own F x F temporal softmax, as the method defines it: the softmax over the F frames "
    "of one spatial position, from their q and k; the reference keys and padding the model also "
    "attends are outside it. Latent frame 0 of hidden_states [C, 1 + F, H, W] (a list, one per "
    "sample) is the reference image's slot: attended, not measured or scaled; F = latent frames "
    "- 1 (previous-segment frames given as condition count in F). Runs on the flex backend only "
    "(the model's choice); text and cross-attention (cross_attn) left alone. Eager and under "
    "torch.compile (compile_repeated_blocks, which the model wants at video resolution, where "
    "eager flex materialises the scores): while dynamo traces the block, the dispatcher tap "
    "hands the flex call to the capture (engine/taps.py), so the CFI is computed in the graph "
    "beside the flex higher-order op; compiled equals eager (tested with dynamo alone and "
    "with inductor).",
)

HELIOS = AdapterSpec(
    model="HeliosTransformer3DModel",
    self_attention=r"blocks\.\d+\.attn1",
    text=None,
    num_frames=frames_axis(2, "patch_size", patch_index=0),  # [B, C, F, H, W]: the current chunk
    video_tokens=grid_tokens(2, (3, 4), "patch_size"),
    conditioning="before",
    notes="Autoregressive in chunks: each layer's input is [long; mid; short history; current "
    "chunk] with downsampled history latents (not frame-major on the chunk's grid). Only the "
    "current chunk (the last F*H*W tokens) is measured and scaled; it attends bidirectionally "
    "to itself and to the history. is_amplify_history scales only the history keys; "
    "guidance_cross_attn sends only the current chunk through attn2.",
)

ANYFLOW = AdapterSpec(
    model="AnyFlowTransformer3DModel",
    self_attention=r"blocks\.\d+\.attn1",
    text=None,
    num_frames=frames_axis(1, "patch_size", patch_index=0),  # [B, F, C, H, W]
    notes="The bidirectional flow-map model (Wan backbone). Input is [B, F, C, H, W] (frames "
    "before channels). The pipeline passes one timestep per frame ([B, F]) and r_timestep, the "
    "flow-map target; the window reads the source timestep's noisiest entry. The causal FAR "
    "variant is AnyFlowFARTransformer3DModel (refused).",
)

COSMOS = AdapterSpec(
    model="CosmosTransformer3DModel",
    self_attention=r"transformer_blocks\.\d+\.attn1",
    text=None,
    num_frames=frames_axis(2, "patch_size", patch_index=0),  # [B, C, F, H, W]
    notes="Video-only attn1; text (and Cosmos 2.5's image context) in attn2. Video2World "
    "conditions by replacing the first latent frames with clean ones (condition_mask channel, "
    "per-frame timestep [B, 1, F, 1, 1] lower on them): they count in F. Timestep scales differ "
    "by version: Cosmos 1 (EDM) passes a noise level that is no 0..1000 timestep (use the whole "
    "schedule); Cosmos 2 and 2.5 pass sigma-like values in [0, 1] (set num_train_timesteps=1 for "
    "a window). Cosmos 3 (Cosmos3OmniTransformer) is a packed omni model, not this class.",
)

ALLEGRO = AdapterSpec(
    model="AllegroTransformer3DModel",
    self_attention=r"transformer_blocks\.\d+\.attn1",
    text=None,
    num_frames=frames_axis(2, "patch_size_t"),  # [B, C, F, H, W]
    notes="PixArt-style blocks: video-only attn1 through F.scaled_dot_product_attention with "
    "Allegro's 3D RoPE, text in attn2. The optional latent attention mask (frames padded with "
    "images) masks keys; CFI is computed without it.",
)

LTX_VIDEO = AdapterSpec(
    model="LTXVideoTransformer3DModel",
    self_attention=r"transformer_blocks\.\d+\.attn1",
    text=None,
    num_frames=ltx_num_frames,
    video_tokens=ltx_video_tokens,
    conditioning="before",
    recommended_weight=4.0,
    notes="Input is already packed frame-major tokens [B, F*H*W, C]; LTXPipeline passes the latent "
    "frame count as num_frames. LTXConditionPipeline passes no num_frames but video_coords "
    "[B, 3, N] (t, h, w per token) and prepends the tokens of keyframe conditions placed at a "
    "frame_index > 0 to the generated grid: the grid is read off video_coords as the trailing "
    "frames (runs of equal t) whose times increase (the grid starts at t = 0, a prepended "
    "keyframe sits at its frame_index > 0), checked frame-major; the prepended tokens are "
    "attended, neither measured nor scaled. Conditions at frame_index 0 are blended into the "
    "first latent frames and count in F. Its timestep is per token; the window reads the "
    "noisiest. Text is in attn2 (cross-attention).",
)

LTX2_VIDEO = AdapterSpec(
    model="LTX2VideoTransformer3DModel",
    self_attention=r"transformer_blocks\.\d+\.attn1",
    text=None,
    num_frames=ltx2_num_frames,
    video_tokens=ltx2_video_tokens,
    conditioning="after",
    notes="Video self-attention only (attn1); the audio stream (audio_attn1, audio_attn2) and the "
    "audio<->video cross-attentions are untouched. Packed tokens [B, N, C]: the generated ones "
    "are the num_frames x height x width grid; condition/IC-LoRA pipelines append keyframe and "
    "reference tokens after them (attended, not measured, not scaled). I2V passes a per-token "
    "timestep (0 on the first frame); the window reads the noisiest. LTX-2.3's per-head gates "
    "(to_gate_logits) multiply the attention output before to_out: linear, so both placements "
    "agree. With spatio-temporal guidance (perturbed_attn) an all-perturbed layer makes no "
    "attention call and raises.",
)

MINIMAX_H3 = AdapterSpec(
    model="MiniMaxH3Transformer3DModel",
    self_attention=r"transformer_blocks\.\d+\.attn",
    text=None,
    num_frames=minimax_h3_num_frames,
    video_tokens=minimax_h3_video_tokens,
    conditioning="before",
    timestep_rises=True,
    notes="One packed sequence per sample, laid out by the caller: [text | keyframe conditions | "
    "target audio | target video] (t2va, fl2va; ref2va puts reference blocks where the keyframes "
    "are), full self-attention over all of it in transformer_blocks.*.attn, no cross-attention. "
    "Only the target video is measured and scaled: its rows are the video_indices run that closes "
    "the sequence, its frames the runs of equal rotary time in position_ids (F runs of S rows on "
    "one (h, w) grid, checked: another layout raises ValueError with the numbers). Text, keyframe "
    "condition rows and audio are attended, neither measured nor scaled (text sits among the "
    "conditioning rows before the video, so the spec has text=None). The token refiner "
    "(token_refiner.*, text only) is left alone. Timesteps are the distinct noise levels of the "
    "sequence in [0, 1], rising (1 = clean): set num_train_timesteps=1 for a window, which reads "
    "the noisiest level; with the pipeline's default flow shifts that is the target video's "
    "(conditioning rows are held at max(t, 0.999); audio, shifted by 3, is never noisier than "
    "video, shifted by 12; text rows carry the video's). The layout is read on the host at "
    "each forward (host syncs: no fullgraph torch.compile of the whole model; compiled blocks "
    "work). Under context parallelism (its _cp_plan splits the packed sequence) the mixed "
    "input raises NotImplementedError, as for every model with conditioning rows.",
)

LATTE = AdapterSpec(
    model="LatteTransformer3DModel",
    self_attention=r"temporal_transformer_blocks\.\d+\.attn1",
    text=None,
    num_frames=frames_axis(2),  # [B, C, F, H, W]
    notes="Temporal blocks only: their attention batch is B * S sequences of the F frames "
    "(batch-major, b * S + s), so each call is one frame per token and per_sample folds the "
    "B * S CFIs back to B. Spatial blocks (transformer_blocks) are untouched.",
)

KANDINSKY5 = AdapterSpec(
    model="Kandinsky5Transformer3DModel",
    self_attention=r"visual_transformer_blocks\.\d+\.self_attention",
    text=None,
    num_frames=frames_axis(1, "patch_size", patch_index=0),  # [B, F, H, W, C]: channels last
    forward_refusal=kandinsky5_sparse_attention,
    notes="Latents are channels-last [B, F, H, W, C]. Text has its own encoder blocks "
    "(text_transformer_blocks, left alone) and reaches video through cross_attention. With NABLA "
    "sparse attention (sparse_params: the Pro and 10 s models) tokens are reordered into 8x8 "
    "tiles per frame and attention runs block-sparse through flex_attention: such a forward is "
    "refused. The I2V variant (visual_cond) concatenates the image latent and a mask on channels.",
)

KANDINSKY6 = AdapterSpec(
    model="Kandinsky6Transformer3DModel",
    self_attention=r"visual_transformer_blocks\.\d+\.video_dec_block\.self_attention",
    text=None,
    num_frames=frames_axis(1, "patch_size", patch_index=0),  # [B, F, H, W, C]: channels last
    notes="Fused video/audio blocks: only the video self-attention is enhanced; audio "
    "self-attention (audio_dec_block), text cross-attentions and the video<->audio "
    "cross-attentions (va_/av_cross_attention) are untouched. Channels-last [B, F, H, W, C]. "
    "The I2V pipeline appends a reference frame that reuses temporal RoPE position 0: it is a "
    "latent frame, so it counts in F.",
)

# ---- UNets: temporal transformers over [B * H * W, F, C] ------------------------------------

_MOTION_MODULES = r"(down_blocks\.\d+|mid_block|up_blocks\.\d+)\.motion_modules\.\d+"
_UNET3D_TEMPORAL = r"(transformer_in|(down_blocks\.\d+|mid_block|up_blocks\.\d+)\.temp_attentions\.\d+)"

UNET_MOTION = AdapterSpec(
    model="UNetMotionModel",
    self_attention=_MOTION_MODULES + r"\.transformer_blocks\.\d+\.attn[12]",
    text=None,
    num_frames=frames_axis(2, argument="sample"),  # sample [B, C, F, H, W]
    video_input="sample",
    notes="AnimateDiff's motion modules: each BasicTransformerBlock has two temporal "
    "self-attentions (attn1, attn2: double_self_attention, no text), both enhanced. Their batch "
    "is B * H * W sequences of F frames (batch-major), one frame per token, like Latte; the "
    "sinusoidal frame position embedding is added before each. Spatial attentions (attentions.*) "
    "are untouched. The motion modules' attention batch changes with each UNet level's H * W.",
)

UNET_3D = AdapterSpec(
    model="UNet3DConditionModel",
    self_attention=_UNET3D_TEMPORAL + r"\.transformer_blocks\.\d+\.attn[12]",
    text=None,
    num_frames=frames_axis(2, argument="sample"),  # sample [B, C, F, H, W]
    video_input="sample",
    notes="ModelScope / Zeroscope: transformer_in and every temp_attentions.* are temporal "
    "transformers whose blocks have two temporal self-attentions (attn1, attn2; no text: "
    "double_self_attention), both enhanced; B * H * W sequences of F frames. Spatial "
    "attentions (attentions.*) and the temporal convolutions (temp_convs) are untouched.",
)

I2VGEN_XL_UNET = dataclasses.replace(  # ModelScope's temporal layers and sample layout
    UNET_3D,
    model="I2VGenXLUNet",
    notes="I2VGen-XL: ModelScope's blocks (transformer_in and temp_attentions.*: two temporal "
    "self-attentions per block, B * H * W sequences of F frames, both enhanced). The image "
    "conditioning runs in its own modules, left alone: image_latents_temporal_encoder (a "
    "temporal self-attention over the image latents' projection, concatenated to the sample on "
    "channels) and the image context tokens of the cross-attentions (attn2 of the spatial "
    "attentions.*). The sample is [B, C, F, H, W] (its docstring says frames first; the code "
    "reads channels first).",
)

UNET_SPATIO_TEMPORAL = AdapterSpec(
    model="UNetSpatioTemporalConditionModel",
    self_attention=r"(down_blocks\.\d+|mid_block|up_blocks\.\d+)\.attentions\.\d+"
    r"\.temporal_transformer_blocks\.\d+\.attn1",
    text=None,
    num_frames=frames_axis(1, argument="sample"),  # sample [B, F, C, H, W]
    video_input="sample",
    window_refusal=_EDM_TIMESTEP,
    notes="Stable Video Diffusion: temporal_transformer_blocks.*.attn1 attends over the F frames "
    "per spatial position (B * H * W sequences); attn2 there is cross-attention to the image "
    "embedding, left alone. The block's output is blended with the spatial branch by a learned "
    "time_mixer after the residual adds. The image conditioning is concatenated on channels. "
    "The timestep is EDM's c_noise, so only the whole-schedule window is accepted.",
)

SUPPORTED_MODELS: dict[str, AdapterSpec] = {
    spec.model: spec
    for spec in (
        COGVIDEOX, CONSISID, EASYANIMATE, HUNYUAN_VIDEO, HUNYUAN_VIDEO_15, HUNYUAN_VIDEO_FRAMEPACK,
        MOTIF_VIDEO, MOCHI, WAN, SKYREELS_V2, WAN_VACE, WAN_ANIMATE, WAN_ANIMATE_2, HELIOS, ANYFLOW, COSMOS, ALLEGRO,
        LTX_VIDEO, LTX2_VIDEO, MINIMAX_H3, LATTE, KANDINSKY5, KANDINSKY6, UNET_MOTION, UNET_3D, I2VGEN_XL_UNET, UNET_SPATIO_TEMPORAL,
    )
}
