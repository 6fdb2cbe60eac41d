// loss.cu: softmax cross-entropy against soft targets (mixup/cutmix and label smoothing), one block per row.
// The batch mean is taken by the launcher with the deterministic sum of reduce.cu.
// Launchers: src/Slak.Cuda/Kernels/LossKernels.cs.
#include "slak_common.cuh"

// probs = softmax(logits[row]); row_loss[row] = -sum_k targets[row,k] * (logits[row,k] - logsumexp)
extern "C" __global__ void softmax_xent_fwd_kernel(float* __restrict__ probs, float* __restrict__ row_loss,
                                                   const float* __restrict__ logits,
                                                   const float* __restrict__ targets, int k)
{
    const long long row = blockIdx.x;
    const float* z = logits + row * k;
    const float* t = targets + row * k;
    float m = slak::neg_infinity();
    for (int j = threadIdx.x; j < k; j += blockDim.x) m = fmaxf(m, z[j]);
    m = slak::block_reduce_max(m);
    float s = 0.0f;
    for (int j = threadIdx.x; j < k; j += blockDim.x) s += expf(z[j] - m);
    const float lse = m + logf(slak::block_reduce_sum(s));
    float l = 0.0f;
    float* p = probs + row * k;
    for (int j = threadIdx.x; j < k; j += blockDim.x)
    {
        p[j] = expf(z[j] - lse);
        if (t[j] != 0.0f) l -= t[j] * (z[j] - lse);
    }
    l = slak::block_reduce_sum(l);
    if (threadIdx.x == 0) row_loss[row] = l;
}

// dlogits[row, j] = grad_loss[0] / rows * (probs * sum_k targets - targets)
extern "C" __global__ void softmax_xent_bwd_kernel(float* __restrict__ dlogits, const float* __restrict__ probs,
                                                   const float* __restrict__ targets,
                                                   const float* __restrict__ grad_loss, int rows, int k)
{
    const long long row = blockIdx.x;
    const float* t = targets + row * k;
    float ts = 0.0f;
    for (int j = threadIdx.x; j < k; j += blockDim.x) ts += t[j];
    ts = slak::block_reduce_sum(ts);
    const float scale = grad_loss[0] / rows;
    const float* p = probs + row * k;
    float* d = dlogits + row * k;
    for (int j = threadIdx.x; j < k; j += blockDim.x) d[j] = scale * (p[j] * ts - t[j]);
}
