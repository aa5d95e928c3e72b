"""The "Enhance-A-Video" node (ComfyUI's V3 schema). Imported only inside ComfyUI, by
``extension.comfy_entrypoint``: this is the one module that imports ``comfy_api`` at the top."""

from __future__ import annotations

from comfy_api.latest import ComfyExtension, io

from .patcher import enhance_model
from .settings import AFTER_PROJECTION, PLACEMENTS, EnhanceSettings, parse_blocks

NODE_ID = "EnhanceAVideo"


class EnhanceAVideo(io.ComfyNode):
    """MODEL in, a patched clone out (the input model is left as it was)."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id=NODE_ID,
            display_name="Enhance-A-Video",
            category="model_patches/video",
            description="Enhance-A-Video (arXiv 2502.07508): boosts each self-attention's video output "
            "by its cross-frame intensity, computed by eav-kernels without building F x F maps. "
            "Wan 2.1/2.2, HunyuanVideo 1.0/1.5, LTXV, LTX-2, Cosmos, CogVideoX, Kandinsky 5.",
            inputs=[
                io.Model.Input("model"),
                io.Float.Input("weight", default=4.0, min=-100.0, max=100.0, step=0.1,
                               tooltip="enhance weight w: score = max(1, CFI * (frames + w))"),
                io.Float.Input("start_percent", default=0.0, min=0.0, max=1.0, step=0.01,
                               tooltip="first step enhanced, as a fraction of the schedule"),
                io.Float.Input("end_percent", default=1.0, min=0.0, max=1.0, step=0.01,
                               tooltip="last step enhanced, as a fraction of the schedule"),
                io.String.Input("blocks", default="all",
                                tooltip="'all' or block numbers and ranges in model order, e.g. '0-9,20'"),
                io.Boolean.Input("per_sample", default=False,
                                 tooltip="cond and uncond each get their own score"),
                io.Combo.Input("placement", options=list(PLACEMENTS), default=AFTER_PROJECTION,
                               tooltip="after the output projection (the paper's code) or before it"),
            ],
            outputs=[io.Model.Output()],
        )

    @classmethod
    def execute(cls, model, weight: float, start_percent: float, end_percent: float, blocks: str,
                per_sample: bool, placement: str) -> io.NodeOutput:
        settings = EnhanceSettings(weight=weight, start_percent=start_percent, end_percent=end_percent,
                                   blocks=parse_blocks(blocks), per_sample=per_sample, placement=placement)
        return io.NodeOutput(enhance_model(model, settings))


class EnhanceAVideoExtension(ComfyExtension):
    """The node pack: its one node."""

    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        return [EnhanceAVideo]
