"""Video models of diffusers that Enhance-A-Video refuses, each with the reason
(``apply_enhance_a_video`` raises ``TypeError`` quoting it). Two kinds: models where the method has
no clear meaning, and models the hook machinery cannot reach yet (said so in the reason)."""

from __future__ import annotations

_NO_SOFTMAX = (
    "its video self-attention is linear (ReLU-kernel) attention with no softmax, so the F x F "
    "temporal attention map whose cross-frame intensity the method measures does not exist"
)

REFUSED_MODELS: dict[str, str] = {
    "AnyFlowFARTransformer3DModel": (
        "a causal chunk-wise (FAR) generator: each chunk attends to earlier chunks through a block-causal "
        "flex_attention mask and a KV cache, so there is no bidirectional F x F temporal softmax over the "
        "frames being generated. Use AnyFlowTransformer3DModel (bidirectional), which is supported"
    ),
    "ChronoEditTransformer3DModel": (
        "an image editor: its latent 'video' is [input image, edited image] (plus temporal-reasoning "
        "frames that are discarded), and the output is one image, so there is no video whose temporal "
        "consistency the method could improve"
    ),
    "Cosmos3OmniTransformer": (
        "not supported yet: a packed mixture-of-transformers omni model (a causal text pathway and a "
        "bidirectional generation pathway in one ragged packed sequence), whose video rows, frame count "
        "and attention calls the adapter does not model"
    ),
    "JoyImageEditTransformer3DModel": "an image editor (image in, image out): there are no video frames",
    "JoyImageEditPlusTransformer3DModel": "an image editor (images in, image out): there are no video frames",
    "Kandinsky6SRTransformer3DModel": (
        "a text-free video super-resolution model whose self-attention always runs NABLA block-sparse "
        "attention through flex_attention: the dense F x F temporal softmax is not computed, and no "
        "torch SDPA call exists for the adapter to measure"
    ),
    "SanaVideoTransformer3DModel": _NO_SOFTMAX,
    "SanaWMTransformer3DModel": (
        "not supported: three of every four blocks are gated delta-net (linear recurrence) attention "
        "with no softmax; the softmax blocks run a dual-branch (main + camera UCPE) attention that the "
        "adapter does not model"
    ),
    "SanaWMLTX2RefinerTransformer3DModel": (
        "a chunk-causal autoregressive refiner: each window's queries are one block of frames and its "
        "keys a sliding-window KV cache (sink + history + current), so there is no square F x F "
        "temporal softmax over the generated frames"
    ),
}
