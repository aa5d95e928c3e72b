// Torch side of a cross-frame-intensity (or temporal-attention) call: checks every precondition
// with the numbers in the message, before any kernel touches memory, and describes the tensors as
// a CrossFrameProblem (or TemporalAttentionProblem).
// Shared by the CPU ops and the CUDA launchers. Every failed check is a std::invalid_argument
// (Python ValueError, see torch_stable.h).
#pragma once

#include <cmath>
#include <cstdint>

#include "cross_frame_problem.h"
#include "temporal_attention_problem.h"
#include "torch_stable.h"

namespace eav {

constexpr auto kStrided = torch::headeronly::Layout::Strided;

inline ScalarKind scalar_kind_of(const Tensor& tensor) {
  switch (tensor.scalar_type()) {
    case ScalarType::Float:
      return ScalarKind::Float32;
    case ScalarType::Half:
      return ScalarKind::Float16;
    case ScalarType::BFloat16:
      return ScalarKind::BFloat16;
    default:
      throw_invalid_argument("eav: query and key must be float32, float16 or bfloat16, got ",
                             tensor.scalar_type());
  }
}

// query: [B, H, F * S, D], key: [B, Hk, F * S, D], H % Hk == 0, any strides.
inline CrossFrameProblem make_cross_frame_problem(const Tensor& query, const Tensor& key,
                                                  int64_t num_frames, double scale) {
  EAV_CHECK(query.dim() == 4, "eav: query must be [batch, heads, tokens, head_dim], got ",
            query.dim(), " dims ", dims_string(query.sizes()));
  EAV_CHECK(key.dim() == 4, "eav: key must be [batch, heads, tokens, head_dim], got ",
            key.dim(), " dims ", dims_string(key.sizes()));
  EAV_CHECK(query.layout() == kStrided && key.layout() == kStrided,
            "eav: query and key must be dense (strided) tensors, got layouts ",
            static_cast<int>(query.layout()), " and ", static_cast<int>(key.layout()));
  EAV_CHECK(query.scalar_type() == key.scalar_type(), "eav: query (", query.scalar_type(),
            ") and key (", key.scalar_type(), ") must have the same dtype");
  EAV_CHECK(query.device() == key.device(), "eav: query (", device_string(query.device()),
            ") and key (", device_string(key.device()), ") must be on the same device");
  EAV_CHECK(query.numel() > 0 && key.numel() > 0,
            "eav: query ", dims_string(query.sizes()), " and key ", dims_string(key.sizes()),
            " must have no zero-size dimension");
  EAV_CHECK(query.size(0) == key.size(0) && query.size(2) == key.size(2) &&
            query.size(3) == key.size(3),
            "eav: query ", dims_string(query.sizes()), " and key ", dims_string(key.sizes()),
            " must agree in batch, tokens and head_dim");
  EAV_CHECK(query.size(1) % key.size(1) == 0, "eav: query heads (", query.size(1),
            ") must be a multiple of key heads (", key.size(1), ")");
  EAV_CHECK(num_frames >= 1, "eav: num_frames must be >= 1, got ", num_frames);
  EAV_CHECK(std::isfinite(scale), "eav: scale must be a finite number, got ", scale);
  // Kernels index with int64 offsets (index * stride): every stride must be non-negative. (A
  // tensor without storage, e.g. a functional wrapper, fails in torch's data_ptr below.)
  for (int dim = 0; dim < 4; ++dim) {
    EAV_CHECK(query.stride(dim) >= 0 && key.stride(dim) >= 0,
              "eav: query strides ", dims_string(query.strides()), " and key strides ",
              dims_string(key.strides()), " must be non-negative");
  }
  EAV_CHECK(query.size(2) % num_frames == 0, "eav: video tokens (", query.size(2),
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
// whose F tokens are F frames of one position); out is left for the caller to set.
inline TemporalAttentionProblem make_temporal_attention_problem(const Tensor& query,
                                                                const Tensor& key,
                                                                const Tensor& value,
                                                                double scale) {
  EAV_CHECK(query.dim() == 4, "eav: query must be [sequences, heads, frames, head_dim], got ",
            query.dim(), " dims ", dims_string(query.sizes()));
  const CrossFrameProblem query_key = make_cross_frame_problem(query, key, query.size(2), scale);
  EAV_CHECK(value.dim() == 4, "eav: value must be [sequences, kv_heads, frames, value_dim], got ",
            value.dim(), " dims ", dims_string(value.sizes()));
  EAV_CHECK(value.layout() == kStrided, "eav: value must be a dense (strided) tensor, got layout ",
            static_cast<int>(value.layout()));
  EAV_CHECK(value.scalar_type() == query.scalar_type(), "eav: value (", value.scalar_type(),
            ") must have the dtype of query and key (", query.scalar_type(), ")");
  EAV_CHECK(value.device() == query.device(), "eav: value (", device_string(value.device()),
            ") must be on the device of query and key (", device_string(query.device()), ")");
  EAV_CHECK(value.size(0) == key.size(0) && value.size(1) == key.size(1) &&
            value.size(2) == key.size(2) && value.size(3) > 0,
            "eav: value ", dims_string(value.sizes()),
            " must be [sequences, kv_heads, frames, value_dim] ",
            "with the first three of key ", dims_string(key.sizes()));
  for (int dim = 0; dim < 4; ++dim) {
    EAV_CHECK(value.stride(dim) >= 0, "eav: value strides ", dims_string(value.strides()),
              " must be non-negative");
  }

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
