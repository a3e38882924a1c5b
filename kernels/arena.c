/* A float arena: one allocation carved into a model's many activation arrays.
 *
 * Why: a model has dozens of activation and activation-gradient arrays; allocating them one by
 * one means dozens of error paths and frees. With the arena, init runs the same "take" sequence
 * twice: a measuring pass (nothing allocated, NULL pointers handed out) adds up the sizes, then
 * kn_arena_allocate makes one 64-byte aligned block and the second pass hands out real
 * pointers. Every array starts on a cache line. */
#include <stdlib.h>
#include <string.h>

#include "kernels/layers.h"

enum { ARENA_ALIGN_FLOATS = 16 }; /* 64 bytes */

float *kn_arena_take(kn_arena *arena, size_t floats) {
  size_t rounded = (floats + ARENA_ALIGN_FLOATS - 1) / ARENA_ALIGN_FLOATS * ARENA_ALIGN_FLOATS;
  float *p = arena->base ? arena->base + arena->used : NULL;
  if (arena->base && arena->used + rounded > arena->capacity) return NULL;
  arena->used += rounded;
  return p;
}

int32_t *kn_arena_take_int32(kn_arena *arena, size_t count) {
  _Static_assert(sizeof(int32_t) == sizeof(float), "int32 arrays share the float arena");
  return (int32_t *)(void *)kn_arena_take(arena, count);
}

int kn_arena_allocate(kn_arena *arena) {
  size_t floats = arena->used ? arena->used : ARENA_ALIGN_FLOATS;
  arena->base = aligned_alloc(64, floats * sizeof(float));
  if (!arena->base) return -1;
  memset(arena->base, 0, floats * sizeof(float));
  arena->capacity = floats;
  arena->used = 0;
  return 0;
}

void kn_arena_free(kn_arena *arena) {
  free(arena->base);
  memset(arena, 0, sizeof *arena);
}
