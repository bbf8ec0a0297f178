package policy

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/cedar-policy/cedar-go"
)

// Evaluating only the candidates the scope index picks must give what
// evaluating the whole set gives: decision, determining policies and
// errors, for random sets mixing every kind of scope with conditions that
// can fail.
func TestScopeIndexDecidesLikeTheWholeSet(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	actions := []string{"GET", "POST", "DELETE"}
	services := []string{"orders", "payments", "frontend"}
	pick := func(xs []string) string { return xs[rng.IntN(len(xs))] }
	scope := func(kind, typ string, ids []string) string {
		switch rng.IntN(5) {
		case 0:
			return kind
		case 1:
			return fmt.Sprintf(`%s == %s::"%s"`, kind, typ, pick(ids))
		case 2:
			if kind == "action" {
				return fmt.Sprintf(`action in [Action::"%s", Action::"%s"]`, pick(ids), pick(ids))
			}
			return fmt.Sprintf(`%s is %s`, kind, typ)
		case 3: // through the entity hierarchy: "all" is every entity's parent
			return fmt.Sprintf(`%s in %s::"%s"`, kind, typ, pick(append([]string{"all"}, ids...)))
		default:
			return fmt.Sprintf(`%s == %s::"%s"`, kind, typ, pick(ids))
		}
	}
	conditions := []string{
		``,
		` when { context.n > 2 }`, // fails when n is a string
		` when { context.path like "/a*" }`,
		` unless { context has missing && context.missing }`,
		` when { context.missing == 1 }`, // always fails
	}
	for round := range 20 {
		var src strings.Builder
		for i := range minIndexed + rng.IntN(40) {
			effect := "permit"
			if rng.IntN(5) == 0 {
				effect = "forbid"
			}
			fmt.Fprintf(&src, "@id(\"p%d\") %s (principal, %s, %s)%s;\n",
				i, effect, scope("action", "Action", actions), scope("resource", "Service", services), conditions[rng.IntN(len(conditions))])
		}
		set, err := ParseSet("s", map[string]string{"p.cedar": src.String()})
		if err != nil {
			t.Fatal(err)
		}
		if set.index == nil {
			t.Fatalf("round %d: a set of %d policies is not indexed", round, set.Len())
		}
		whole := *set
		whole.index = nil
		ents := cedar.EntityMap{}
		for _, e := range []struct {
			typ string
			ids []string
		}{{"Action", actions}, {"Service", services}} {
			all := cedar.NewEntityUID(cedar.EntityType(e.typ), "all")
			for _, id := range e.ids {
				uid := cedar.NewEntityUID(cedar.EntityType(e.typ), cedar.String(id))
				ents[uid] = cedar.Entity{UID: uid, Parents: cedar.NewEntityUIDSet(all)}
			}
		}
		for range 50 {
			ctx := cedar.RecordMap{"path": cedar.String(pick([]string{"/a/1", "/b"}))}
			if rng.IntN(2) == 0 {
				ctx["n"] = cedar.Long(rng.IntN(5))
			} else {
				ctx["n"] = cedar.String("x")
			}
			req := cedar.Request{
				Principal: cedar.NewEntityUID("User", "alice"),
				Action:    cedar.NewEntityUID("Action", cedar.String(pick(actions))),
				Resource:  cedar.NewEntityUID("Service", cedar.String(pick(services))),
				Context:   cedar.NewRecord(ctx),
			}
			got, want := set.Evaluate(ents, req), whole.Evaluate(ents, req)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("round %d, %v %v: indexed %+v, whole set %+v\n%s", round, req.Action, req.Resource, got, want, src.String())
			}
		}
	}
}

func TestSmallSetsAreNotIndexed(t *testing.T) {
	set, err := ParseSet("s", map[string]string{"p.cedar": `permit (principal, action == Action::"GET", resource);`})
	if err != nil {
		t.Fatal(err)
	}
	if set.index != nil {
		t.Error("a one-policy set got an index; walking it is cheaper")
	}
}

// FuzzScopeIndex: whatever policy is added to an indexed set, evaluating
// the candidates decides as evaluating the whole set.
func FuzzScopeIndex(f *testing.F) {
	for _, p := range []string{
		`permit (principal, action == Action::"GET", resource == Service::"orders");`,
		`forbid (principal, action in [Action::"GET"], resource) when { context.n > 1 };`,
		`permit (principal, action, resource in Service::"all") unless { context.missing };`,
		`permit (principal is User, action == Action::"POST", resource is Service);`,
	} {
		f.Add(p)
	}
	var filler strings.Builder
	for i := range minIndexed {
		fmt.Fprintf(&filler, "@id(\"f%d\") permit (principal, action == Action::\"%s\", resource == Service::\"s%d\") when { context.n == %d };\n",
			i, []string{"GET", "POST"}[i%2], i%4, i%3)
	}
	all := cedar.NewEntityUID("Service", "all")
	ents := cedar.EntityMap{}
	for i := range 4 {
		uid := cedar.NewEntityUID("Service", cedar.String(fmt.Sprintf("s%d", i)))
		ents[uid] = cedar.Entity{UID: uid, Parents: cedar.NewEntityUIDSet(all)}
	}
	f.Fuzz(func(t *testing.T, text string) {
		set, err := ParseSet("s", map[string]string{"filler.cedar": filler.String(), "fuzz.cedar": text})
		if err != nil || set.index == nil {
			return
		}
		whole := *set
		whole.index = nil
		for _, action := range []string{"GET", "POST", "DELETE"} {
			for _, svc := range []string{"s0", "s1", "orders", "all"} {
				for _, n := range []cedar.Value{cedar.Long(1), cedar.Long(2), cedar.String("x")} {
					req := cedar.Request{
						Principal: cedar.NewEntityUID("User", "alice"),
						Action:    cedar.NewEntityUID("Action", cedar.String(action)),
						Resource:  cedar.NewEntityUID("Service", cedar.String(svc)),
						Context:   cedar.NewRecord(cedar.RecordMap{"n": n}),
					}
					if got, want := set.Evaluate(ents, req), whole.Evaluate(ents, req); !reflect.DeepEqual(got, want) {
						t.Fatalf("%s %s: indexed %+v, whole set %+v", action, svc, got, want)
					}
				}
			}
		}
	})
}
