// The description of one temporal-attention-with-CFI problem (docs/design.md, contract 2)
// that every backend (CPU, CUDA) reads. Plain C++: no torch headers, so .cu files can include it.
#pragma once

#include <cstdint>

#include "cross_frame_problem.h"

namespace eav {

// A batch of num_sequences independent sequences of num_frames frames (e.g. Latte's temporal
// blocks: B * S sequences, one per spatial position), non-causal, unmasked:
//   query: [num_sequences, heads, num_frames, head_dim]     any strides (elements)
//   key:   [num_sequences, kv_heads, num_frames, head_dim]  heads % kv_heads == 0 (GQA: query
//          head h reads key/value head h / (heads / kv_heads), as SDPA's enable_gqa does)
//   value: [num_sequences, kv_heads, num_frames, value_dim]
//   out:   [num_sequences, heads, num_frames, value_dim]     any strides, the inputs' dtype
struct TemporalAttentionProblem {
  const void* query;
  const void* key;
  const void* value;
  void* out;
  ScalarKind scalar_kind;
  int64_t num_sequences;
  int64_t heads;
  int64_t kv_heads;
  int64_t num_frames;
  int64_t head_dim;
  int64_t value_dim;
  int64_t query_strides[4];  // sequence, head, frame, dim
  int64_t key_strides[4];
  int64_t value_strides[4];
  int64_t out_strides[4];
  float scale;  // applied to every logit <q, k>
};

}  // namespace eav
