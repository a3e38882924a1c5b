/* mayfly-grad: one training step of one model on one batch, written to HDF5 — the gradient
 * oracle. It lets anyone check mayfly's gradients against another framework (PyTorch: load the
 * same state_dict, run the same batch, diff the files) without MPI or a dataset.
 *
 *   mayfly-grad --model NAME [--weights W.h5] --batch-file X.h5 -o G.h5
 *
 * Inputs: W.h5 is a checkpoint (bench/harness/checkpoint.h: state_dict names at the root, float32;
 * without --weights the model's own seeded init is used). X.h5 holds `x` float32 [B,C,H,W] in
 * the model's geometry and `y` int64 or int32 [B] with labels 0..classes-1.
 * The step: training mode (batch statistics in batch norm), dropout off, loss = mean
 * cross-entropy over the batch; gradients are those of that mean.
 * Output G.h5: `loss` float32 scalar, `logits` float32 [B,classes], `grad/<name>` float32 for
 * every parameter in state_dict shape, `batch_stats/<name>` for every batch-norm buffer (the
 * batch mean and unbiased variance PyTorch folds into running_mean / running_var); root
 * attributes model, batch, weights.
 * Errors are one line on stderr: exit 2 for usage, 1 for anything at run time. No MPI_Init. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/harness/checkpoint.h"
#include "bench/harness/h5util.h"
#include "bench/harness/options.h"
#include "bench/harness/train_options.h"
#include "kernels/model.h"

typedef struct {
  const char *model, *weights, *batch_file, *output;
  int threads, seed;
} grad_config;

#define FIELD(name) offsetof(grad_config, name)

static const mf_option grad_options[] = {
    {"model", 'm', MF_OPT_CUSTOM, FIELD(model), "NAME", NULL, "network (required)", 0, 0, NULL,
     mf_option_parse_model, mf_option_format_string},
    {"weights", 'W', MF_OPT_STRING, FIELD(weights), "W.h5", NULL,
     "checkpoint with state_dict-named float32 datasets (default: the model's seeded init)", 0, 0,
     NULL, NULL, NULL},
    {"batch-file", 'x', MF_OPT_STRING, FIELD(batch_file), "X.h5", NULL,
     "batch: x float32 [B,C,H,W], y int64/int32 [B] (required)", 0, 0, NULL, NULL, NULL},
    {"output", 'o', MF_OPT_STRING, FIELD(output), "G.h5", NULL,
     "result file: loss, logits, grad/<name>, batch_stats/<name> (required)", 0, 0, NULL, NULL,
     NULL},
    {"threads", 't', MF_OPT_INT, FIELD(threads), "T", "1", "OpenBLAS threads", 1, 1024, NULL, NULL,
     NULL},
    {"seed", 's', MF_OPT_INT, FIELD(seed), "S", "1234", "init seed when --weights is not given", 0,
     2147483647, NULL, NULL, NULL},
};

static const mf_program grad_program = {
    .name = "mayfly-grad",
    .summary =
        "One training step (batch statistics, dropout off) of a model on one batch; "
        "writes loss, logits and every parameter's gradient to HDF5.",
    .usage = "--model NAME [--weights W.h5] --batch-file X.h5 -o G.h5",
    .options = grad_options,
    .count = MF_OPTION_COUNT(grad_options),
    .epilogue =
        "Example:\n  mayfly-grad --model squeezenet1_1 --weights sq.h5 --batch-file "
        "batch.h5 -o grads.h5\n",
};

/* Reads x and y from the batch file into freshly allocated arrays; returns B or -1. */
static int read_batch(const char *path, const kn_model_kind *kind, float **x, int32_t **y,
                      char *err, size_t errlen) {
  hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  if (f < 0) {
    snprintf(err, errlen, "%s: cannot open as HDF5", path);
    return -1;
  }
  int rank = 0, B = -1;
  int64_t shape[KN_MAX_RANK] = {0};
  if (mf_h5_tensor_shape(f, "x", &rank, shape, NULL, NULL) != 0) {
    snprintf(err, errlen, "%s: tensor 'x' is missing", path);
  } else if (rank != 4 || shape[0] < 1 || shape[0] > 1 << 20) {
    snprintf(err, errlen, "%s: tensor 'x' must be [B,%d,%d,%d] with B >= 1", path, kind->channels,
             kind->height, kind->width);
  } else {
    /* The expected shape is the model's geometry: the read reports any difference. */
    int64_t want[4] = {shape[0], kind->channels, kind->height, kind->width}, yshape[1] = {shape[0]};
    size_t n = (size_t)shape[0] * kind->channels * kind->height * kind->width;
    *x = malloc(n * sizeof(float));
    *y = malloc((size_t)shape[0] * sizeof(int32_t));
    if (!*x || !*y)
      snprintf(err, errlen, "%s: out of memory for a batch of %lld", path, (long long)shape[0]);
    else if (mf_h5_read_tensor(f, path, "x", H5T_FLOAT, H5T_NATIVE_FLOAT, 4, want, *x, err,
                               errlen) == 0 &&
             mf_h5_read_tensor(f, path, "y", H5T_INTEGER, H5T_NATIVE_INT32, 1, yshape, *y, err,
                               errlen) == 0) {
      B = (int)shape[0];
      for (int i = 0; i < B; i++)
        if ((*y)[i] < 0 || (*y)[i] >= kind->classes) {
          snprintf(err, errlen, "%s: label y[%d] = %d is outside 0..%d", path, i, (*y)[i],
                   kind->classes - 1);
          B = -1;
          break;
        }
    }
  }
  H5Fclose(f);
  return B;
}

static int write_result(const char *path, const grad_config *c, const kn_model *m, int B,
                        float loss, const float *logits, char *err, size_t errlen) {
  hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  if (f < 0) {
    snprintf(err, errlen, "%s: cannot create", path);
    return -1;
  }
  int64_t lshape[2] = {B, m->kind->classes};
  int rc = mf_h5_attr_string(f, "model", m->kind->name) | mf_h5_attr_int(f, "batch", B) |
           mf_h5_attr_string(f, "weights", c->weights ? c->weights : "(seeded init)") |
           mf_h5_write_tensor(f, "loss", 0, NULL, &loss) |
           mf_h5_write_tensor(f, "logits", 2, lshape, logits);
  char name[160];
  for (int i = 0; rc == 0 && i < m->num_param_tensors; i++) {
    const kn_tensor_info *t = &m->param_tensors[i];
    snprintf(name, sizeof name, "grad/%s", t->name);
    rc = mf_h5_write_tensor(f, name, t->rank, t->shape, m->grads + t->offset);
  }
  for (int i = 0; rc == 0 && i < m->num_buffer_tensors; i++) {
    const kn_tensor_info *t = &m->buffer_tensors[i];
    snprintf(name, sizeof name, "batch_stats/%s", t->name);
    rc = mf_h5_write_tensor(f, name, t->rank, t->shape, m->batch_stats + t->offset);
  }
  if (H5Fclose(f) < 0) rc = -1;
  if (rc != 0) snprintf(err, errlen, "%s: cannot write the results", path);
  return rc ? -1 : 0;
}

int main(int argc, char **argv) {
  grad_config c = {0};
  int status = mf_options_parse(&grad_program, argc, argv, &c, 0);
  if (status != MF_OPTIONS_OK) return status == MF_OPTIONS_USAGE_ERROR ? 2 : 0;
  const char *missing = !c.model        ? "--model"
                        : !c.batch_file ? "--batch-file"
                        : !c.output     ? "--output"
                                        : NULL;
  if (missing) {
    mf_error(grad_program.name, "%s is required (see --help)", missing);
    return 2;
  }
  mf_h5_quiet();
  kn_set_threads(c.threads);
  const kn_model_kind *kind = kn_model_find(c.model);
  char err[512];
  float *x = NULL;
  int32_t *y = NULL;
  int B = read_batch(c.batch_file, kind, &x, &y, err, sizeof err);
  kn_model *m = NULL;
  float *logits = NULL;
  int code = 1;
  if (B < 0) goto fail;
  m = kn_model_create(kind, B, (uint64_t)c.seed, err, sizeof err);
  if (!m) goto fail;
  if (c.weights && mf_checkpoint_load(c.weights, m, NULL, err, sizeof err) != 0) goto fail;
  logits = malloc((size_t)B * kind->classes * sizeof(float));
  if (!logits) {
    snprintf(err, sizeof err, "out of memory");
    goto fail;
  }
  m->dropout_seed = 0;
  kn_model_zero_grad(m);
  float loss = kind->train_step(m, x, y, B, logits);
  if (write_result(c.output, &c, m, B, loss, logits, err, sizeof err) != 0) goto fail;
  printf("%s: model %s, batch %d, loss %.6f, %zu gradient values -> %s\n", grad_program.name,
         kind->name, B, loss, m->num_params, c.output);
  code = 0;
  goto done;
fail:
  mf_error(grad_program.name, "%s", err);
done:
  free(x);
  free(y);
  free(logits);
  kn_model_free(m);
  return code;
}
