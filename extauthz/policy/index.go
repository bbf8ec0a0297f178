package policy

import (
	"iter"

	"github.com/cedar-policy/cedar-go"
	xast "github.com/cedar-policy/cedar-go/x/exp/ast"
)

// minIndexed is the set size from which requests evaluate only candidate
// policies: below it, walking the whole set costs less than the lookups.
const minIndexed = 32

// scopeKey buckets a policy by the action and resource its scope pins with
// `==`; a zero UID means the scope allows any.
type scopeKey struct{ action, resource cedar.EntityUID }

// scopeIndex finds the policies a request can match. cedar-go evaluates a
// policy's scope before its conditions and stops at the first false, so a
// policy whose `action ==` or `resource ==` differs from the request's can
// neither match nor fail: leaving it out changes no decision, determining
// policy or error. Other scopes (`in`, `is`) depend on entities and are
// candidates for every request.
type scopeIndex map[scopeKey]policyList

func newScopeIndex(list policyList) scopeIndex {
	if len(list) < minIndexed {
		return nil
	}
	ix := scopeIndex{}
	for _, p := range list {
		var k scopeKey
		a := (*xast.Policy)(p.policy.AST())
		if eq, ok := a.Action.(xast.ScopeTypeEq); ok {
			k.action = eq.Entity
		}
		if eq, ok := a.Resource.(xast.ScopeTypeEq); ok {
			k.resource = eq.Entity
		}
		ix[k] = append(ix[k], p)
	}
	return ix
}

// candidates are the policies req can match, or all of them.
func (s *Set) candidates(req cedar.Request) cedar.PolicyIterator {
	var zero cedar.EntityUID
	if s.index == nil || req.Action == zero || req.Resource == zero {
		return s.policies
	}
	return candidateLists{
		s.index[scopeKey{req.Action, req.Resource}],
		s.index[scopeKey{req.Action, zero}],
		s.index[scopeKey{zero, req.Resource}],
		s.index[scopeKey{zero, zero}],
	}
}

// candidateLists are disjoint buckets of a scopeIndex.
type candidateLists [4]policyList

// All implements cedar.PolicyIterator.
func (c candidateLists) All() iter.Seq2[cedar.PolicyID, *cedar.Policy] {
	return func(yield func(cedar.PolicyID, *cedar.Policy) bool) {
		for _, l := range c {
			for _, p := range l {
				if !yield(p.id, p.policy) {
					return
				}
			}
		}
	}
}
