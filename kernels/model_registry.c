/* The model table: one line per model. Adding a model is one new kernels/NAME.c that defines a
 * kn_model_kind, plus its line here. Order is the order --help lists them. */
#include "kernels/model.h"

extern const kn_model_kind kn_model_mlp;
extern const kn_model_kind kn_model_cnn;
extern const kn_model_kind kn_model_vgg11;
extern const kn_model_kind kn_model_squeezenet1_1;
extern const kn_model_kind kn_model_mobilenet_v3_small;

const kn_model_kind *const kn_model_kinds[] = {
    &kn_model_mlp,
    &kn_model_cnn,
    &kn_model_vgg11,
    &kn_model_squeezenet1_1,
    &kn_model_mobilenet_v3_small,
    NULL,
};
