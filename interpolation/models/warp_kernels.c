/* Fused full-size steps of RIFE's forward pass (interpolation/models/rife.py), for CPU float32 (a block's
 * input may be written as bfloat16, for blocks whose convolutions run in it).
 *
 * The blocks' outputs (and the encoder's) arrive as the phases of their last deconvolution, computed as
 * a 2x2 convolution (rife.phase_convolution); the kernels read them where they are (shuffled_at), so
 * neither the phases' interleaving nor the blocks' pixel shuffle is a pass of its own.
 *
 * Run as PyTorch ops, building a fine block's input is six passes over full-size maps (sampling grid,
 * two warps, a 2x enlargement, a 2x2 shrink, the 28-channel join), and the final frame is five more
 * (putting the output in place, flow sum, warp, sigmoid, mix). Each is memory-bound. Here each output pixel is
 * computed once, in registers, and written once, channels-last, the layout the next convolution
 * reads fastest.
 *
 * The arithmetic follows PyTorch's: grid_sample (bilinear, border padding, align_corners=True) and
 * interpolate (bilinear, align_corners=False) weigh the same neighbours in the same order, so the
 * results differ from the ops only by float rounding (about 1e-6).
 *
 * The prepared frames have one fixed layout (Side, below); every other tensor comes with its strides
 * in elements, so views (a channel slice, channels-last or not) need no copy. Work is split by output
 * rows; the caller runs row ranges on several threads.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const float *data;
    int64_t channel, row, col; /* strides in elements */
} Map;

static inline float at(Map m, int64_t c, int64_t y, int64_t x) { return m.data[c * m.channel + y * m.row + x * m.col]; }

/* A float rounded to bfloat16 (its top 16 bits) to nearest, ties to even, as PyTorch's conversion does;
 * NaN stays a (quiet) NaN. */
static inline uint16_t to_bfloat16(float value)
{
    uint32_t bits;
    memcpy(&bits, &value, sizeof bits);
    if ((bits & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((bits >> 16) | 0x40u);
    return (uint16_t)((bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16);
}

/* The network's deconvolutions arrive as their phases (rife.phase_convolution): deconvolution channel d
 * at (y, x) is phase channel 4d + 2 (y mod 2) + (x mod 2) at ((y + 1)/2, (x + 1)/2). A block's output is
 * its deconvolution pixel-shuffled 2x: output channel c at (y, x) is deconvolution channel
 * 4c + 2 (y mod 2) + (x mod 2) at (y/2, x/2), so each output channel is PHASES_PER_OUTPUT phase channels. */
enum { PHASES_PER_OUTPUT = 16 };

/* Where deconvolution row y (or column) lies in the phases: the offset of phase row (y + 1)/2 plus the
 * channel step of its phase; deconvolution channel d at (y, x) is
 * data[4d * channel + phase_offset(y, row, 2 * channel) + phase_offset(x, col, channel)]. */
static inline int64_t phase_offset(int i, int64_t step, int64_t channel) { return ((i + 1) / 2) * step + (i % 2) * channel; }

/* Where a block's output row y (or column) lies in the phases (the pixel shuffle, then phase_offset):
 * output channel c at (y, x) is
 * data[PHASES_PER_OUTPUT * c * channel + shuffled_offset(y, row, 2 * channel) + shuffled_offset(x, col, channel)]. */
static inline int64_t shuffled_offset(int i, int64_t step, int64_t channel)
{
    return phase_offset(i / 2, step, channel) + (i % 2) * 4 * channel;
}

/* Output channel c at (y, x) of a block, read from its phases. */
static inline float shuffled_at(Map u, int c, int y, int x)
{
    return u.data[PHASES_PER_OUTPUT * c * u.channel + shuffled_offset(y, u.row, 2 * u.channel) +
                  shuffled_offset(x, u.col, u.channel)];
}

/* A prepared frame's pixel: 3 picture + 4 encoding channels, padded to 8 floats so that one pixel
 * is one vector (one AVX register; two SSE ones). */
enum { SIDE_PIXEL = 8 };
typedef float Pixel __attribute__((vector_size(SIDE_PIXEL * sizeof(float))));
typedef float UnalignedPixel __attribute__((vector_size(SIDE_PIXEL * sizeof(float)), aligned(sizeof(float))));

typedef struct {
    const float *data; /* (height, width, SIDE_PIXEL) */
    int64_t row;
} Side;

static inline Pixel pixel_at(Side side, int y, int x) { return *(const UnalignedPixel *)(side.data + y * side.row + x * SIDE_PIXEL); }

/* Bilinear sample of a prepared frame (height x width) at pixel position (x, y), the position
 * clamped to the frame as grid_sample's border padding does. */
static inline Pixel sample(Side side, int height, int width, float x, float y)
{
    /* Written so that NaN lands on 0 (a comparison with NaN is false): never an index outside. */
    x = x > 0.0f ? x : 0.0f;
    x = x < (float)(width - 1) ? x : (float)(width - 1);
    y = y > 0.0f ? y : 0.0f;
    y = y < (float)(height - 1) ? y : (float)(height - 1);
    int x0 = (int)x, y0 = (int)y; /* floor: both are >= 0 */
    float ax = x - (float)x0, ay = y - (float)y0;
    /* At the last row/column the far neighbour has weight 0; read the near one twice instead. */
    int x1 = x0 + 1 < width ? x0 + 1 : x0, y1 = y0 + 1 < height ? y0 + 1 : y0;
    float nw = (1.0f - ax) * (1.0f - ay), ne = ax * (1.0f - ay), sw = (1.0f - ax) * ay, se = ax * ay;
    return pixel_at(side, y0, x0) * nw + pixel_at(side, y0, x1) * ne + pixel_at(side, y1, x0) * sw + pixel_at(side, y1, x1) * se;
}

static inline void store(float *out, Pixel value) { *(UnalignedPixel *)out = value; }

/* Source rows (or columns) and weight of the far one, for a 2x bilinear enlargement with
 * align_corners=False: output i reads source i/2 - 1/4, clamped at 0. */
static inline void enlarged_from(int i, int source_size, int *near, int *far, float *far_weight)
{
    float s = 0.5f * ((float)i + 0.5f) - 0.5f;
    if (s < 0.0f) s = 0.0f;
    *near = (int)s;
    *far = *near + 1 < source_size ? *near + 1 : *near;
    *far_weight = s - (float)*near;
}

enum { SIDE_CHANNELS = 7, WARPED = 2 * SIDE_CHANNELS, CARRIED = 9, FLOW = 4, BLOCK_INPUT = WARPED + 1 + CARRIED + FLOW };
enum { MOMENT = WARPED, CARRIED_AT = WARPED + 1, FLOW_AT = WARPED + 1 + CARRIED };
/* A block's output channels: 4 flow, then the mask and 8 features that the next block is handed. */
enum { OUTPUT_CARRIED_FROM = FLOW };

/* The rows of the previous block's output that row y of a block reads, enlarging it 2x (its output is
 * carried_height rows once in place), and the weight of the lower one. */
typedef struct {
    const float *top, *bottom;
    float weight;
} CarriedRows;

static inline CarriedRows carried_rows(Map previous, int y, int carried_height)
{
    int top, bottom;
    float weight;
    enlarged_from(y, carried_height, &top, &bottom, &weight);
    CarriedRows rows = {previous.data + shuffled_offset(top, previous.row, 2 * previous.channel),
                        previous.data + shuffled_offset(bottom, previous.row, 2 * previous.channel), weight};
    return rows;
}

/* The previous block's mask and features at column x of those rows, enlarged 2x as interpolate does,
 * into o[0 .. CARRIED). */
static inline void carried_into(float *o, Map previous, CarriedRows rows, int x, int carried_width);

/* One block's input at 1/factor of the frame size (factor 1 or even), channels-last (h, w, 28), for its
 * first out_height x out_width pixels (the block's region, at most the frame's height/factor x width/factor):
 *   0-6   side0 (frame 0 and its encoding) warped along flow[0:2],
 *   7-13  side1 warped along flow[2:4],
 *   14    t,
 *   15-23 the previous block's mask and features, enlarged 2x (`previous` is that block's output as
 *         its deconvolution's phases, carried_height x carried_width once in place: half this block's
 *         size; reads past its region are clamped to its edge),
 *   24-27 the flow shrunk to this size, divided by factor.
 * For an even factor f each value is the mean of the 2x2 full-size values at the centre of its f x f
 * cell: a bilinear shrink by f (align_corners=False) reads exactly those, so only they are warped. */
void block_input(const float *side0, const float *side1, int64_t side_row,
                 const float *flow, int64_t flow_channel, int64_t flow_row, int64_t flow_col,
                 const float *previous, int64_t previous_channel, int64_t previous_row, int64_t previous_col,
                 float t, int factor, int height, int width, int out_width, int carried_height, int carried_width,
                 void *out, int out_bf16, int row_begin, int row_end)
{
    Side s0 = {side0, side_row}, s1 = {side1, side_row};
    Map f = {flow, flow_channel, flow_row, flow_col}, p = {previous, previous_channel, previous_row, previous_col};
    float pixel[BLOCK_INPUT + SIDE_PIXEL]; /* one output pixel; the last store's padding lane fits too */
    for (int y = row_begin; y < row_end; y++) {
        CarriedRows carried = carried_rows(p, y, carried_height);
        for (int x = 0; x < out_width; x++) {
            int64_t at_pixel = ((int64_t)y * out_width + x) * BLOCK_INPUT;
            float *o = out_bf16 ? pixel : (float *)out + at_pixel;
            Pixel warped0, warped1;
            float shrunk[FLOW];
            if (factor == 1) {
                for (int c = 0; c < FLOW; c++) shrunk[c] = at(f, c, y, x);
                warped0 = sample(s0, height, width, (float)x + shrunk[0], (float)y + shrunk[1]);
                warped1 = sample(s1, height, width, (float)x + shrunk[2], (float)y + shrunk[3]);
            } else {
                /* interpolate's shrink: 0.5 (0.5 a + 0.5 b) + 0.5 (0.5 c + 0.5 d), a b the top row */
                Pixel rows0[2], rows1[2];
                float flow_rows[2][FLOW];
                for (int dy = 0; dy < 2; dy++) {
                    int fy = factor * y + factor / 2 - 1 + dy, fx = factor * x + factor / 2 - 1;
                    float a[FLOW], b[FLOW];
                    for (int c = 0; c < FLOW; c++) a[c] = at(f, c, fy, fx), b[c] = at(f, c, fy, fx + 1);
                    rows0[dy] = sample(s0, height, width, (float)fx + a[0], (float)fy + a[1]) * 0.5f +
                                sample(s0, height, width, (float)(fx + 1) + b[0], (float)fy + b[1]) * 0.5f;
                    rows1[dy] = sample(s1, height, width, (float)fx + a[2], (float)fy + a[3]) * 0.5f +
                                sample(s1, height, width, (float)(fx + 1) + b[2], (float)fy + b[3]) * 0.5f;
                    for (int c = 0; c < FLOW; c++) flow_rows[dy][c] = 0.5f * a[c] + 0.5f * b[c];
                }
                warped0 = rows0[0] * 0.5f + rows0[1] * 0.5f;
                warped1 = rows1[0] * 0.5f + rows1[1] * 0.5f;
                for (int c = 0; c < FLOW; c++) shrunk[c] = (0.5f * flow_rows[0][c] + 0.5f * flow_rows[1][c]) / (float)factor;
            }
            /* Each store writes 8 lanes; the next one overwrites the padding lane. */
            store(o, warped0);
            store(o + SIDE_CHANNELS, warped1);
            o[MOMENT] = t;
            carried_into(o + CARRIED_AT, p, carried, x, carried_width);
            for (int c = 0; c < FLOW; c++) o[FLOW_AT + c] = shrunk[c];
            if (out_bf16) {
                uint16_t *half = (uint16_t *)out + at_pixel;
                for (int c = 0; c < BLOCK_INPUT; c++) half[c] = to_bfloat16(pixel[c]);
            }
        }
    }
}

static inline void carried_into(float *o, Map previous, CarriedRows rows, int x, int carried_width)
{
    int left, right;
    float weight;
    enlarged_from(x, carried_width, &left, &right, &weight);
    int64_t near = shuffled_offset(left, previous.col, previous.channel);
    int64_t far = shuffled_offset(right, previous.col, previous.channel);
    for (int c = 0; c < CARRIED; c++) {
        int64_t k = PHASES_PER_OUTPUT * (OUTPUT_CARRIED_FROM + c) * previous.channel;
        o[c] = (1.0f - rows.weight) * ((1.0f - weight) * rows.top[k + near] + weight * rows.top[k + far]) +
               rows.weight * ((1.0f - weight) * rows.bottom[k + near] + weight * rows.bottom[k + far]);
    }
}

/* Small frames run the network at twice their size, so its last block's input is at 1/2 of the frame
 * (factor 1/2), made by enlarging 2x what block_input makes at the frame's size. First, both sides
 * warped at the frame's size: (height, width, 16), side0's 7 channels and a padding lane, then side1's. */
enum { WARPED_PIXEL = 2 * SIDE_PIXEL };

void warped_sides(const float *side0, const float *side1, int64_t side_row,
                  const float *flow, int64_t flow_channel, int64_t flow_row, int64_t flow_col,
                  int height, int width, float *out, int row_begin, int row_end)
{
    Side s0 = {side0, side_row}, s1 = {side1, side_row};
    Map f = {flow, flow_channel, flow_row, flow_col};
    for (int y = row_begin; y < row_end; y++)
        for (int x = 0; x < width; x++) {
            float *o = out + ((int64_t)y * width + x) * WARPED_PIXEL;
            store(o, sample(s0, height, width, (float)x + at(f, 0, y, x), (float)y + at(f, 1, y, x)));
            store(o + SIDE_PIXEL, sample(s1, height, width, (float)x + at(f, 2, y, x), (float)y + at(f, 3, y, x)));
        }
}

static inline Pixel warped_at(const float *warped, int width, int y, int x, int side)
{
    return *(const UnalignedPixel *)(warped + ((int64_t)y * width + x) * WARPED_PIXEL + side * SIDE_PIXEL);
}

/* Then the block's input at twice the frame's size, channels-last (h, w, 28), its first out_width
 * columns of the rows given: the warped sides (from warped_sides) and the flow enlarged 2x as
 * interpolate does, the flow divided by 1/2; t; the previous block's mask and features enlarged 2x
 * as in block_input (that block ran at the frame's size). */
void enlarged_input(const float *warped, const float *flow, int64_t flow_channel, int64_t flow_row, int64_t flow_col,
                    const float *previous, int64_t previous_channel, int64_t previous_row, int64_t previous_col,
                    float t, int height, int width, int out_width, int carried_height, int carried_width,
                    float *out, int row_begin, int row_end)
{
    Map f = {flow, flow_channel, flow_row, flow_col}, p = {previous, previous_channel, previous_row, previous_col};
    for (int y = row_begin; y < row_end; y++) {
        int top, bottom;
        float wy;
        enlarged_from(y, height, &top, &bottom, &wy);
        CarriedRows carried = carried_rows(p, y, carried_height);
        for (int x = 0; x < out_width; x++) {
            int left, right;
            float wx;
            enlarged_from(x, width, &left, &right, &wx);
            float *o = out + ((int64_t)y * out_width + x) * BLOCK_INPUT;
            for (int side = 0; side < 2; side++) {
                /* interpolate's order: (1 - wy) ((1 - wx) a + wx b) + wy ((1 - wx) c + wx d) */
                Pixel upper = warped_at(warped, width, top, left, side) * (1.0f - wx) +
                              warped_at(warped, width, top, right, side) * wx;
                Pixel lower = warped_at(warped, width, bottom, left, side) * (1.0f - wx) +
                              warped_at(warped, width, bottom, right, side) * wx;
                store(o + side * SIDE_CHANNELS, upper * (1.0f - wy) + lower * wy); /* side1 overwrites the padding lane */
            }
            o[MOMENT] = t;
            carried_into(o + CARRIED_AT, p, carried, x, carried_width);
            for (int c = 0; c < FLOW; c++) {
                float upper = (1.0f - wx) * at(f, c, top, left) + wx * at(f, c, top, right);
                float lower = (1.0f - wx) * at(f, c, bottom, left) + wx * at(f, c, bottom, right);
                o[FLOW_AT + c] = ((1.0f - wy) * upper + wy * lower) / 0.5f;
            }
        }
    }
}

/* One output pixel from the summed flow at it and the mask logit (full[0..4]): both pictures warped and
 * mixed, side1's + sigmoid(mask) * (side0's - side1's), as torch.lerp computes it. */
static inline void mix_into(float *out, int64_t plane, Side s0, Side s1, int height, int width, int x, int y,
                            const float full[FLOW + 1])
{
    float weight = 1.0f / (1.0f + expf(-full[FLOW]));
    Pixel warped0 = sample(s0, height, width, (float)x + full[0], (float)y + full[1]);
    Pixel warped1 = sample(s1, height, width, (float)x + full[2], (float)y + full[3]);
    Pixel difference = warped0 - warped1;
    Pixel mixed = weight < 0.5f ? warped1 + difference * weight : warped0 - difference * (1.0f - weight);
    for (int c = 0; c < 3; c++) out[c * plane] = mixed[c];
}

/* The last block's output at the frame's pixel (y, x), channels 0-4 (flow update and mask logit), from
 * its deconvolution's phases (see shuffled_at). `enlarged`: the block ran at twice the frame's size
 * (enlarged_input), so its output is shrunk 2x as interpolate does, each value the mean of a 2x2 cell,
 * 0.5 (0.5 a + 0.5 b) + 0.5 (0.5 c + 0.5 d), the flow update halved first (its factor, 1/2). */
static inline void last_output_at(float full[FLOW + 1], Map u, int enlarged, int y, int x)
{
    for (int c = 0; c <= FLOW; c++) {
        if (!enlarged) {
            full[c] = shuffled_at(u, c, y, x);
            continue;
        }
        float gain = c < FLOW ? 0.5f : 1.0f;
        float a = shuffled_at(u, c, 2 * y, 2 * x) * gain, b = shuffled_at(u, c, 2 * y, 2 * x + 1) * gain;
        float d = shuffled_at(u, c, 2 * y + 1, 2 * x) * gain, e = shuffled_at(u, c, 2 * y + 1, 2 * x + 1) * gain;
        full[c] = (a * 0.5f + b * 0.5f) * 0.5f + (d * 0.5f + e * 0.5f) * 0.5f;
    }
}

/* The output frame's first out_height x out_width pixels (the last block's region), (3, out_height,
 * out_width), from the last block's output as its deconvolution's phases (`update`, 80 channels; at
 * twice the frame's size where `enlarged`, see last_output_at). Its channels 0-3 are added to `flow`,
 * channel 4 is the mask logit; the frames' pictures (channels 0-2 of each side) are warped along the
 * summed flows and mixed (mix_into). */
void final_frame(const float *side0, const float *side1, int64_t side_row,
                 const float *flow, int64_t flow_channel, int64_t flow_row, int64_t flow_col,
                 const float *update, int64_t update_channel, int64_t update_row, int64_t update_col,
                 int enlarged, int height, int width, int out_width, float *out, int out_height,
                 int row_begin, int row_end)
{
    Side s0 = {side0, side_row}, s1 = {side1, side_row};
    Map f = {flow, flow_channel, flow_row, flow_col}, u = {update, update_channel, update_row, update_col};
    int64_t plane = (int64_t)out_height * out_width;
    for (int y = row_begin; y < row_end; y++) {
        for (int x = 0; x < out_width; x++) {
            float full[FLOW + 1];
            last_output_at(full, u, enlarged, y, x);
            for (int c = 0; c < FLOW; c++) full[c] = at(f, c, y, x) + full[c];
            mix_into(out + (int64_t)y * out_width + x, plane, s0, s1, height, width, x, y, full);
        }
    }
}

/* The full-size flow after a block at 1/factor of the frame (factor a power of two): `flow` plus its
 * update, channels 0-3 of the block's output (`update`, its deconvolution's phases, small_height x
 * small_width once in place) times factor, enlarged by factor as interpolate does (bilinear,
 * align_corners=False). Only the first factor * small_width columns of the rows given are updated: the
 * block's region (the rows likewise, by the caller). With `accumulate` 0 the first block's update is
 * written instead of added. `flow` is (4, height, width), contiguous.
 * Returns 0, or -1 if memory for the column table ran out. */
int add_enlarged(float *flow, int accumulate, const float *update, int64_t update_channel, int64_t update_row,
                 int64_t update_col, int factor, int height, int width, int small_height, int small_width,
                 int row_begin, int row_end)
{
    int region_width = factor * small_width < width ? factor * small_width : width;
    float inverse = 1.0f / (float)factor, gain = (float)factor;
    int64_t plane = (int64_t)height * width;
    /* Every row reads the same source columns: their offsets and weights, once. */
    int64_t *columns = malloc(sizeof(int64_t) * 2 * (size_t)region_width);
    float *far_weights = malloc(sizeof(float) * (size_t)region_width);
    if (columns == NULL || far_weights == NULL) {
        free(columns);
        free(far_weights);
        return -1;
    }
    for (int x = 0; x < region_width; x++) {
        float sx = inverse * ((float)x + 0.5f) - 0.5f;
        sx = sx > 0.0f ? sx : 0.0f;
        int x0 = (int)sx, x1 = x0 + 1 < small_width ? x0 + 1 : x0;
        columns[2 * x] = shuffled_offset(x0, update_col, update_channel);
        columns[2 * x + 1] = shuffled_offset(x1, update_col, update_channel);
        far_weights[x] = sx - (float)x0;
    }
    for (int y = row_begin; y < row_end; y++) {
        float sy = inverse * ((float)y + 0.5f) - 0.5f;
        sy = sy > 0.0f ? sy : 0.0f;
        int y0 = (int)sy, y1 = y0 + 1 < small_height ? y0 + 1 : y0;
        float ly = sy - (float)y0;
        const float *top_row = update + shuffled_offset(y0, update_row, 2 * update_channel);
        const float *bottom_row = update + shuffled_offset(y1, update_row, 2 * update_channel);
        for (int c = 0; c < FLOW; c++) {
            int64_t channel = PHASES_PER_OUTPUT * c * update_channel;
            const float *top = top_row + channel, *bottom = bottom_row + channel;
            float *target = flow + c * plane + (int64_t)y * width;
            for (int x = 0; x < region_width; x++) {
                int64_t near = columns[2 * x], far = columns[2 * x + 1];
                float lx = far_weights[x];
                float upper = (1.0f - lx) * (top[near] * gain) + lx * (top[far] * gain);
                float lower = (1.0f - lx) * (bottom[near] * gain) + lx * (bottom[far] * gain);
                float value = (1.0f - ly) * upper + ly * lower;
                target[x] = accumulate ? target[x] + value : value;
            }
        }
    }
    free(columns);
    free(far_weights);
    return 0;
}

/* A prepared frame's encoding channels 3-6, written into `side` from the encoder's last deconvolution
 * as its phases (16 channels: a deconvolution with no pixel shuffle after it, see phase_offset). */
void encoding_into(float *side, int64_t side_row, const float *phases, int64_t phase_channel, int64_t phase_row,
                   int64_t phase_col, int width, int row_begin, int row_end)
{
    Map p = {phases, phase_channel, phase_row, phase_col};
    for (int y = row_begin; y < row_end; y++)
        for (int x = 0; x < width; x++)
            for (int c = 0; c < 4; c++)
                side[y * side_row + x * SIDE_PIXEL + 3 + c] =
                    p.data[4 * c * p.channel + phase_offset(y, p.row, 2 * p.channel) + phase_offset(x, p.col, p.channel)];
}

/* A decoded frame (height x width x 3 bytes, rows `frame_row` bytes apart) as the network reads it,
 * divided by 255 and padded to padded_height x padded_width with zeros, as Practical-RIFE pads
 * (and RifeInterpolator.padded): written both as the picture channels 0-2 of a prepared
 * frame (whose padding lane 7 is zeroed here, so the buffer needs no clearing) and as (3,
 * padded_height, padded_width) planes, the encoder's input. */
void picture_into(const uint8_t *frame, int64_t frame_row, int height, int width, float *side, int64_t side_row,
                  float *planes, int padded_height, int padded_width, int row_begin, int row_end)
{
    int64_t plane = (int64_t)padded_height * padded_width;
    for (int y = row_begin; y < row_end; y++) {
        const uint8_t *source = y < height ? frame + (int64_t)y * frame_row : NULL;
        float *side_pixel = side + y * side_row, *picture = planes + (int64_t)y * padded_width;
        for (int x = 0; x < padded_width; x++, side_pixel += SIDE_PIXEL) {
            int inside = source != NULL && x < width;
            for (int c = 0; c < 3; c++) {
                float value = inside ? (float)source[3 * x + c] / 255.0f : 0.0f;
                side_pixel[c] = value;
                picture[c * plane + x] = value;
            }
            side_pixel[SIDE_PIXEL - 1] = 0.0f;
        }
    }
}

/* The first `width` columns of the rows given of `views` frames summed, (3, H, W) floats, as 8-bit RGB
 * rows of width x 3 bytes:
 * the mean clamped to [0, 1], times 255, rounded half to even, as rife.to_frame computes it (NaN
 * becomes 0). */
void to_pixels(const float *image, int64_t channel, int64_t row, int64_t col, int views, int width,
               uint8_t *out, int row_begin, int row_end)
{
    Map m = {image, channel, row, col};
    float count = (float)views;
    for (int y = row_begin; y < row_end; y++) {
        uint8_t *rgb = out + (int64_t)y * width * 3;
        for (int x = 0; x < width; x++, rgb += 3)
            for (int c = 0; c < 3; c++) {
                float value = at(m, c, y, x) / count;
                value = value > 0.0f ? value : 0.0f;
                value = value < 1.0f ? value : 1.0f;
                rgb[c] = (uint8_t)nearbyintf(value * 255.0f);
            }
    }
}
