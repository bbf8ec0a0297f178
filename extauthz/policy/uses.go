package policy

import (
	"slices"
	"strconv"
	"strings"

	"github.com/cedar-policy/cedar-go"
	xast "github.com/cedar-policy/cedar-go/x/exp/ast"
)

// Uses is the part of a value that policies can observe: the whole value
// (Full), or only some attributes, each with what is observed of it.
//
// Cedar has no way to list a record's keys: a policy observes a record
// attribute only by naming it (`.name`, `["name"]`, `has name`), or the
// whole record by using it as a value (`==`, `contains`, a function
// argument). So attributes that no policy of a set names cannot change
// that set's decisions or errors, and the authorizer need not build them.
// A nil *Uses observes nothing. A Uses is immutable once its set is built.
type Uses struct {
	all  bool
	keys map[string]*Uses
}

// allUses is shared by every fully observed value.
var allUses = &Uses{all: true}

// AllUses observes everything: the context to build when it is not known
// which policies will see it.
func AllUses() *Uses { return allUses }

// Full reports whether the whole value is observed.
func (u *Uses) Full() bool { return u != nil && u.all }

// None reports whether nothing of the value is observed.
func (u *Uses) None() bool { return u == nil || (!u.all && len(u.keys) == 0) }

// String renders u as a sorted list of paths, "*" for the whole value.
func (u *Uses) String() string {
	if u.Full() {
		return "*"
	}
	var paths []string
	var walk func(prefix string, u *Uses)
	walk = func(prefix string, u *Uses) {
		for k, sub := range u.keys {
			p := prefix + strconv.Quote(k)
			if sub.all {
				paths = append(paths, p)
				continue
			}
			walk(p+".", sub)
		}
	}
	if u != nil {
		walk("", u)
	}
	slices.Sort(paths)
	return strings.Join(paths, " ")
}

// Sub is what is observed of attribute key: everything when the whole
// value is, nil when key is never named.
func (u *Uses) Sub(key string) *Uses {
	switch {
	case u == nil:
		return nil
	case u.all:
		return allUses
	default:
		return u.keys[key]
	}
}

// Union is what a or b observes: the context that serves both sets'
// policies. Neither is modified; the result may be one of them.
func Union(a, b *Uses) *Uses {
	switch {
	case a.None():
		return b
	case b.None():
		return a
	case a.all:
		return a
	case b.all:
		return b
	}
	u := &Uses{keys: make(map[string]*Uses, len(a.keys)+len(b.keys))}
	for k, sub := range a.keys {
		u.keys[k] = Union(sub, b.keys[k])
	}
	for k, sub := range b.keys {
		if _, ok := a.keys[k]; !ok {
			u.keys[k] = sub
		}
	}
	return u
}

// add marks path as observed, with everything under its last element.
func (u *Uses) add(path []string) {
	for _, k := range path {
		if u.all {
			return
		}
		if u.keys == nil {
			u.keys = map[string]*Uses{}
		}
		next := u.keys[k]
		if next == nil {
			next = &Uses{}
			u.keys[k] = next
		}
		u = next
	}
	u.all, u.keys = true, nil
}

// contextUses is what the policies of ps observe of the request context.
func contextUses(ps *cedar.PolicySet) *Uses {
	u := &Uses{}
	for _, p := range ps.All() {
		for _, c := range (*xast.Policy)(p.AST()).Conditions {
			addContextPaths(u, c.Body)
			if u.all {
				return u
			}
		}
	}
	return u
}

// addContextPaths adds to u every path below the context variable that
// body observes.
func addContextPaths(u *Uses, body xast.IsNode) {
	xast.Inspect(xast.NewNode(body), func(n xast.IsNode) bool {
		var arg xast.IsNode
		var key string
		switch t := n.(type) {
		case xast.NodeTypeAccess:
			arg, key = t.Arg, string(t.Value)
		case xast.NodeTypeHas:
			arg, key = t.Arg, string(t.Value)
		case xast.NodeTypeVariable:
			// context used as a value, not through a chain of attributes.
			if t.Name == "context" {
				u.add(nil)
			}
			return false
		default:
			return true
		}
		path, ok := contextPath(arg)
		if !ok {
			return true // not rooted at context: look inside
		}
		u.add(append(path, key))
		return false
	})
}

// contextPath returns the attribute names of a chain context.a.b…, or false
// when n is not such a chain.
func contextPath(n xast.IsNode) ([]string, bool) {
	var rev []string
	for {
		switch t := n.(type) {
		case xast.NodeTypeAccess:
			rev = append(rev, string(t.Value))
			n = t.Arg
		case xast.NodeTypeVariable:
			if t.Name != "context" {
				return nil, false
			}
			path := make([]string, len(rev))
			for i, k := range rev {
				path[len(rev)-1-i] = k
			}
			return path, true
		default:
			return nil, false
		}
	}
}
