/* flow_proposal.c - FlowProposal (SPEC.md §2.3-§2.7). */
#include "flow_proposal.h"
#include "nessai/error.h"
#include "nessai/log.h"

int ns_flow_proposal_new(const ns_config_t *cfg, const ns_proposal_env_t *env,
                         ns_proposal_t **out)
{
    (void)cfg;
    (void)env;
    *out = NULL;
    ns_error("flow", "the flow proposal is not available in this build yet");
    return NS_ERR_STATE;
}
