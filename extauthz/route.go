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
		bp, ok := ParsePercent(canary)
		if !ok {
			return fmt.Errorf("%s %q: want a percentage from 0 to 100 with at most two decimals", ExtCanary, canary)
		}
		r.Canary = bp
	default:
		return fmt.Errorf("%s %q: want %s or %s with %s", ExtStage, r.Stage, contract.StageShadow, contract.StageCanary, ExtCandidate)
	}
	return nil
}

// ParsePercent reads a percentage from 0 to 100 with at most two decimals
// ("10", "2.5", "0.25") as basis points. It is read for every request of a
// canary route, so it does not go through strconv's float parsing (which
// would also accept "1e1", "NaN" and rounding).
func ParsePercent(s string) (int, bool) {
	whole, frac := s, ""
	for i := 0; i < len(s); i++ {
		if s[i] == '.' {
			whole, frac = s[:i], s[i+1:]
			if frac == "" {
				return 0, false
			}
			break
		}
	}
	if whole == "" || len(whole) > 3 || len(frac) > 2 {
		return 0, false
	}
	n := 0
	for _, part := range []string{whole, frac} {
		for i := 0; i < len(part); i++ {
			c := part[i]
			if c < '0' || c > '9' {
				return 0, false
			}
			n = n*10 + int(c-'0')
		}
	}
	for range 2 - len(frac) {
		n *= 10
	}
	return n, n <= 10000
}

// FormatPercent writes basis points as ParsePercent reads them.
func FormatPercent(bp int) string {
	s := fmt.Sprintf("%d.%02d", bp/100, bp%100)
	switch {
	case bp%100 == 0:
		return s[:len(s)-3]
	case bp%10 == 0:
		return s[:len(s)-1]
	}
	return s
}
