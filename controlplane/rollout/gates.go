package rollout

import (
	"fmt"
	"time"

	"github.com/meshguard/meshguard/controlplane/model"
	"github.com/meshguard/meshguard/internal/contract"
)

// Counts are the compared requests of one rollout step, summed over every
// authorizer: how the candidate decided each request against the current
// set, and how many it decided (the canary's share).
type Counts struct {
	Requests          uint64 `json:"requests"`
	Same              uint64 `json:"same"`
	AllowToDeny       uint64 `json:"allow_to_deny"`
	DenyToAllow       uint64 `json:"deny_to_allow"`
	Errors            uint64 `json:"errors"`
	CandidateEnforced uint64 `json:"candidate_enforced"`
}

func (c *Counts) add(o Counts) {
	c.Requests += o.Requests
	c.Same += o.Same
	c.AllowToDeny += o.AllowToDeny
	c.DenyToAllow += o.DenyToAllow
	c.Errors += o.Errors
	c.CandidateEnforced += o.CandidateEnforced
}

// Verdict results.
const (
	VerdictNone        = "none"        // the rollout has no gates: it moves by command only
	VerdictWait        = "wait"        // not enough requests or time in the stage yet
	VerdictPass        = "pass"        // every gate holds: the stage may be promoted
	VerdictFail        = "fail"        // a gate failed: the rollout is rolled back
	VerdictUnavailable = "unavailable" // the counts could not be read: the rollout is paused
)

// Verdict is the gates' judgement of a step, with the reason in words.
type Verdict struct {
	Result string `json:"result"`
	Reason string `json:"reason,omitempty"`
}

// Judge decides whether a step may be left, from its counts and the time
// spent in it. It is a pure function.
//
// A gate fails as soon as its failure is certain: more errors than
// allowed, or more changed decisions than the largest share allows of
// max(requests, minRequests) — requests still to come cannot bring that
// share back under the limit before minRequests is reached, so the
// rollout need not wait to be rolled back. A step passes once it has seen
// minRequests requests and spent minDwell, with every gate holding.
func Judge(g *model.Gates, c Counts, dwell time.Duration) Verdict {
	if g == nil {
		return Verdict{Result: VerdictNone}
	}
	if c.Errors > g.MaxErrors {
		return Verdict{VerdictFail, fmt.Sprintf("%d of %d requests failed to evaluate in the candidate (at most %d allowed)", c.Errors, c.Requests, g.MaxErrors)}
	}
	base := max(c.Requests, g.MinRequests)
	for _, s := range []struct {
		what    string
		n       uint64
		maximum model.Percent
	}{{"allow→deny", c.AllowToDeny, g.MaxAllowToDeny}, {"deny→allow", c.DenyToAllow, g.MaxDenyToAllow}} {
		if s.maximum == "" {
			continue // not gated
		}
		bp, _ := s.maximum.BasisPoints()
		if s.n*contract.CanaryBuckets > uint64(bp)*base {
			return Verdict{VerdictFail, fmt.Sprintf("%d of %d requests changed %s (%s > %s%%)", s.n, c.Requests, s.what, share(s.n, base), contract.FormatPercent(bp))}
		}
	}
	if c.Requests < g.MinRequests {
		return Verdict{VerdictWait, fmt.Sprintf("%d of %d requests seen", c.Requests, g.MinRequests)}
	}
	if d := g.MinDwell.Duration; dwell < d {
		return Verdict{VerdictWait, fmt.Sprintf("in stage for %s of %s", dwell.Truncate(time.Second), d)}
	}
	return Verdict{VerdictPass, fmt.Sprintf("%d requests: %d allow→deny, %d deny→allow, %d errors", c.Requests, c.AllowToDeny, c.DenyToAllow, c.Errors)}
}

// share formats n/of as a percentage with two decimals.
func share(n, of uint64) string {
	if of == 0 {
		return "0%"
	}
	return fmt.Sprintf("%.2f%%", float64(n)*100/float64(of))
}
