/*
 * flow_proposal.h - nessai's FlowProposal (docs/algorithm.md §2.3-§2.7, §3, §4):
 * reparameterise the live points, train the RealNVP flow on them, fill a
 * pool by rejection sampling from the (truncated) flow and hand its points
 * to the sampler one at a time.
 *
 * Options: ns_flow_options is a fragment of the coordinator's option table
 * (flow, training and proposal settings, nessai's names in kebab case);
 * main.c appends it to its own table. The factory also reads the
 * coordinator's "threads" (training threads) and "output" options when
 * they are in the table.
 */
#ifndef NS_FLOW_PROPOSAL_H
#define NS_FLOW_PROPOSAL_H

#include <stddef.h>

#include "nessai/options.h"
#include "proposal.h"

#ifdef __cplusplus
extern "C" {
#endif

extern const ns_option_t ns_flow_options[];
extern const size_t ns_flow_options_count;

/* Factory (ns_proposal_factory_fn): a FlowProposal for env's model from the
 * effective configuration. Validates the reparameterisation specification
 * and verifies the rescaling round trip on 1000 prior draws (docs/algorithm.md §3).
 * On success *out is owned by the caller (ns_proposal_destroy); on failure
 * returns NS_ERR_INVAL (bad option, logged) or another error. */
int ns_flow_proposal_new(const ns_config_t *cfg, const ns_proposal_env_t *env,
                         ns_proposal_t **out);

#ifdef __cplusplus
}
#endif
#endif
