package extauthz

import (
	"errors"
	"fmt"

	"github.com/meshguard/meshguard/internal/contract"
)

// Context extension keys and modes, from the contract every part shares
// (internal/contract; docs/policy-model.md).
const (
	ExtRoute     = contract.ExtRoute
	ExtService   = contract.ExtService
	ExtPolicy    = contract.ExtPolicy
	ExtMode      = contract.ExtMode
	ExtShadow    = contract.ExtShadow
	ExtAction    = contract.ExtAction
	ExtCandidate = contract.ExtCandidate
	ExtStage     = contract.ExtStage
	ExtCanary    = contract.ExtCanary
	ExtRollout   = contract.ExtRollout

	ModeEnforce = contract.ModeEnforce
	ModeShadow  = contract.ModeShadow
)

// Route is the per-route authorization setting carried by context extensions.
type Route struct {
	ID        string
	Service   string
	PolicySet string
	Mode      string
	ShadowSet string
	Action    string

	// Candidate is the candidate set of a rollout on the route, at Stage
	// (contract.StageShadow or StageCanary); empty without a rollout.
	Candidate string
	Stage     string
	// Canary is the candidate's share of callers at StageCanary, in basis
	// points (1/100 of a percent): 0 to 10000.
	Canary int
	// Rollout identifies the rollout step, for the rollout counts.
	Rollout string
}

// maxExtensionLen bounds each meshguard.* value. They come from the control
// plane, not clients, but they end up in logs and metric labels.
const maxExtensionLen = 256

// RouteFromExtensions reads the route setting. A missing service, an
// unknown mode or stage, a malformed set name or percentage, or settings
// that contradict each other are errors, which deny: the control plane
// never sends them, so they mean a broken or forged configuration.
func RouteFromExtensions(ext map[string]string) (Route, error) {
	r := Route{
		ID:        ext[ExtRoute],
		Service:   ext[ExtService],
		PolicySet: ext[ExtPolicy],
		Mode:      ext[ExtMode],
		ShadowSet: ext[ExtShadow],
		Action:    ext[ExtAction],
		Candidate: ext[ExtCandidate],
		Stage:     ext[ExtStage],
		Rollout:   ext[ExtRollout],
	}
	canary, hasCanary := ext[ExtCanary]
	for _, v := range []string{r.ID, r.Service, r.PolicySet, r.Mode, r.ShadowSet, r.Action, r.Candidate, r.Stage, r.Rollout, canary} {
		if len(v) > maxExtensionLen {
			return r, fmt.Errorf("context extension value over %d bytes", maxExtensionLen)
		}
	}
	if r.Service == "" {
		return r, errors.New("context extension " + ExtService + " is missing")
	}
	if r.PolicySet == "" {
		r.PolicySet = contract.DefaultSet
	}
	if !contract.ValidSetName(r.PolicySet) {
		return r, fmt.Errorf("%s %q is not a valid policy set name", ExtPolicy, r.PolicySet)
	}
	if r.ShadowSet != "" && !contract.ValidSetName(r.ShadowSet) {
		return r, fmt.Errorf("%s %q is not a valid policy set name", ExtShadow, r.ShadowSet)
	}
	switch r.Mode {
	case "":
		r.Mode = ModeEnforce
	case ModeEnforce, ModeShadow:
	default:
		return r, fmt.Errorf("%s %q: want enforce or shadow", ExtMode, r.Mode)
	}
	return r, r.readRollout(canary, hasCanary)
}

// readRollout checks the rollout keys: all or nothing, and consistent.
func (r *Route) readRollout(canary string, hasCanary bool) error {
	if r.Candidate == "" {
		if r.Stage != "" || hasCanary || r.Rollout != "" {
			return fmt.Errorf("%s, %s and %s need %s", ExtStage, ExtCanary, ExtRollout, ExtCandidate)
		}
		return nil
	}
	if !contract.ValidSetName(r.Candidate) {
		return fmt.Errorf("%s %q is not a valid policy set name", ExtCandidate, r.Candidate)
	}
	if r.ShadowSet != "" {
		return fmt.Errorf("%s and %s exclude each other: a rollout already evaluates its candidate", ExtShadow, ExtCandidate)
	}
	switch r.Stage {
	case contract.StageShadow:
		if hasCanary {
			return fmt.Errorf("%s is only for stage %s", ExtCanary, contract.StageCanary)
		}
	case contract.StageCanary:
		bp, ok := contract.ParsePercent(canary)
		if !ok {
			return fmt.Errorf("%s %q: want a percentage from 0 to 100 with at most two decimals", ExtCanary, canary)
		}
		r.Canary = bp
	default:
		return fmt.Errorf("%s %q: want %s or %s with %s", ExtStage, r.Stage, contract.StageShadow, contract.StageCanary, ExtCandidate)
	}
	return nil
}
