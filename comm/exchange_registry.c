/* The table of peer exchange algorithms: add one line here for a new algorithm file. */
#include "comm/exchange.h"

#include <string.h>

extern const cm_exchange_algorithm cm_exchange_mpi;
extern const cm_exchange_algorithm cm_exchange_ring;
extern const cm_exchange_algorithm cm_exchange_recursive_doubling;
extern const cm_exchange_algorithm cm_exchange_rabenseifner;
extern const cm_exchange_algorithm cm_exchange_store;
extern const cm_exchange_algorithm cm_exchange_auto_algorithm;

const cm_exchange_algorithm *const cm_exchange_algorithms[] = {
    &cm_exchange_mpi,
    &cm_exchange_ring,
    &cm_exchange_recursive_doubling,
    &cm_exchange_rabenseifner,
    &cm_exchange_store,
    &cm_exchange_auto_algorithm,
    NULL,
};

const cm_exchange_algorithm *cm_exchange_find(const char *name) {
  for (int i = 0; cm_exchange_algorithms[i]; i++)
    if (strcmp(cm_exchange_algorithms[i]->name, name) == 0) return cm_exchange_algorithms[i];
  return NULL;
}

const cm_exchange_algorithm *cm_exchange_resolve(const cm_exchange_algorithm *algorithm,
                                                 size_t bytes, int peers) {
  return algorithm == &cm_exchange_auto_algorithm ? cm_exchange_auto(bytes, peers) : algorithm;
}
