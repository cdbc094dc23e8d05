"""Float32 limits the kernels rely on."""

# Log-probabilities (or centred logits) are clamped here before `exp`. Below about -87 the float32 result is
# subnormal or zero, and x86 computes those on a microcode slow path: ~30x slower for `exp` on real
# activations (huge logit spreads, e.g. at massive-activation layers) and again in any GEMM that reads the
# subnormals. exp(-80) = 1.8e-35 is a normal float32; a vocabulary's worth of such terms adds < 1e-30 to a
# softmax sum that is at least 1, below float32 resolution, so no result changes.
LOG_FLOOR = -80.0
