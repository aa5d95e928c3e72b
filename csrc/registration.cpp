// The eav op library: the schemas of torch.ops.eav.*. Backends register their implementations
// with STABLE_TORCH_LIBRARY_IMPL next to their kernels (csrc/cpu, csrc/cuda).

#include "torch_stable.h"

STABLE_TORCH_LIBRARY(eav, m) {
  // query: [B, H, F*S, D], key: [B, Hk, F*S, D] (frame-major video tokens, any strides)
  // -> [B] float32: per batch element, mean over (head, position) of the off-diagonal mass of the
  //    F x F temporal softmax of scale * q k^T, divided by F (F - 1). 0 when num_frames == 1.
  m.def("cross_frame_intensity(Tensor query, Tensor key, int num_frames, float scale) -> Tensor");
  // query: [N_seq, H, F, D], key: [N_seq, Hk, F, D], value: [N_seq, Hk, F, Dv] (a batch of N_seq
  // sequences of F frames, any strides; query head h reads key/value head h / (H / Hk))
  // -> out [N_seq, H, F, Dv] in the inputs' dtype: softmax(scale * q k^T) v, non-causal, unmasked;
  //    cfi [N_seq] float32: per sequence, mean over heads and rows of the off-diagonal softmax
  //    mass divided by F - 1 (i.e. the sum over heads / (H F (F - 1))); 0 when F == 1.
  m.def("temporal_attention_with_cfi(Tensor query, Tensor key, Tensor value, float scale) -> "
        "(Tensor out, Tensor cfi)");
}
