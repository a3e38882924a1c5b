/* The table of execution modes: add one line here for a new mode file. */
#include <string.h>

#include "bench/harness/train.h"

extern const mf_mode mf_mode_baseline;
extern const mf_mode mf_mode_cold;
extern const mf_mode mf_mode_warm;

const mf_mode *const mf_modes[] = {
    &mf_mode_baseline,
    &mf_mode_cold,
    &mf_mode_warm,
    NULL,
};

const mf_mode *mf_mode_find(const char *name) {
  for (int i = 0; mf_modes[i]; i++)
    if (strcmp(mf_modes[i]->name, name) == 0) return mf_modes[i];
  return NULL;
}
