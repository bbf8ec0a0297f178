package policy

import (
	"slices"

	"github.com/cedar-policy/cedar-go"
)

// Result is the outcome of evaluating one request against one set.
type Result struct {
	Allow bool
	// Determining lists the policies that decided, sorted: the permits that
	// allowed, or the forbids that denied. Empty on a default deny.
	Determining []string
	// Errors lists the policies whose evaluation failed, sorted by policy ID.
	Errors []EvalError
	// ForbidErrored is true when a forbid policy failed to evaluate. Cedar
	// skips erroring policies, so a broken forbid would otherwise let a permit
	// through; meshguard denies instead.
	ForbidErrored bool
}

// EvalError names a policy that failed to evaluate and why.
type EvalError struct {
	PolicyID string `json:"policy"`
	Message  string `json:"message"`
}

// Evaluate authorizes req against the set. It is safe for concurrent use.
func (s *Set) Evaluate(entities cedar.EntityGetter, req cedar.Request) Result {
	decision, diag := cedar.Authorize(s.candidates(req), entities, req)
	res := Result{Allow: decision == cedar.Allow}
	if len(diag.Reasons) > 0 {
		res.Determining = make([]string, len(diag.Reasons))
		for i, r := range diag.Reasons {
			res.Determining[i] = string(r.PolicyID)
		}
		slices.Sort(res.Determining)
	}
	if len(diag.Errors) > 0 {
		res.Errors = make([]EvalError, len(diag.Errors))
		for i, e := range diag.Errors {
			res.Errors[i] = EvalError{PolicyID: string(e.PolicyID), Message: e.Message}
			if s.forbids[e.PolicyID] {
				res.ForbidErrored = true
			}
		}
		slices.SortFunc(res.Errors, func(a, b EvalError) int {
			if a.PolicyID < b.PolicyID {
				return -1
			}
			if a.PolicyID > b.PolicyID {
				return 1
			}
			return 0
		})
	}
	if res.ForbidErrored && res.Allow {
		res.Allow = false
		res.Determining = nil
		for _, e := range res.Errors {
			if s.forbids[cedar.PolicyID(e.PolicyID)] {
				res.Determining = append(res.Determining, e.PolicyID)
			}
		}
	}
	return res
}
