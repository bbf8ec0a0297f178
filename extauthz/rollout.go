package extauthz

import (
	"github.com/meshguard/meshguard/extauthz/decisionlog"
	"github.com/meshguard/meshguard/extauthz/policy"
	"github.com/meshguard/meshguard/internal/contract"
)

// Rollout outcomes: how a rollout route's candidate set decided a request
// compared with its current set (the outcome label of
// meshguard_authz_rollout_decisions_total).
const (
	OutcomeSame        = "same"          // both allow or both deny
	OutcomeAllowToDeny = "allow_to_deny" // the current set allows, the candidate denies
	OutcomeDenyToAllow = "deny_to_allow" // the current set denies, the candidate allows
	OutcomeError       = "error"         // the candidate failed to evaluate, or is not loaded
)

// outcomes indexes the rollout counters.
var outcomes = [...]string{OutcomeSame, OutcomeAllowToDeny, OutcomeDenyToAllow, OutcomeError}

const (
	outcomeSame = iota
	outcomeAllowToDeny
	outcomeDenyToAllow
	outcomeError
)

// RolloutOutcome is what both sets of a rollout route decided, and which
// one was enforced.
type RolloutOutcome struct {
	Candidate string
	Stage     string
	Canary    int // basis points, at contract.StageCanary
	Revision  string
	// CandidateEnforced: the request fell in the canary's share.
	CandidateEnforced bool
	CurrentAllow      bool
	CandidateAllow    bool
	// CandidatePolicies determined the candidate's decision.
	CandidatePolicies []string
	// CandidateErr is why the candidate could not decide (not loaded), or
	// the count of its policies that failed to evaluate.
	CandidateErr    string
	CandidateErrors int
	outcome         int
	logged          decisionlog.Rollout // the decision log's copy (logEntry)
}

// Outcome is the rollout outcome label of the request.
func (r *RolloutOutcome) Outcome() string { return outcomes[r.outcome] }

// inCanary reports whether the candidate is enforced for this caller of
// this route: a stable choice by principal and route (contract.CanaryBucket).
func inCanary(r *Route, principal string) bool {
	return r.Stage == contract.StageCanary && r.Canary > 0 &&
		(r.Canary >= contract.CanaryBuckets || contract.CanaryBucket(r.ID, principal) < r.Canary)
}

// compare classifies the candidate's result against the current set's.
// An allow that a failing forbid turned into a denial counts as a denial,
// as it is enforced; any evaluation error of the candidate is an error,
// whatever it decided, since an erroring policy may be hiding a decision.
func compare(current, candidate policy.Result, candidateLoaded bool) int {
	switch {
	case !candidateLoaded || len(candidate.Errors) > 0:
		return outcomeError
	case current.Allow && !candidate.Allow:
		return outcomeAllowToDeny
	case !current.Allow && candidate.Allow:
		return outcomeDenyToAllow
	}
	return outcomeSame
}
