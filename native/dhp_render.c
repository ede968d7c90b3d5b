/* dhp_render.c: see dhp_render.h for conventions. C99, libm only. */
#include "dhp_render.h"

#include <math.h>
#include <stddef.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

int dhp_render_abi_version(void) { return DHP_RENDER_ABI_VERSION; }

long dhp_render_scratch_pixels(int height, int width) {
    return (height > 0 && width > 0 && height <= DHP_RENDER_MAX_SIDE &&
            width <= DHP_RENDER_MAX_SIDE) ? ((long)height + 1) * ((long)width + 1) : 0;
}

static inline float clampf(float v, float lo, float hi) {
    v = v > lo ? v : lo; /* these two forms compile to maxss / minss */
    return v < hi ? v : hi;
}

/* min / max / floor / ceil without libm calls: baseline x86-64 (SSE2) has no rounding
 * instruction, and fminf's NaN rules block inlining; callers pass finite, non-negative values
 * to the rounding helpers (after clamping). */
static inline float min3(float a, float b, float c) {
    const float m = a < b ? a : b;
    return m < c ? m : c;
}
static inline float max3(float a, float b, float c) {
    const float m = a > b ? a : b;
    return m > c ? m : c;
}
static inline int floor_nonneg(float v) { return (int)v; }
static inline int ceil_nonneg(float v) {
    const int i = (int)v;
    return i + ((float)i < v);
}

#if defined(__SSE2__)
/* Two adjacent floats of two rows as one vector (r0[0], r0[1], r1[0], r1[1]) and back. The
 * rows are not 8-byte aligned, so memcpy (compiled to movsd) instead of a cast load. */
static inline __m128 load_quad(const float *r0, const float *r1) {
    double lo, hi;
    memcpy(&lo, r0, sizeof lo);
    memcpy(&hi, r1, sizeof hi);
    return _mm_castpd_ps(_mm_set_pd(hi, lo));
}
static inline void store_quad(float *r0, float *r1, __m128 v) {
    const double lo = _mm_cvtsd_f64(_mm_castps_pd(v));
    const double hi = _mm_cvtsd_f64(_mm_castps_pd(_mm_movehl_ps(v, v)));
    memcpy(r0, &lo, sizeof lo);
    memcpy(r1, &hi, sizeof hi);
}
#endif

/* Pass 1: area-weighted vertex normals (unnormalised face normals sum to 2 x area x unit
 * normal) accumulated into out (n x 4), then each vertex packed as (x, y, z, shade) so the
 * rasteriser reads one 16-byte record per vertex. Grows box to the mesh's bounding box;
 * returns whether every coordinate is finite. */
static int shade_vertices(const float *v, int n, const int32_t *tri, int nt, float *out,
                           const dhp_style *s, float lights[2][3], float half_vec[2][3],
                           float box[4]) {
    float intensity[2] = {0.0f, 0.0f}, specular[2] = {0.0f, 0.0f};
    for (int l = 0; l < s->n_lights; ++l) {
        intensity[l] = s->light_intensity[l];
        specular[l] = s->specular;
    }
    const int nl = s->n_lights;
    memset(out, 0, sizeof(float) * 4 * (size_t)n);
    for (int t = 0; t < nt; ++t) {
        const int32_t a = tri[3 * t], b = tri[3 * t + 1], c = tri[3 * t + 2];
        const float *pa = v + 3 * a, *pb = v + 3 * b, *pc = v + 3 * c;
        const float e1x = pb[0] - pa[0], e1y = pb[1] - pa[1], e1z = pb[2] - pa[2];
        const float e2x = pc[0] - pa[0], e2y = pc[1] - pa[1], e2z = pc[2] - pa[2];
        const float nx = e1y * e2z - e1z * e2y;
        const float ny = e1z * e2x - e1x * e2z;
        const float nz = e1x * e2y - e1y * e2x;
        float *oa = out + 4 * a, *ob = out + 4 * b, *oc = out + 4 * c;
#if defined(__SSE2__)
        /* one 4-wide add per corner instead of three (the same sums, the 4th lane stays 0) */
        const __m128 nv = _mm_setr_ps(nx, ny, nz, 0.0f);
        _mm_storeu_ps(oa, _mm_add_ps(_mm_loadu_ps(oa), nv));
        _mm_storeu_ps(ob, _mm_add_ps(_mm_loadu_ps(ob), nv));
        _mm_storeu_ps(oc, _mm_add_ps(_mm_loadu_ps(oc), nv));
#else
        oa[0] += nx; oa[1] += ny; oa[2] += nz;
        ob[0] += nx; ob[1] += ny; ob[2] += nz;
        oc[0] += nx; oc[1] += ny; oc[2] += nz;
#endif
    }
    float minx = box[0], miny = box[1], maxx = box[2], maxy = box[3];
    int finite = 1;
    int i = 0;
#if defined(__SSE2__)
    {
        /* four vertices at a time in lanes, every operation in the scalar loop's order (so
         * both give the same bits); records transposed in and out */
        const __m128 zero = _mm_setzero_ps(), one = _mm_set1_ps(1.0f);
        const __m128 amb = _mm_set1_ps(s->ambient);
        __m128 vminx = _mm_set1_ps(minx), vminy = _mm_set1_ps(miny);
        __m128 vmaxx = _mm_set1_ps(maxx), vmaxy = _mm_set1_ps(maxy);
        __m128 fin = _mm_castsi128_ps(_mm_set1_epi32(-1));
        for (; i + 4 <= n; i += 4) {
            float *o = out + 4 * i;
            __m128 nx = _mm_loadu_ps(o), ny = _mm_loadu_ps(o + 4);
            __m128 nz = _mm_loadu_ps(o + 8), nw = _mm_loadu_ps(o + 12);
            _MM_TRANSPOSE4_PS(nx, ny, nz, nw);
            const __m128 len2 = _mm_add_ps(_mm_add_ps(_mm_mul_ps(nx, nx), _mm_mul_ps(ny, ny)),
                                           _mm_mul_ps(nz, nz));
            const __m128 valid = _mm_cmpgt_ps(len2, zero);
            const __m128 inv = _mm_div_ps(one, _mm_sqrt_ps(len2));
            nx = _mm_mul_ps(nx, inv); ny = _mm_mul_ps(ny, inv); nz = _mm_mul_ps(nz, inv);
            __m128 shade = amb;
            for (int l = 0; l < nl; ++l) {
                __m128 d = _mm_add_ps(_mm_add_ps(_mm_mul_ps(nx, _mm_set1_ps(lights[l][0])),
                                                 _mm_mul_ps(ny, _mm_set1_ps(lights[l][1]))),
                                      _mm_mul_ps(nz, _mm_set1_ps(lights[l][2])));
                __m128 h = _mm_add_ps(_mm_add_ps(_mm_mul_ps(nx, _mm_set1_ps(half_vec[l][0])),
                                                 _mm_mul_ps(ny, _mm_set1_ps(half_vec[l][1]))),
                                      _mm_mul_ps(nz, _mm_set1_ps(half_vec[l][2])));
                const __m128 lit = _mm_cmpgt_ps(d, zero);
                d = _mm_and_ps(lit, d);
                h = _mm_max_ps(_mm_and_ps(lit, h), zero);
                __m128 hp = _mm_mul_ps(h, h);
                hp = _mm_mul_ps(hp, hp);
                hp = _mm_mul_ps(hp, hp);
                shade = _mm_add_ps(shade, _mm_add_ps(_mm_mul_ps(_mm_set1_ps(intensity[l]), d),
                                                     _mm_mul_ps(_mm_set1_ps(specular[l]), hp)));
            }
            shade = _mm_or_ps(_mm_and_ps(valid, shade), _mm_andnot_ps(valid, amb));
            /* positions x0 y0 z0 x1 | y1 z1 x2 y2 | z2 x3 y3 z3 -> x[4], y[4], z[4] */
            const float *p = v + 3 * i;
            const __m128 a0 = _mm_loadu_ps(p), a1 = _mm_loadu_ps(p + 4), a2 = _mm_loadu_ps(p + 8);
            const __m128 x01 = _mm_shuffle_ps(a0, a0, _MM_SHUFFLE(0, 0, 3, 0)); /* x0 x1 x0 x0 */
            const __m128 x23 = _mm_shuffle_ps(a1, a2, _MM_SHUFFLE(1, 1, 2, 2)); /* x2 x2 x3 x3 */
            const __m128 px = _mm_shuffle_ps(x01, x23, _MM_SHUFFLE(2, 0, 1, 0)); /* x0 x1 x2 x3 */
            const __m128 y01 = _mm_shuffle_ps(a0, a1, _MM_SHUFFLE(0, 0, 1, 1)); /* y0 y0 y1 y1 */
            const __m128 y23 = _mm_shuffle_ps(a1, a2, _MM_SHUFFLE(2, 2, 3, 3)); /* y2 y2 y3 y3 */
            const __m128 py = _mm_shuffle_ps(y01, y23, _MM_SHUFFLE(2, 0, 2, 0)); /* y0 y1 y2 y3 */
            const __m128 z01 = _mm_shuffle_ps(a0, a1, _MM_SHUFFLE(1, 1, 2, 2)); /* z0 z0 z1 z1 */
            const __m128 z23 = _mm_shuffle_ps(a2, a2, _MM_SHUFFLE(3, 3, 0, 0)); /* z2 z2 z3 z3 */
            const __m128 pz = _mm_shuffle_ps(z01, z23, _MM_SHUFFLE(2, 0, 2, 0)); /* z0 z1 z2 z3 */
            __m128 rx = px, ry = py, rz = pz, rs = shade;
            _MM_TRANSPOSE4_PS(rx, ry, rz, rs);
            _mm_storeu_ps(o, rx); _mm_storeu_ps(o + 4, ry);
            _mm_storeu_ps(o + 8, rz); _mm_storeu_ps(o + 12, rs);
            /* min/max keep the old value when the new one is NaN, as the scalar loop does */
            vminx = _mm_min_ps(px, vminx); vmaxx = _mm_max_ps(px, vmaxx);
            vminy = _mm_min_ps(py, vminy); vmaxy = _mm_max_ps(py, vmaxy);
            fin = _mm_and_ps(fin, _mm_and_ps(_mm_cmpeq_ps(_mm_sub_ps(px, px), zero),
                                             _mm_cmpeq_ps(_mm_sub_ps(py, py), zero)));
            fin = _mm_and_ps(fin, _mm_cmpeq_ps(_mm_sub_ps(pz, pz), zero));
        }
        float lanes[4];
        _mm_storeu_ps(lanes, vminx);
        for (int k = 0; k < 4; ++k) minx = lanes[k] < minx ? lanes[k] : minx;
        _mm_storeu_ps(lanes, vminy);
        for (int k = 0; k < 4; ++k) miny = lanes[k] < miny ? lanes[k] : miny;
        _mm_storeu_ps(lanes, vmaxx);
        for (int k = 0; k < 4; ++k) maxx = lanes[k] > maxx ? lanes[k] : maxx;
        _mm_storeu_ps(lanes, vmaxy);
        for (int k = 0; k < 4; ++k) maxy = lanes[k] > maxy ? lanes[k] : maxy;
        finite = _mm_movemask_ps(fin) == 0xF;
    }
#endif
    for (; i < n; ++i) {
        float *o = out + 4 * i;
        const float *p = v + 3 * i;
        const float len2 = o[0] * o[0] + o[1] * o[1] + o[2] * o[2];
        float shade = s->ambient;
        if (len2 > 0.0f) {
            const float inv = 1.0f / sqrtf(len2);
            const float nx = o[0] * inv, ny = o[1] * inv, nz = o[2] * inv;
            /* branch-free per light: the loop bound is the same for every vertex */
            for (int l = 0; l < nl; ++l) {
                float d = nx * lights[l][0] + ny * lights[l][1] + nz * lights[l][2];
                float h = nx * half_vec[l][0] + ny * half_vec[l][1] + nz * half_vec[l][2];
                d = d > 0.0f ? d : 0.0f;
                h = d > 0.0f ? h : 0.0f;
                h = h > 0.0f ? h : 0.0f;
                float hp = h * h; /* Blinn-Phong exponent 8, by squaring: powf costs more */
                hp = hp * hp;     /* than the rest of a vertex's shading */
                hp = hp * hp;
                shade += intensity[l] * d + specular[l] * hp;
            }
        }
        o[0] = p[0]; o[1] = p[1]; o[2] = p[2]; o[3] = shade;
        minx = p[0] < minx ? p[0] : minx; maxx = p[0] > maxx ? p[0] : maxx;
        miny = p[1] < miny ? p[1] : miny; maxy = p[1] > maxy ? p[1] : maxy;
        finite &= (p[0] - p[0] == 0.0f) & (p[1] - p[1] == 0.0f) & (p[2] - p[2] == 0.0f);
    }
    box[0] = minx; box[1] = miny; box[2] = maxx; box[3] = maxy;
    return finite;
}

/* Pass 2: rasterise one mesh (packed vertices) into depth/shade, sampling pixel centres at
 * integer coordinates; bbox accumulates the area touched. */
static inline void rasterise_impl(const float *pv, const int32_t *tri, int nt, int height,
                                  int width, float *depth, float *shade, int bbox[4],
                                  const int clip) {
    const float xmax_f = (float)(width - 1), ymax_f = (float)(height - 1);
    const int stride_px = width + 1; /* one padding column and row for 2 x 2 quads */
    for (int t = 0; t < nt; ++t) {
        const float *pa = pv + 4 * tri[3 * t], *pb = pv + 4 * tri[3 * t + 1],
                    *pc = pv + 4 * tri[3 * t + 2];
        const float ax = pa[0], ay = pa[1], bx = pb[0], by = pb[1], cx = pc[0], cy = pc[1];
        /* signed doubled area in image axes (y down): > 0 means the normal (v1-v0)x(v2-v0)
         * has z > 0, i.e. the triangle faces the viewer. First: half of a face's triangles
         * face away, and this costs less than their bounding box */
        const float area = (bx - ax) * (cy - ay) - (by - ay) * (cx - ax);
        if (!(area > 1e-12f)) continue; /* back-facing, degenerate or not finite */
        const float minx = min3(ax, bx, cx), maxx = max3(ax, bx, cx);
        const float miny = min3(ay, by, cy), maxy = max3(ay, by, cy);
        int x0, x1, y0, y1;
        if (clip) {
            /* also false for NaN; infinities make the span test fail */
            if (!(maxx >= 0.0f && minx <= xmax_f && maxy >= 0.0f && miny <= ymax_f)) continue;
            if (!(maxx - minx < 1e30f && maxy - miny < 1e30f)) continue;
            x0 = ceil_nonneg(clampf(minx, 0.0f, xmax_f));
            x1 = floor_nonneg(clampf(maxx, 0.0f, xmax_f));
            y0 = ceil_nonneg(clampf(miny, 0.0f, ymax_f));
            y1 = floor_nonneg(clampf(maxy, 0.0f, ymax_f));
        } else { /* every vertex is finite and inside the image */
            x0 = ceil_nonneg(minx);
            x1 = floor_nonneg(maxx);
            y0 = ceil_nonneg(miny);
            y1 = floor_nonneg(maxy);
        }
        if (x0 > x1 || y0 > y1) continue; /* no pixel centre inside the bounding box */
        const float inv_area = 1.0f / area;
        const float az = pa[2], bz = pb[2], cz = pc[2];
        const float sa = pa[3], sb = pb[3], sc = pc[3];
        /* barycentric weights of a (opposite edge bc) and b (opposite ca) and their steps */
        const float wa_dx = (by - cy) * inv_area, wa_dy = (cx - bx) * inv_area;
        const float wb_dx = (cy - ay) * inv_area, wb_dy = (ax - cx) * inv_area;
        const float fx0 = (float)x0, fy0 = (float)y0;
        const float wa0 = ((bx - fx0) * (cy - fy0) - (by - fy0) * (cx - fx0)) * inv_area;
        const float wb0 = ((cx - fx0) * (ay - fy0) - (cy - fy0) * (ax - fx0)) * inv_area;
        const float eps = -1e-5f;
#if defined(__SSE2__)
        {
            const __m128 qdx = _mm_setr_ps(0.0f, 1.0f, 0.0f, 1.0f);
            const __m128 qdy = _mm_setr_ps(0.0f, 0.0f, 1.0f, 1.0f);
            const __m128 veps = _mm_set1_ps(eps), one = _mm_set1_ps(1.0f);
            const __m128 vwa_dx = _mm_set1_ps(wa_dx), vwa_dy = _mm_set1_ps(wa_dy);
            const __m128 vwb_dx = _mm_set1_ps(wb_dx), vwb_dy = _mm_set1_ps(wb_dy);
            const __m128 vaz = _mm_set1_ps(az), vbz = _mm_set1_ps(bz), vcz = _mm_set1_ps(cz);
            const __m128 vsa = _mm_set1_ps(sa), vsb = _mm_set1_ps(sb), vsc = _mm_set1_ps(sc);
            const __m128 lim_x = _mm_set1_ps((float)(x1 - x0) + 0.5f);
            const __m128 lim_y = _mm_set1_ps((float)(y1 - y0) + 0.5f);
            for (int qy = 0; qy <= y1 - y0; qy += 2) {
                const __m128 fy = _mm_add_ps(_mm_set1_ps((float)qy), qdy);
                const __m128 wa_row = _mm_add_ps(_mm_set1_ps(wa0), _mm_mul_ps(fy, vwa_dy));
                const __m128 wb_row = _mm_add_ps(_mm_set1_ps(wb0), _mm_mul_ps(fy, vwb_dy));
                const __m128 in_y = _mm_cmplt_ps(fy, lim_y);
                float *r0 = depth + (size_t)(y0 + qy) * (size_t)stride_px;
                float *r1 = r0 + stride_px;
                float *s0 = shade + (size_t)(y0 + qy) * (size_t)stride_px;
                float *s1 = s0 + stride_px;
                for (int qx = 0; qx <= x1 - x0; qx += 2) {
                    const __m128 fx = _mm_add_ps(_mm_set1_ps((float)qx), qdx);
                    const __m128 wa = _mm_add_ps(wa_row, _mm_mul_ps(fx, vwa_dx));
                    const __m128 wb = _mm_add_ps(wb_row, _mm_mul_ps(fx, vwb_dx));
                    const __m128 wc = _mm_sub_ps(_mm_sub_ps(one, wa), wb);
                    __m128 m = _mm_and_ps(_mm_cmpge_ps(wa, veps), _mm_cmpge_ps(wb, veps));
                    m = _mm_and_ps(m, _mm_cmpge_ps(wc, veps));
                    m = _mm_and_ps(m, _mm_and_ps(in_y, _mm_cmplt_ps(fx, lim_x)));
                    if (!_mm_movemask_ps(m)) continue;
                    const int xo = x0 + qx;
                    const __m128 z = _mm_add_ps(_mm_add_ps(_mm_mul_ps(wa, vaz), _mm_mul_ps(wb, vbz)),
                                                _mm_mul_ps(wc, vcz));
                    const __m128 oz = load_quad(r0 + xo, r1 + xo);
                    const __m128 os = load_quad(s0 + xo, s1 + xo);
                    m = _mm_and_ps(m, _mm_cmpgt_ps(z, oz));
                    const __m128 sh = _mm_add_ps(_mm_add_ps(_mm_mul_ps(wa, vsa), _mm_mul_ps(wb, vsb)),
                                                 _mm_mul_ps(wc, vsc));
                    const __m128 nz = _mm_or_ps(_mm_and_ps(m, z), _mm_andnot_ps(m, oz));
                    const __m128 ns = _mm_or_ps(_mm_and_ps(m, sh), _mm_andnot_ps(m, os));
                    store_quad(r0 + xo, r1 + xo, nz);
                    store_quad(s0 + xo, s1 + xo, ns);
                }
            }
        }
#else
        for (int y = y0; y <= y1; ++y) {
            const float dy = (float)(y - y0);
            float wa = wa0 + dy * wa_dy, wb = wb0 + dy * wb_dy;
            float *drow = depth + (size_t)y * (size_t)stride_px;
            float *srow = shade + (size_t)y * (size_t)stride_px;
            for (int x = x0; x <= x1; ++x, wa += wa_dx, wb += wb_dx) {
                const float wc = 1.0f - wa - wb;
                const float z = wa * az + wb * bz + wc * cz;
                const float old_z = drow[x], old_s = srow[x];
                const int take = (wa >= eps) & (wb >= eps) & (wc >= eps) & (z > old_z);
                drow[x] = take ? z : old_z;
                srow[x] = take ? wa * sa + wb * sb + wc * sc : old_s;
            }
        }
#endif
        if (x0 < bbox[0]) bbox[0] = x0;
        if (y0 < bbox[1]) bbox[1] = y0;
        if (x1 > bbox[2]) bbox[2] = x1;
        if (y1 > bbox[3]) bbox[3] = y1;
    }
}

/* Two instances: meshes wholly inside the image skip the per-triangle clipping. */
static void rasterise(const float *pv, const int32_t *tri, int nt, int height, int width,
                      float *depth, float *shade, int bbox[4], int inside) {
    if (inside)
        rasterise_impl(pv, tri, nt, height, width, depth, shade, bbox, 0);
    else
        rasterise_impl(pv, tri, nt, height, width, depth, shade, bbox, 1);
}

long dhp_render_meshes(uint8_t *image, int height, int width, long stride,
                       const float *vertices, int n_vertices, int n_meshes,
                       const int32_t *triangles, int n_triangles,
                       float *depth, float *shade, float *vnormals,
                       const dhp_style *style) {
    if (!image || !vertices || !triangles || !depth || !shade || !vnormals || !style) return -1;
    if (height <= 0 || width <= 0 || height > DHP_RENDER_MAX_SIDE || width > DHP_RENDER_MAX_SIDE ||
        stride < 3L * width || n_vertices < 0 || n_meshes < 0 ||
        n_triangles < 0 || style->n_lights < 0 || style->n_lights > 2)
        return -1;
    if (n_meshes == 0 || n_vertices == 0 || n_triangles == 0) return 0;

    float lights[2][3] = {{0}}, half_vec[2][3] = {{0}};
    for (int l = 0; l < style->n_lights; ++l) {
        const float *d = style->light_dir[l];
        const float len = sqrtf(d[0] * d[0] + d[1] * d[1] + d[2] * d[2]);
        if (len > 0.0f) {
            lights[l][0] = d[0] / len; lights[l][1] = d[1] / len; lights[l][2] = d[2] / len;
        }
        const float hx = lights[l][0], hy = lights[l][1], hz = lights[l][2] + 1.0f;
        const float hl = sqrtf(hx * hx + hy * hy + hz * hz);
        if (hl > 0.0f) { half_vec[l][0] = hx / hl; half_vec[l][1] = hy / hl; half_vec[l][2] = hz / hl; }
    }

    float box[4] = {INFINITY, INFINITY, -INFINITY, -INFINITY};
    int finite = 1;
    for (int m = 0; m < n_meshes; ++m)
        finite &= shade_vertices(vertices + (size_t)m * (size_t)n_vertices * 3, n_vertices, triangles,
                       n_triangles, vnormals + (size_t)m * (size_t)n_vertices * 4, style,
                       lights, half_vec, box);
    const float xmax_f = (float)(width - 1), ymax_f = (float)(height - 1);
    if (!(box[2] >= 0.0f && box[0] <= xmax_f && box[3] >= 0.0f && box[1] <= ymax_f)) return 0;
    /* clear only the region the meshes can touch */
    const int rx0 = floor_nonneg(clampf(box[0], 0.0f, xmax_f));
    const int ry0 = floor_nonneg(clampf(box[1], 0.0f, ymax_f));
    const int rx1 = ceil_nonneg(clampf(box[2], 0.0f, xmax_f));
    const int ry1 = ceil_nonneg(clampf(box[3], 0.0f, ymax_f));
    for (int y = ry0; y <= ry1 + 1; ++y) { /* + the padding row / column of 2 x 2 quads */
        float *drow = depth + (size_t)y * (size_t)(width + 1);
        float *srow = shade + (size_t)y * (size_t)(width + 1);
        for (int x = rx0; x <= rx1 + 1; ++x) { drow[x] = -INFINITY; srow[x] = 0.0f; }
    }

    const int inside = finite && box[0] >= 0.0f && box[2] <= xmax_f && box[1] >= 0.0f &&
                       box[3] <= ymax_f;
    int touched[4] = {width, height, -1, -1};
    for (int m = 0; m < n_meshes; ++m)
        rasterise(vnormals + (size_t)m * (size_t)n_vertices * 4, triangles, n_triangles, height,
                  width, depth, shade, touched, inside);
    if (touched[2] < 0) return 0;

    /* composite once: covered pixels blend the lit colour over the background, in 8.8 fixed
     * point (keep + alpha = 256/256, colour and shade in [0, 1]: results stay in 0..255) */
    const float alpha = clampf(style->alpha, 0.0f, 1.0f);
    const int keep = (int)((1.0f - alpha) * 256.0f + 0.5f);
    const float c0 = clampf(style->color[0], 0.0f, 1.0f) * (float)(256 - keep) * 255.0f,
                c1 = clampf(style->color[1], 0.0f, 1.0f) * (float)(256 - keep) * 255.0f,
                c2 = clampf(style->color[2], 0.0f, 1.0f) * (float)(256 - keep) * 255.0f;
    long covered = 0;
    for (int y = touched[1]; y <= touched[3]; ++y) {
        const float *drow = depth + (size_t)y * (size_t)(width + 1);
        const float *srow = shade + (size_t)y * (size_t)(width + 1);
        uint8_t *px = image + (size_t)y * (size_t)stride;
        for (int x = touched[0]; x <= touched[2]; ++x) {
            if (drow[x] == -INFINITY) continue;
            const float s = clampf(srow[x], 0.0f, 1.0f);
            uint8_t *p = px + 3 * (size_t)x;
            p[0] = (uint8_t)((keep * p[0] + (int)(c0 * s) + 128) >> 8);
            p[1] = (uint8_t)((keep * p[1] + (int)(c1 * s) + 128) >> 8);
            p[2] = (uint8_t)((keep * p[2] + (int)(c2 * s) + 128) >> 8);
            ++covered;
        }
    }
    return covered;
}
