// optim.cu: the fused AdamW step with the sparse-training mask rules (one pass over parameter, gradient, both
// moments and mask). PyTorch semantics: decoupled weight decay p *= 1 - lr*wd, bias-corrected moments,
// p -= lr/bc1 * m / (sqrt(v)/sqrt(bc2) + eps). With a mask and mask_moments (our semantics) the gradient is masked and
// both moments are re-masked, so pruned weights and their state stay exactly zero; without mask_moments (the
// reference code) gradient and moments stay dense. The weight is multiplied by the mask either way.
// Launcher: src/Slak.Cuda/Kernels/OptimKernels.cs.
#include "slak_common.cuh"

extern "C" __global__ void adamw_kernel(float* __restrict__ param, float* __restrict__ exp_avg,
                                        float* __restrict__ exp_avg_sq, const float* __restrict__ grad,
                                        const float* __restrict__ mask, float lr, float beta1, float beta2, float eps,
                                        float weight_decay, float bias_correction1, float bias_correction2_sqrt,
                                        int mask_moments, long long n)
{
    const float step_size = lr / bias_correction1, decay = 1.0f - lr * weight_decay;
    SLAK_GRID_STRIDE_LOOP(i, n)
    {
        const float k = mask != nullptr ? mask[i] : 1.0f;
        float g = grad[i];
        if (mask_moments) g *= k;
        float m = beta1 * exp_avg[i] + (1.0f - beta1) * g;
        float v = beta2 * exp_avg_sq[i] + (1.0f - beta2) * g * g;
        if (mask_moments)
        {
            m *= k;
            v *= k;
        }
        exp_avg[i] = m;
        exp_avg_sq[i] = v;
        const float p = param[i] * decay - step_size * m / (sqrtf(v) / bias_correction2_sqrt + eps);
        param[i] = p * k;
    }
}
