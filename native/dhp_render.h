/*
 * dhp_render: a z-buffered, Gouraud-lit triangle rasteriser for face meshes.
 *
 * Conventions
 *   - image: H x W x 3 uint8, interleaved (BGR), rows `stride` bytes apart; drawn in place.
 *   - vertices: n_meshes x n_vertices x 3 float32 (x, y, z): x, y in image pixels with pixel
 *     centres at integer coordinates (OpenCV's convention); z is depth with LARGER = NEARER
 *     to the camera (the 3DDFA convention: z points out of the image towards the viewer).
 *   - triangles: n_triangles x 3 int32 indices into ONE mesh's vertices; every mesh shares this
 *     topology (all faces of a frame use the same model). A triangle is front-facing when its
 *     normal, taken with the winding (v1 - v0) x (v2 - v0), has z > 0 (towards the viewer);
 *     back-facing and degenerate triangles are skipped.
 *
 * Memory and threads
 *   No global state and no allocation: the caller provides every buffer (depth and shade,
 *   (H + 1) x (W + 1) float32 each, see dhp_render_scratch_pixels; packed vertices,
 *   n_meshes x n_vertices x 4 float32). Calls on different images with different buffers may
 *   run concurrently.
 *
 * Safety
 *   The caller (the Python wrapper) validates indices, shapes and finiteness; the rasteriser
 *   still clamps every bounding box in floating point before converting to integers and skips
 *   triangles with non-finite coordinates, so hostile coordinates cannot index out of bounds.
 */
#ifndef DHP_RENDER_H
#define DHP_RENDER_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define DHP_RENDER_ABI_VERSION 1

/* Largest image side accepted: every pixel coordinate up to it is exact as a float (2^24), so
 * clamping a float coordinate to width - 1 and truncating never reaches width. */
#define DHP_RENDER_MAX_SIDE (1 << 24)

typedef struct dhp_style {
    float color[3];          /* base colour, same channel order as the image, 0..1 */
    float alpha;             /* blend factor of the mesh over the image, 0..1 */
    float ambient;           /* ambient intensity */
    int n_lights;            /* 0, 1 or 2 directional lights */
    float light_dir[2][3];   /* direction TOWARDS each light, image axes (x right, y down,
                                z towards the viewer); normalised by the renderer */
    float light_intensity[2];
    float specular;          /* Blinn-Phong specular intensity (viewer along +z, exponent 8) */
} dhp_style;

/* Returns the ABI version, so the wrapper can refuse a stale library. */
int dhp_render_abi_version(void);

/* Floats needed for each of the depth and shade scratch buffers: (height + 1) * (width + 1). */
long dhp_render_scratch_pixels(int height, int width);

/*
 * Render n_meshes meshes into image. Returns the number of pixels covered, or a negative
 * value on invalid arguments (null pointers, non-positive sizes, stride too small).
 * depth, shade: dhp_render_scratch_pixels(height, width) floats each (scratch; one padding row
 * and column let the rasteriser work on 2 x 2 pixel quads). vnormals: n_meshes * n_vertices * 4
 * floats (scratch: normals, then packed x, y, z, shade per vertex).
 */
long dhp_render_meshes(uint8_t *image, int height, int width, long stride,
                       const float *vertices, int n_vertices, int n_meshes,
                       const int32_t *triangles, int n_triangles,
                       float *depth, float *shade, float *vnormals,
                       const dhp_style *style);

#ifdef __cplusplus
}
#endif

#endif /* DHP_RENDER_H */
