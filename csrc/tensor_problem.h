// Torch side of a cross-frame-intensity (or temporal-attention) call: checks every precondition with the numbers in the
// message, before any kernel touches memory, and describes the tensors as a CrossFrameProblem.
// Shared by the CPU op and the CUDA launcher.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#include <cmath>

#include "cross_frame_problem.h"
#include "temporal_attention_problem.h"

namespace eav {

inline ScalarKind scalar_kind_of(const at::Tensor& tensor) {
  switch (tensor.scalar_type()) {
    case at::kFloat:
      return ScalarKind::Float32;
    case at::kHalf:
      return ScalarKind::Float16;
    case at::kBFloat16:
      return ScalarKind::BFloat16;
    default:
      TORCH_CHECK_TYPE(false, "eav: query and key must be float32, float16 or bfloat16, got ",
                       tensor.scalar_type());
  }
}

// query: [B, H, F * S, D], key: [B, Hk, F * S, D], H % Hk == 0, any strides.
inline CrossFrameProblem make_cross_frame_problem(const at::Tensor& query, const at::Tensor& key,
                                                  int64_t num_frames, double scale) {
  TORCH_CHECK_VALUE(query.dim() == 4, "eav: query must be [batch, heads, tokens, head_dim], got ",
                    query.dim(), " dims ", query.sizes());
  TORCH_CHECK_VALUE(key.dim() == 4, "eav: key must be [batch, heads, tokens, head_dim], got ",
                    key.dim(), " dims ", key.sizes());
  TORCH_CHECK_TYPE(query.layout() == at::kStrided && key.layout() == at::kStrided,
                   "eav: query and key must be dense (strided) tensors, got ", query.layout(),
                   " and ", key.layout());
  TORCH_CHECK_TYPE(query.scalar_type() == key.scalar_type(), "eav: query (", query.scalar_type(),
                   ") and key (", key.scalar_type(), ") must have the same dtype");
  TORCH_CHECK_VALUE(query.device() == key.device(), "eav: query (", query.device(),
                    ") and key (", key.device(), ") must be on the same device");
  TORCH_CHECK_VALUE(query.numel() > 0 && key.numel() > 0,
                    "eav: query ", query.sizes(), " and key ", key.sizes(),
                    " must have no zero-size dimension");
  TORCH_CHECK_VALUE(query.size(0) == key.size(0) && query.size(2) == key.size(2) &&
                        query.size(3) == key.size(3),
                    "eav: query ", query.sizes(), " and key ", key.sizes(),
                    " must agree in batch, tokens and head_dim");
  TORCH_CHECK_VALUE(query.size(1) % key.size(1) == 0, "eav: query heads (", query.size(1),
                    ") must be a multiple of key heads (", key.size(1), ")");
  TORCH_CHECK_VALUE(num_frames >= 1, "eav: num_frames must be >= 1, got ", num_frames);
  TORCH_CHECK_VALUE(std::isfinite(scale), "eav: scale must be a finite number, got ", scale);
  // Kernels index with int64 offsets (index * stride): every stride must be non-negative and the
  // data must have storage (a tensor without one, e.g. a functional wrapper, has no data_ptr).
  for (int dim = 0; dim < 4; ++dim) {
    TORCH_CHECK_VALUE(query.stride(dim) >= 0 && key.stride(dim) >= 0,
                      "eav: query strides ", query.strides(), " and key strides ", key.strides(),
                      " must be non-negative");
  }
  TORCH_CHECK_VALUE(query.has_storage() && key.has_storage(),
                    "eav: query and key must be tensors with storage");
  TORCH_CHECK_VALUE(query.size(2) % num_frames == 0, "eav: video tokens (", query.size(2),
                    ") not divisible by num_frames (", num_frames, ")");

  CrossFrameProblem problem{};
  problem.query = query.data_ptr();
  problem.key = key.data_ptr();
  problem.scalar_kind = scalar_kind_of(query);
  problem.batch = query.size(0);
  problem.heads = query.size(1);
  problem.kv_heads = key.size(1);
  problem.num_frames = num_frames;
  problem.spatial = query.size(2) / num_frames;
  problem.head_dim = query.size(3);
  for (int dim = 0; dim < 4; ++dim) {
    problem.query_strides[dim] = query.stride(dim);
    problem.key_strides[dim] = key.stride(dim);
  }
  problem.scale = static_cast<float>(scale);
  return problem;
}

// query: [N_seq, H, F, D], key: [N_seq, Hk, F, D], value: [N_seq, Hk, F, Dv], H % Hk == 0, any
// strides. The query/key checks are make_cross_frame_problem's (a sequence is one "batch element"
// whose F tokens are F frames of one position); out and lse are left for the caller to set.
inline TemporalAttentionProblem make_temporal_attention_problem(const at::Tensor& query,
                                                                const at::Tensor& key,
                                                                const at::Tensor& value,
                                                                double scale) {
  TORCH_CHECK_VALUE(query.dim() == 4, "eav: query must be [sequences, heads, frames, head_dim], got ",
                    query.dim(), " dims ", query.sizes());
  const CrossFrameProblem query_key = make_cross_frame_problem(query, key, query.size(2), scale);
  TORCH_CHECK_VALUE(value.dim() == 4, "eav: value must be [sequences, kv_heads, frames, value_dim], got ",
                    value.dim(), " dims ", value.sizes());
  TORCH_CHECK_TYPE(value.layout() == at::kStrided, "eav: value must be a dense (strided) tensor, got ",
                   value.layout());
  TORCH_CHECK_TYPE(value.scalar_type() == query.scalar_type(), "eav: value (", value.scalar_type(),
                   ") must have the dtype of query and key (", query.scalar_type(), ")");
  TORCH_CHECK_VALUE(value.device() == query.device(), "eav: value (", value.device(),
                    ") must be on the device of query and key (", query.device(), ")");
  TORCH_CHECK_VALUE(value.size(0) == key.size(0) && value.size(1) == key.size(1) &&
                        value.size(2) == key.size(2) && value.size(3) > 0,
                    "eav: value ", value.sizes(), " must be [sequences, kv_heads, frames, value_dim] ",
                    "with the first three of key ", key.sizes());
  for (int dim = 0; dim < 4; ++dim) {
    TORCH_CHECK_VALUE(value.stride(dim) >= 0, "eav: value strides ", value.strides(),
                      " must be non-negative");
  }
  TORCH_CHECK_VALUE(value.has_storage(), "eav: value must be a tensor with storage");

  TemporalAttentionProblem problem{};
  problem.query = query_key.query;
  problem.key = query_key.key;
  problem.value = value.data_ptr();
  problem.scalar_kind = query_key.scalar_kind;
  problem.num_sequences = query_key.batch;
  problem.heads = query_key.heads;
  problem.kv_heads = query_key.kv_heads;
  problem.num_frames = query_key.num_frames;
  problem.head_dim = query_key.head_dim;
  problem.value_dim = value.size(3);
  for (int dim = 0; dim < 4; ++dim) {
    problem.query_strides[dim] = query_key.query_strides[dim];
    problem.key_strides[dim] = query_key.key_strides[dim];
    problem.value_strides[dim] = value.stride(dim);
  }
  problem.scale = query_key.scale;
  return problem;
}

}  // namespace eav
