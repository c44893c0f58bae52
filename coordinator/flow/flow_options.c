/* flow_options.c - the flow, training and FlowProposal option fragment
 * (defaults of docs/algorithm.md §11; nessai's names in kebab case). */
#include "flow_proposal.h"

#include <math.h>

#define BIG 1e18
#define GF "Flow"
#define GT "Flow training"
#define GP "Flow proposal"

const ns_option_t ns_flow_options[] = {
    {"flow-n-blocks", NS_OPT_INT, "4", 1, 1000, NULL, 0, GF,
     "Number of coupling transforms (nessai n_blocks)."},
    {"flow-n-layers", NS_OPT_INT, "2", 0, 1000, NULL, 0, GF,
     "Residual blocks (resnet) or hidden layers (mlp) in each coupling network."},
    {"flow-n-neurons", NS_OPT_INT, NULL, 1, 100000, NULL, NS_OPT_ALLOW_NONE, GF,
     "Hidden width of the coupling networks; none = 2 x the number of flow inputs."},
    {"flow-net", NS_OPT_CHOICE, "resnet", 0, 0, "resnet|mlp", 0, GF,
     "Coupling network: residual network or plain MLP (ReLU)."},
    {"flow-batch-norm", NS_OPT_BOOL, "true", 0, 0, NULL, 0, GF,
     "BatchNorm between coupling transforms."},
    {"flow-linear-transform", NS_OPT_CHOICE, "lu", 0, 0, "lu|permutation|none", 0, GF,
     "Before each coupling: random permutation + LU linear layer, permutation only, or nothing."},

    {"lr", NS_OPT_DOUBLE, "0.001", 1e-12, 10, NULL, 0, GT, "AdamW learning rate."},
    {"weight-decay", NS_OPT_DOUBLE, "0.01", 0, 1e3, NULL, 0, GT,
     "AdamW decoupled weight decay."},
    {"batch-size", NS_OPT_INT, "1000", 2, BIG, NULL, 0, GT, "Training mini-batch size."},
    {"val-size", NS_OPT_DOUBLE, "0.1", 0, 0.9, NULL, 0, GT,
     "Fraction of the training points held out for validation and early stopping (0 = none)."},
    {"max-epochs", NS_OPT_INT, "500", 1, BIG, NULL, 0, GT, "Maximum epochs per training."},
    {"patience", NS_OPT_INT, "20", 0, BIG, NULL, 0, GT,
     "Stop when the validation loss has not improved for this many epochs."},
    {"clip-grad-norm", NS_OPT_DOUBLE, "5", 0, BIG, NULL, 0, GT,
     "Clip the global gradient L2 norm to this value (0 = off)."},
    {"training-precision", NS_OPT_CHOICE, "float32", 0, 0, "float32|float64", 0, GT,
     "Arithmetic of the training passes (forward and backward on each batch). float32 is "
     "what nessai's PyTorch flows use and about 1.6x faster at d = 8; the parameters, "
     "gradient sums, optimiser, validation and stored weights are float64 either way."},
    {"reset-weights", NS_OPT_INT, "0", 0, BIG, NULL, 0, GT,
     "Re-initialise the flow weights every k-th training (0 = never)."},
    {"reset-permutations", NS_OPT_INT, "0", 0, BIG, NULL, 0, GT,
     "Draw new permutations (LU back to identity) every k-th training (0 = never)."},
    {"reset-flow", NS_OPT_INT, "0", 0, BIG, NULL, 0, GT,
     "Rebuild the whole flow every k-th training (overrides the two above; 0 = never). With "
     "--importance-nested-sampler: a fresh flow every k-th level, the others start from a copy "
     "of the previous level's (default there 1, every level, as nessai; 0 = only the first)."},

    {"reparameterisations", NS_OPT_STRING, NULL, 0, 0, NULL, NS_OPT_ALLOW_NONE, GP,
     "Reparameterisations: \"x:zscore,y:inversion\", one name for all parameters, or a "
     "JSON object as nessai takes it, e.g. '{\"phase\": \"angle-2pi\", \"angle-pair\": "
     "[\"ra\", \"dec\"], \"zscore\": \"m_.*\"}'. Names: zscore, rescaletobounds (= "
     "default), offset, logit, inversion, inversion-duplicate, none, angle, angle-pi, "
     "angle-2pi, periodic, angle-sine, angle-cosine, angle-pair, to-cartesian, dequantise, "
     "log-rescale, zscore-gaussian-cdf, ... (docs/flow.md)."},
    {"flow-proposal", NS_OPT_CHOICE, "flow", 0, 0, "flow|gw", 0, GP,
     "gw: nessai's GW defaults for bilby's CBC parameter names (ra/dec pair, angles for "
     "phase, psi, phi_12, phi_jl, distance inversion, ...; docs/flow.md)."},
    {"fallback-reparameterisation", NS_OPT_CHOICE, "zscore", 0, 0,
     "zscore|rescaletobounds|default|offset|logit|inversion|inversion-duplicate|none", 0, GP,
     "Reparameterisation of every parameter not named in --reparameterisations."},
    {"truncation", NS_OPT_CHOICE, "latent-radius", 0, 0, "latent-radius|none", 0, GP,
     "Latent truncation rule: keep latent draws within a radius, or none."},
    {"radius-mode", NS_OPT_CHOICE, "constant-volume", 0, 0, "constant-volume|adaptive|fixed",
     0, GP, "How the latent radius is set (docs/algorithm.md §2.7)."},
    {"fixed-radius", NS_OPT_DOUBLE, NULL, 1e-9, BIG, NULL, NS_OPT_ALLOW_NONE, GP,
     "Radius for --radius-mode fixed."},
    {"volume-fraction", NS_OPT_DOUBLE, "0.95", 1e-9, 0.999999999, NULL, 0, GP,
     "Constant-volume mode: latent probability enclosed by the radius."},
    {"expansion-fraction", NS_OPT_DOUBLE, "4", 0, BIG, NULL, NS_OPT_ALLOW_NONE, GP,
     "Sets fuzz = (1 + expansion_fraction)^(1/d') (none: use --fuzz)."},
    {"fuzz", NS_OPT_DOUBLE, "1", 1e-9, BIG, NULL, 0, GP,
     "Radius multiplier when --expansion-fraction is none."},
    {"max-radius", NS_OPT_DOUBLE, "50", 1e-9, BIG, NULL, NS_OPT_ALLOW_NONE, GP,
     "Upper clip of the adaptive/fixed radius (none = no clip)."},
    {"min-radius", NS_OPT_DOUBLE, NULL, 0, BIG, NULL, NS_OPT_ALLOW_NONE, GP,
     "Lower clip of the adaptive/fixed radius (none = no clip)."},
    {"compute-radius-with-all", NS_OPT_BOOL, "false", 0, 0, NULL, 0, GP,
     "Adaptive mode: radius from all training points instead of the worst point."},
    {"min-log-q", NS_OPT_BOOL, "false", 0, 0, NULL, 0, GP,
     "Keep only pool candidates with log q above the training points' minimum."},
    {"likelihood-threshold", NS_OPT_BOOL, "false", 0, 0, NULL, 0, GP,
     "Evaluate each latent batch and keep only points above the worst live likelihood."},
    {"latent-temperature", NS_OPT_DOUBLE, NULL, 1e-9, BIG, NULL, NS_OPT_ALLOW_NONE, GP,
     "Scale latent draws by sqrt(T) (none = 1)."},
    {"poolsize", NS_OPT_INT, NULL, 1, BIG, NULL, NS_OPT_ALLOW_NONE, GP,
     "Base pool size (none = nlive)."},
    {"drawsize", NS_OPT_INT, NULL, 1, BIG, NULL, NS_OPT_ALLOW_NONE, GP,
     "Latent draws per population batch (none = base pool size)."},
    {"update-poolsize", NS_OPT_BOOL, "true", 0, 0, NULL, 0, GP,
     "Scale the pool by 1/acceptance, clipped to [1, max-poolsize-scale]."},
    {"max-poolsize-scale", NS_OPT_DOUBLE, "10", 1, BIG, NULL, 0, GP,
     "Largest pool scale factor."},
    {"population-precision", NS_OPT_CHOICE, "float32", 0, 0, "float32|float64", 0, GP,
     "Arithmetic of the flow's inverse pass during pool population (float32 is 1.5-1.9x "
     "faster at d >= 8, like nessai's float32 flows)."},
    {"max-population-draws", NS_OPT_INT, "1000000", 1, BIG, NULL, 0, GP,
     "Stop a population after this many latent draws."},
};

const size_t ns_flow_options_count = sizeof ns_flow_options / sizeof ns_flow_options[0];
