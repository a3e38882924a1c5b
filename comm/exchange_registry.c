/* The table of peer exchange algorithms: add one line here for a new algorithm file. */
#include "comm/exchange.h"

#include <string.h>

extern const cm_exchange_algorithm cm_exchange_mpi;

const cm_exchange_algorithm *const cm_exchange_algorithms[] = {
    &cm_exchange_mpi,
    NULL,
};

const cm_exchange_algorithm *cm_exchange_find(const char *name) {
  for (int i = 0; cm_exchange_algorithms[i]; i++)
    if (strcmp(cm_exchange_algorithms[i]->name, name) == 0) return cm_exchange_algorithms[i];
  return NULL;
}
