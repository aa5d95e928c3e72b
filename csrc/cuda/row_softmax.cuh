// Online softmax of one temporal-attention row, keeping what CFI needs: the off-diagonal mass
// (and, for the temporal-attention kernel, each chunk's unnormalised probabilities).
//
// A row's logits arrive in chunks of key frames. We keep the running maximum and, rescaled to it,
// the running sums of the off-diagonal and the diagonal exponentials separately; the row's
// off-diagonal probability is off / (off + diag) at the end. Keeping `off` apart (rather than
// 1 - diag / total) means nothing cancels when a row is strongly diagonal, the common case the
// method exists to measure (same trick as the CPU kernel).
// Logits are in log2 units (scale * log2(e) folded in), so exp2f is the exponential.
#pragma once

#include <cmath>

namespace eav::cuda {

constexpr float kLog2e = 1.4426950408889634f;  // logits * kLog2e: natural units to log2 units

struct RowMass {
  float max_logit;  // running max over the key frames seen (log2 units)
  float off;        // sum of exp2(logit - max_logit) over off-diagonal keys seen by this lane
  float diag;       // exp2(diagonal logit - max_logit) when this lane saw the diagonal, else 0

  __device__ __forceinline__ RowMass() : max_logit(-INFINITY), off(0.f), diag(0.f) {}

  // Folds in `count` logits (masked keys are -inf) of keys `keys[i]`; `chunk_max` is the maximum of
  // the chunk over every lane that shares this row (so all of them rescale alike).
  // A NaN or +inf logit makes the row NaN, as softmax would.
  // weights[i] = exp2(logits[i] - new max) (the unnormalised probabilities, for P V); returns the
  // factor exp2(old max - new max) by which earlier sums (and an output accumulator) are rescaled.
  template <int count>
  __device__ __forceinline__ float update(const float (&logits)[count], const int (&keys)[count],
                                          int row, float chunk_max, float (&weights)[count]) {
    const float new_max = fmaxf(max_logit, chunk_max);
    const float rescale = exp2f(max_logit - new_max);  // 0 on the first chunk (-inf - finite)
    off *= rescale;
    diag *= rescale;
#pragma unroll
    for (int i = 0; i < count; ++i) {
      weights[i] = exp2f(logits[i] - new_max);
      if (keys[i] == row) {
        diag += weights[i];
      } else {
        off += weights[i];
      }
    }
    max_logit = new_max;
    return rescale;
  }

  // The same, for CFI alone (weights and rescale unused).
  template <int count>
  __device__ __forceinline__ void update(const float (&logits)[count], const int (&keys)[count],
                                         int row, float chunk_max) {
    float weights[count];
    update(logits, keys, row, chunk_max, weights);
  }

  // One logit at a time (the SIMT kernels: a chunk of one key, the same bits on every lane that
  // shares the row, so chunk_max = logit); weight = exp2(logit - new max), returns the rescale.
  __device__ __forceinline__ float update(float logit, int key, int row, float& weight) {
    const float logits[1] = {logit};
    const int keys[1] = {key};
    float weights[1];
    const float rescale = update(logits, keys, row, logit, weights);
    weight = weights[0];
    return rescale;
  }

  // The same, for CFI alone.
  __device__ __forceinline__ void update(float logit, int key, int row) {
    float weight;
    update(logit, key, row, weight);
  }
};

}  // namespace eav::cuda
