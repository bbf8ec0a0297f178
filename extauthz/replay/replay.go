// Package replay re-decides the requests of a decision log against other
// policies: what a candidate policy set would have decided of real
// traffic, before it is rolled out.
//
// The log must record requests (decision_log.record_request): each entry
// then carries the Cedar request the authorizer evaluated. Replay
// evaluates it as the authorizer does — the recorded principal entity
// merged with the static entities, then the set — and compares the result
// with the decision the authorizer enforced from policies (would_allow in
// shadow mode). Replaying a log against the very policies that produced
// it changes nothing.
package replay

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/cedar-policy/cedar-go"

	"github.com/meshguard/meshguard/extauthz/decisionlog"
	"github.com/meshguard/meshguard/extauthz/policy"
)

// Outcomes of one replayed request.
const (
	Same        = "same"
	AllowToDeny = "allow_to_deny"
	DenyToAllow = "deny_to_allow"
	Error       = "error" // the set failed to evaluate a policy for it (and had not when recorded)
)

// Summary counts a replay.
type Summary struct {
	// Entries read; Skipped are those without a recorded request (denied
	// before any policy was evaluated: a refused token, a bad route) or
	// for a set the policies lack.
	Entries     int `json:"entries"`
	Replayed    int `json:"replayed"`
	Skipped     int `json:"skipped"`
	Same        int `json:"same"`
	AllowToDeny int `json:"allow_to_deny"`
	DenyToAllow int `json:"deny_to_allow"`
	Errors      int `json:"errors"`
}

// Changed reports whether any replayed decision differs.
func (s Summary) Changed() bool { return s.AllowToDeny+s.DenyToAllow+s.Errors > 0 }

// Change is one request decided differently.
type Change struct {
	Line       int    `json:"line"`
	DecisionID string `json:"decision_id"`
	Route      string `json:"route,omitempty"`
	Set        string `json:"policy_set"`
	Principal  string `json:"principal"`
	Action     string `json:"action"`
	Method     string `json:"method,omitempty"`
	Path       string `json:"path,omitempty"`
	Outcome    string `json:"outcome"`
	// Was is the recorded decision and the policies that determined it;
	// Now the replayed one.
	Was         bool               `json:"was_allowed"`
	WasPolicies []string           `json:"was_policies,omitempty"`
	Now         bool               `json:"now_allowed"`
	NowPolicies []string           `json:"now_policies,omitempty"`
	Errors      []policy.EvalError `json:"errors,omitempty"`
}

// Options select what a replay decides with.
type Options struct {
	// Set replays every request against this set; empty: against the set
	// that decided it when recorded (the route's, or a rollout's candidate
	// for a caller in the canary's share).
	Set string
	// Skipped, when set, is called for each entry not replayed, with why.
	Skipped func(line int, why string)
}

// MaxLine bounds one log line (a recorded request with a large context).
const MaxLine = 4 << 20

// Replay re-decides every recorded request read from log against the
// policies of store (loaded, with its entities). It returns an error only
// when the log cannot be read: a line that is not a decision-log entry.
func Replay(log io.Reader, store *policy.Store, opts Options) (Summary, []Change, error) {
	var sum Summary
	var changes []Change
	sc := bufio.NewScanner(log)
	sc.Buffer(make([]byte, 64<<10), MaxLine)
	line := 0
	skip := func(why string) {
		sum.Skipped++
		if opts.Skipped != nil {
			opts.Skipped(line, why)
		}
	}
	for sc.Scan() {
		line++
		if len(sc.Bytes()) == 0 {
			continue
		}
		var e decisionlog.Entry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return sum, changes, fmt.Errorf("line %d: not a decision-log entry: %w", line, err)
		}
		sum.Entries++
		if e.Request == nil {
			skip("no recorded request (decided before any policy, or the log did not record requests)")
			continue
		}
		set := decidingSet(&e)
		if opts.Set != "" {
			set = opts.Set
		}
		view, ok := store.Lookup(set)
		if !ok {
			skip(fmt.Sprintf("policy set %q is not among the policies", set))
			continue
		}
		res := evaluate(view, e.Request)
		sum.Replayed++
		was := recordedAllow(&e)
		outcome := compare(&e, set, was, res)
		switch outcome {
		case Same:
			sum.Same++
			continue
		case AllowToDeny:
			sum.AllowToDeny++
		case DenyToAllow:
			sum.DenyToAllow++
		case Error:
			sum.Errors++
		}
		changes = append(changes, Change{Line: line, DecisionID: e.DecisionID, Route: e.Route, Set: set,
			Principal: e.Principal, Action: e.Action, Method: e.Method, Path: e.Path, Outcome: outcome,
			Was: was, WasPolicies: recordedPolicies(&e), Now: res.Allow, NowPolicies: res.Determining, Errors: res.Errors})
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return sum, changes, fmt.Errorf("line %d: longer than %d bytes", line+1, MaxLine)
		}
		return sum, changes, err
	}
	return sum, changes, nil
}

// decidingSet is the set whose decision the authorizer enforced.
func decidingSet(e *decisionlog.Entry) string {
	if e.Rollout != nil && e.Rollout.Enforced != "" {
		return e.Rollout.Enforced
	}
	return e.PolicySet
}

// recordedAllow is what the policies decided (in shadow mode the request
// was let through whatever they said).
func recordedAllow(e *decisionlog.Entry) bool {
	if e.WouldAllow != nil {
		return *e.WouldAllow
	}
	return e.Allowed
}

func recordedPolicies(e *decisionlog.Entry) []string {
	if e.Rollout != nil && e.Rollout.Enforced == e.Rollout.Candidate {
		return e.Rollout.CandidatePolicies
	}
	return e.Policies
}

// evaluate decides a recorded request as the authorizer does: the
// principal as the request made it, merged with the static entities.
func evaluate(v policy.View, r *decisionlog.Request) policy.Result {
	p := policy.Merge(r.Principal, v.Entities)
	req := cedar.Request{Principal: r.Principal.UID, Action: cedar.EntityUID(r.Action), Resource: cedar.EntityUID(r.Resource), Context: r.Context}
	return v.Set.Evaluate(policy.Overlay{Static: v.Entities, Extra: &p}, req)
}

// compare classifies a replayed result. New evaluation errors are an
// outcome of their own, whatever the decision: a failing policy may hide
// one. Errors the recording had too (same set) are not new.
func compare(e *decisionlog.Entry, set string, was bool, res policy.Result) string {
	if len(res.Errors) > 0 && !(set == decidingSet(e) && sameErrors(e.Errors, res.Errors)) {
		return Error
	}
	switch {
	case was && !res.Allow:
		return AllowToDeny
	case !was && res.Allow:
		return DenyToAllow
	}
	return Same
}

func sameErrors(recorded []decisionlog.PolicyError, now []policy.EvalError) bool {
	a := make([]string, len(recorded))
	for i, e := range recorded {
		a[i] = e.Policy
	}
	b := make([]string, len(now))
	for i, e := range now {
		b[i] = e.PolicyID
	}
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}
