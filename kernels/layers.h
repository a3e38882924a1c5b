/* The layer library: forward and backward passes of every layer the models are built from.
 *
 * Why this shape (karpathy/llm.c's): each layer is a pair of plain functions,
 *   kn_X_forward(out, [cache...,] inp, [params...,] dims...)
 *   kn_X_backward(dinp, [dparams...,] dout, inp/out/cache..., params..., dims...)
 * on caller-owned NCHW float arrays, so a model file is a readable list of calls over
 * activation buffers it allocated once in init. Conventions for all layers:
 *  - Backward ACCUMULATES (+=) into every gradient it writes, parameter gradients and the input
 *    gradient dinp alike; the model zeroes its activation gradients once per step (one memset)
 *    and kn_model_zero_grad zeroes the parameter gradients. Accumulation makes residual adds,
 *    concats and shared inputs free of extra code.
 *  - dinp may be NULL: the input gradient is skipped (first layer on the image).
 *  - No layer allocates memory: any scratch space is an argument whose size is documented.
 *  - Shapes are written (B,C,H,W) in the comment at the top of each file and each function.
 * Weights follow PyTorch's layouts (Linear (OC,C), Conv2d (OC,C/groups,KH,KW)) so state_dicts
 * map one to one onto the parameter block. */
#ifndef MAYFLY_KERNELS_LAYERS_H
#define MAYFLY_KERNELS_LAYERS_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/rng.h"

/* ---- initialisation (PyTorch defaults) ---------------------------------------------------- */
/* kaiming_uniform_(a=sqrt(5)) for weights and the default bias init of Linear and Conv2d both
 * reduce to U(-1/sqrt(fan_in), 1/sqrt(fan_in)); fan_in = C for Linear, C/groups*KH*KW for
 * Conv2d. Fills x[0..n). */
void kn_init_fan_in_uniform(kn_rng *rng, float *x, long n, long fan_in);

/* ---- linear.c ----------------------------------------------------------------------------- */
/* inp (B,C), weight (OC,C), bias (OC) or NULL, out (B,OC): out = inp weight^T + bias. */
void kn_linear_forward(float *out, const float *inp, const float *weight, const float *bias, int B,
                       int C, int OC);
/* dout (B,OC). dinp (B,C) += dout weight; dweight (OC,C) += dout^T inp; dbias (OC) += column
 * sums of dout. dinp and dbias may be NULL. */
void kn_linear_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                        const float *inp, const float *weight, int B, int C, int OC);
/* Linear on an input whose every feature is repeated R times in a row: inp (B,C) stands for the
 * (B,C*R) matrix whose column c*R + r is inp[:,c]; weight (OC,C*R) as in PyTorch. That is
 * Linear(flatten(AdaptiveAvgPool2d((7,7))(x))) for x (B,C,1,1): VGG at 32x32 input, R = 49,
 * where it saves 48/49 of the classifier's largest gemm. folded (OC,C) is written by forward
 * and read by backward (keep it between them); workspace: OC*C floats. Same results as the
 * replicated Linear up to float summation order. */
void kn_linear_repeated_forward(float *out, float *folded, const float *inp, const float *weight,
                                const float *bias, int B, int C, int R, int OC);
void kn_linear_repeated_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                                 const float *inp, const float *folded, int B, int C, int R, int OC,
                                 float *workspace);
/* The same, but dweight is written (=), not accumulated: for a caller whose weight gradient
 * would otherwise be zeroed first (VGG11's 411 MB classifier.0 gradient: one pass over it
 * instead of a memset plus a read-modify-write pass). */
void kn_linear_repeated_backward_store(float *dinp, float *dweight, float *dbias, const float *dout,
                                       const float *inp, const float *folded, int B, int C, int R,
                                       int OC, float *workspace);

/* ---- activations.c: ReLU, Hardswish, Hardsigmoid (elementwise over n floats, any shape) -- */
/* out = max(inp, 0). out may equal inp (in place). */
void kn_relu_forward(float *out, const float *inp, long n);
/* dinp += dout where out > 0. Takes the forward OUTPUT, so an in-place forward still works. */
void kn_relu_backward(float *dinp, const float *dout, const float *out, long n);
/* The same gradient stored instead of added: dinp = dout where out > 0, else 0. dinp may equal
 * dout (in place), so a model whose ReLU output has no other consumer needs no zeroed buffer. */
void kn_relu_backward_store(float *dinp, const float *dout, const float *out, long n);
/* x (C, n) += bias[c] per row, then ReLU in place: the bias and activation of a convolution run
 * without bias (CNHW: a row is a channel's B*H*W values), one pass instead of a bias fill
 * before the gemm plus a ReLU pass after it. */
void kn_bias_relu_forward(float *x, const float *bias, int C, long n);
/* Hardswish: out = x relu6(x + 3) / 6 (in place allowed). Backward takes the INPUT; derivative
 * 1 at x = 3. */
void kn_hardswish_forward(float *out, const float *inp, long n);
void kn_hardswish_backward(float *dinp, const float *dout, const float *inp, long n);
/* Hardsigmoid: out = relu6(x + 3) / 6 (in place allowed). Backward takes the INPUT. */
void kn_hardsigmoid_forward(float *out, const float *inp, long n);
void kn_hardsigmoid_backward(float *dinp, const float *dout, const float *inp, long n);

/* ---- cross_entropy.c ---------------------------------------------------------------------- */
/* logits (B,V), targets (B) in 0..V-1, probs (B,V) receives softmax(logits).
 * Returns the mean over the batch of -log softmax(logits)[target]. */
float kn_cross_entropy_forward(float *probs, const float *logits, const int32_t *targets, int B,
                               int V);
/* dlogits (B,V) += (probs - onehot(targets)) / B: the gradient of the MEAN loss. */
void kn_cross_entropy_backward(float *dlogits, const float *probs, const int32_t *targets, int B,
                               int V);

/* ---- conv2d.c ------------------------------------------------------------------------------ */
/* Geometry of one nn.Conv2d (dilation 1) applied to (C,H,W) planes: fixed at init, the batch
 * size comes with each call. */
typedef struct {
  int in_channels, out_channels, groups;
  int kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w;
  int in_h, in_w, out_h, out_w; /* out_* computed by kn_conv2d_init */
} kn_conv2d;
/* Square kernel, stride and padding like nn.Conv2d(C, OC, kernel, stride, padding, groups=)
 * on H x W inputs. Returns 0, or -1 for an impossible geometry. */
int kn_conv2d_init(kn_conv2d *conv, int C, int OC, int kernel, int stride, int padding, int groups,
                   int H, int W);
/* Scratch floats forward and backward need for batches up to max_batch (may be 0). */
size_t kn_conv2d_workspace_floats(const kn_conv2d *conv, int max_batch);
/* inp (B,C,H,W), weight (OC,C/groups,KH,KW), bias (OC) or NULL -> out (B,OC,OH,OW). */
void kn_conv2d_forward(const kn_conv2d *conv, float *out, const float *inp, const float *weight,
                       const float *bias, int B, float *workspace);
/* dout (B,OC,OH,OW). dinp (B,C,H,W) +=, dweight +=, dbias (OC) +=; dinp and dbias may be NULL. */
void kn_conv2d_backward(const kn_conv2d *conv, float *dinp, float *dweight, float *dbias,
                        const float *dout, const float *inp, const float *weight, int B,
                        float *workspace);

/* The same convolution on CNHW tensors: inp (C,B,H,W), out (OC,B,OH,OW), i.e. each channel's
 * planes of all B samples side by side. Each group is then one gemm per chunk of samples that
 * reads and writes the activations in place (a 1x1 convolution needs no im2col at all), and a
 * channel concat is two adjacent blocks: what SqueezeNet's fire modules want. Weights, bias and
 * their gradients are laid out exactly as in the NCHW calls. Workspace:
 * kn_conv2d_cnhw_workspace_floats(). */
size_t kn_conv2d_cnhw_workspace_floats(const kn_conv2d *conv, int max_batch);
void kn_conv2d_cnhw_forward(const kn_conv2d *conv, float *out, const float *inp,
                            const float *weight, const float *bias, int B, float *workspace);
/* dout (OC,B,OH,OW). dinp (C,B,H,W) +=, dweight +=, dbias +=; dinp and dbias may be NULL. */
void kn_conv2d_cnhw_backward(const kn_conv2d *conv, float *dinp, float *dweight, float *dbias,
                             const float *dout, const float *inp, const float *weight, int B,
                             float *workspace);

/* ---- batchnorm.c (nn.BatchNorm2d, affine, track_running_stats) ---------------------------- */
/* inp, out (B,C,HW) (HW = 1: BatchNorm1d on (B,C)); weight, bias (C). Training mode: normalises
 * with the batch mean and biased variance; writes mean (C) and invstd (C) for backward, and the
 * batch statistics for the running buffers: stat_mean (C) = mean, stat_var (C) = UNBIASED variance
 * (either may be NULL). Point them into m->batch_stats at the offsets of X.running_mean and
 * X.running_var. */
void kn_batchnorm_forward_train(float *out, float *mean, float *invstd, float *stat_mean,
                                float *stat_var, const float *inp, const float *weight,
                                const float *bias, int B, int C, int HW, float eps);
/* Eval mode: normalises with the running statistics. */
void kn_batchnorm_forward_eval(float *out, const float *inp, const float *weight, const float *bias,
                               const float *running_mean, const float *running_var, int B, int C,
                               int HW, float eps);
/* Training-mode backward. dout, inp (B,C,HW); mean, invstd (C) from the forward. */
void kn_batchnorm_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                           const float *inp, const float *mean, const float *invstd,
                           const float *weight, int B, int C, int HW);

/* ---- pool.c -------------------------------------------------------------------------------- */
/* Geometry of nn.MaxPool2d / nn.AvgPool2d(kernel, stride, padding, ceil_mode) on (C,H,W). */
typedef struct {
  int channels, in_h, in_w;
  int kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w;
  int ceil_mode;
  int count_include_pad; /* AvgPool2d only; kn_pool2d_init sets PyTorch's default 1 */
  int out_h, out_w;
} kn_pool2d;
/* Returns 0, or -1 for a geometry PyTorch rejects (e.g. padding > kernel / 2). */
int kn_pool2d_init(kn_pool2d *pool, int C, int H, int W, int kernel, int stride, int padding,
                   int ceil_mode);
/* inp (B,C,H,W) -> out (B,C,OH,OW), argmax (B,C,OH,OW): index of the max inside its plane. */
void kn_maxpool2d_forward(const kn_pool2d *pool, float *out, int32_t *argmax, const float *inp,
                          int B);
void kn_maxpool2d_backward(const kn_pool2d *pool, float *dinp, const float *dout,
                           const int32_t *argmax, int B);
void kn_avgpool2d_forward(const kn_pool2d *pool, float *out, const float *inp, int B);
void kn_avgpool2d_backward(const kn_pool2d *pool, float *dinp, const float *dout, int B);
/* nn.AdaptiveAvgPool2d((OH,OW)): inp (B,C,H,W) -> out (B,C,OH,OW). OH = OW = 1 is global
 * average pooling; OH > H replicates (VGG's 7x7 pool on a 1x1 map). */
void kn_adaptive_avgpool2d_forward(float *out, const float *inp, int B, int C, int H, int W, int OH,
                                   int OW);
void kn_adaptive_avgpool2d_backward(float *dinp, const float *dout, int B, int C, int H, int W,
                                    int OH, int OW);

/* ---- dropout.c ----------------------------------------------------------------------------- */
/* inp, out, mask: n floats. Drops with probability p using kn_rng(seed) and scales survivors by
 * 1/(1-p); seed 0 or p 0: identity (mask all 1). out may equal inp. */
void kn_dropout_forward(float *out, float *mask, const float *inp, long n, float p, uint64_t seed);
/* dinp += dout mask. */
void kn_dropout_backward(float *dinp, const float *dout, const float *mask, long n);

/* ---- tensor_ops.c: concat, squeeze-and-excitation scaling, residual add -------------------- */
/* Flatten is free: a contiguous (B,C,H,W) array IS the (B,C*H*W) matrix of torch.flatten(x, 1),
 * and a (B,C,1,1) array is the (B,C) input of a Linear (a 1x1 conv on a 1x1 map is a Linear
 * with the same weight memory). */
/* a (B,Ca,HW), b (B,Cb,HW) -> out (B,Ca+Cb,HW) (torch.cat([a, b], 1)). */
void kn_concat_channels_forward(float *out, const float *a, int Ca, const float *b, int Cb, int B,
                                int HW);
/* da (B,Ca,HW) +=, db (B,Cb,HW) += the two halves of dout; either may be NULL. */
void kn_concat_channels_backward(float *da, float *db, const float *dout, int Ca, int Cb, int B,
                                 int HW);
/* inp (B,C,HW), scale (B,C) -> out = inp * scale (squeeze-and-excitation's last step). */
void kn_channel_scale_forward(float *out, const float *inp, const float *scale, int B, int C,
                              int HW);
/* dinp (B,C,HW) += dout scale; dscale (B,C) += sum over HW of dout inp; either may be NULL. */
void kn_channel_scale_backward(float *dinp, float *dscale, const float *dout, const float *inp,
                               const float *scale, int B, int C, int HW);
/* src (A,C,plane) -> dst (C,A,plane): NCHW <-> CNHW (A = B samples, or the other way round with
 * A = C channels). dst and src must not overlap. */
void kn_swap_outer_planes(float *dst, const float *src, int A, int C, long plane);
/* out = a + b over n floats (residual connection). */
void kn_add_forward(float *out, const float *a, const float *b, long n);
/* da += dout, db += dout; either may be NULL. */
void kn_add_backward(float *da, float *db, const float *dout, long n);

/* ---- arena.c: one allocation for all of a model's activations ------------------------------ */
/* Usage in init: kn_arena a = {0}; layout(&a) (every array via kn_arena_take: NULLs, sizes add
 * up); kn_arena_allocate(&a); layout(&a) again (real, zeroed, 64-byte aligned pointers). */
typedef struct {
  float *base; /* NULL during the measuring pass */
  size_t used, capacity;
} kn_arena;
float *kn_arena_take(kn_arena *arena, size_t floats);
int32_t *kn_arena_take_int32(kn_arena *arena, size_t count);
int kn_arena_allocate(kn_arena *arena); /* 0, or -1 when out of memory */
void kn_arena_free(kn_arena *arena);

#endif
