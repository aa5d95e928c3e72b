// The description of one cross-frame-intensity problem that every backend (CPU, CUDA) reads.
// Plain C++: no torch headers, so .cu files can include it.
#pragma once

#include <cstdint>

namespace eav {

enum class ScalarKind : int { Float32 = 0, Float16 = 1, BFloat16 = 2 };

// query: [batch, heads, num_frames * spatial, head_dim], any strides (in elements)
// key:   [batch, kv_heads, num_frames * spatial, head_dim], heads % kv_heads == 0 (GQA: query head
//        h reads key head h / (heads / kv_heads), as SDPA's enable_gqa does)
// Token t * spatial + s is frame t at spatial position s (frame-major video tokens).
struct CrossFrameProblem {
  const void* query;
  const void* key;
  ScalarKind scalar_kind;
  int64_t batch;
  int64_t heads;
  int64_t kv_heads;
  int64_t num_frames;
  int64_t spatial;
  int64_t head_dim;
  int64_t query_strides[4];  // batch, head, token, dim
  int64_t key_strides[4];    // batch, head, token, dim
  float scale;               // applied to every logit <q, k>
};

}  // namespace eav
