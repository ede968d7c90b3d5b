/*
 * dhp_dense: the dense reconstruction product.
 *
 * Each dense vertex is the mean vertex plus a fixed linear combination of the 68 landmark
 * displacements (thin-plate interpolation, see dense_head_pose/morphable_model.py), and then
 * goes through an affine map (a camera: scaled rotation and translation):
 *
 *     out[f][i] = linear[f] @ mean[i] + sum_j w[i][j] * rhs[f][j] + offset[f]
 *
 * with rhs[f][j] = linear[f] @ displacement[f][j]. BLAS does this tall, thin product (38365 x 68
 * weights, three columns per face) at a quarter of the FMA units' pace; this loop keeps them
 * busy and reads the weights once per frame in the order they are stored.
 *
 * Layout (prepared once by the caller; DHP_DENSE_BLOCK vertices per block, the last block
 * padded with zero weights and zero means):
 *   weights: n_blocks x n_cols x DHP_DENSE_BLOCK float32 (block, then column, then vertex)
 *   mean:    n_blocks x 3 x DHP_DENSE_BLOCK float32     (block, then x/y/z, then vertex)
 *   rhs:     n_faces x n_cols x 3 float32
 *   linear:  n_faces x 3 x 3 float32, row-major
 *   offset:  n_faces x 3 float32
 *   out:     n_faces x n_vertices x 3 float32
 *
 * No allocation, no global state except the CPU-feature choice made on first call; calls with
 * different output buffers may run concurrently.
 */
#ifndef DHP_DENSE_H
#define DHP_DENSE_H

#ifdef __cplusplus
extern "C" {
#endif

#define DHP_DENSE_ABI_VERSION 1
#define DHP_DENSE_BLOCK 32

int dhp_dense_abi_version(void);

/* Vertices per block of the layout above (DHP_DENSE_BLOCK). */
int dhp_dense_block(void);

/* The product above; returns 0, or -1 (nothing written) when a count is not positive. */
int dhp_dense_product(const float *weights, const float *mean, int n_vertices, int n_cols,
                      const float *rhs, const float *linear, const float *offset, int n_faces,
                      float *out);

/* Which code path the product takes on this CPU: "avx2+fma" or "portable". */
const char *dhp_dense_path(void);

#ifdef __cplusplus
}
#endif

#endif
