// The end of the SLaK block as one operator: the MLP's channels-last output y (N, H, W, C) is scaled by the layer
// scale gamma (C) and by each sample's DropPath factor (N), permuted back to NCHW and added to the block's input:
// out = input + permute(y * gamma) * scale. Unfused, that is four passes over the activation (MulLastDim, the
// permute, MulRows, Add) and, backward, three more plus the gamma reduction; fused, one tiled transpose each way.
// Each element is computed with the same float operations in the same order as the unfused operators, so the
// results are the same bits. Every tensor is contiguous.
namespace Slak.Backends;

internal partial interface IBackend
{
    /// <summary>output[n, c, h, w] = input[n, c, h, w] + (y[n, h, w, c] * gamma[c]) * scale[n]: input and output
    /// (N, C, H, W), y (N, H, W, C); gamma (C) or null (no layer scale); scale (N) or null (no DropPath).</summary>
    void ChannelsLastResidual(Tensor input, Tensor y, Tensor? gamma, Tensor? scale, Tensor output);

    /// <summary>Backward of <see cref="ChannelsLastResidual"/> for y and gamma (the input's gradient is
    /// <paramref name="dOutput"/> itself): dy[n, h, w, c] = (dOutput[n, c, h, w] * scale[n]) * gamma[c] and
    /// dgamma[c] = the sum over n, h, w of (dOutput[n, c, h, w] * scale[n]) * y[n, h, w, c]; dy or dgamma may be null
    /// (not wanted); dgamma needs gamma.</summary>
    void ChannelsLastResidualBackward(Tensor y, Tensor? gamma, Tensor? scale, Tensor dOutput, Tensor? dy, Tensor? dgamma);
}
