package policy

import (
	"github.com/cedar-policy/cedar-go"

	"github.com/meshguard/meshguard/internal/memo"
)

// Results memoizes evaluation results within one load of a Store. A Result
// is a pure function of the set, the entities and the Cedar request (Cedar
// has no clock and no I/O), so a result computed under one load serves any
// request that builds the same Cedar request under it; every Reload starts
// an empty Results, so no result outlives the policies or entities it was
// computed with. The caller supplies the key: a byte string that
// determines the set and the request (extauthz builds it from exactly the
// inputs its Cedar request is built from).
//
// It is bounded: when full it starts over, which keeps its memory fixed
// whatever callers send. A nil *Results caches nothing.
type Results struct{ m *memo.Map[string, Result] }

// NewResults returns a cache of up to max results; nil when max < 1.
func NewResults(max int) *Results {
	if max < 1 {
		return nil
	}
	return &Results{memo.New[string, Result](max)}
}

// Get returns the result stored under key.
func (r *Results) Get(key []byte) (Result, bool) {
	if r == nil {
		return Result{}, false
	}
	return memo.GetBytes(r.m, key)
}

// Put stores res under key. res's slices are shared with every later Get:
// nobody may modify them.
func (r *Results) Put(key []byte, res Result) {
	if r != nil {
		r.m.Put(string(key), res)
	}
}

// Len is the number of results held.
func (r *Results) Len() int {
	if r == nil {
		return 0
	}
	return r.m.Len()
}

// View is one policy set with the entities and the result cache of the
// same load of the Store.
type View struct {
	Set      *Set
	Entities cedar.EntityMap
	Results  *Results
	sets     map[string]*Set // the load's sets, for Other
}

// Other returns another set of the same load: a shadow candidate evaluated
// beside Set sees the entities Set did.
func (v View) Other(name string) (*Set, bool) {
	set, ok := v.sets[name]
	return set, ok
}
