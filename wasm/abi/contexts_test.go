package abi

import (
	"math/rand/v2"
	"testing"
)

type testContext struct{ id uint32 }

func (testContext) OnRequestHeaders(Host, bool) Action  { return Continue }
func (testContext) OnResponseHeaders(Host, bool) Action { return Continue }
func (testContext) OnDelete()                           {}

// The table must behave as a map whatever the ids: sequential, colliding
// in one slot (long-lived streams, more live streams than slots) or random.
func TestContextTableAgreesWithAMap(t *testing.T) {
	var tbl contextTable
	want := map[uint32]HTTPContext{}
	rng := rand.New(rand.NewPCG(1, 2))
	next := uint32(2)
	var live []uint32
	for step := range 200_000 {
		switch {
		case len(live) > 0 && rng.IntN(100) < 45:
			i := rng.IntN(len(live))
			id := live[i]
			live[i] = live[len(live)-1]
			live = live[:len(live)-1]
			c, ok := tbl.remove(id)
			if !ok || c != want[id] {
				t.Fatalf("step %d: remove(%d) = %v, %v; want %v", step, id, c, ok, want[id])
			}
			delete(want, id)
		default:
			id := next
			if rng.IntN(10) == 0 {
				id = next + contextSlots*uint32(1+rng.IntN(3)) // lands on a live id's slot
			}
			next++
			if _, dup := want[id]; dup {
				continue
			}
			c := testContext{id}
			tbl.put(id, c)
			want[id] = c
			live = append(live, id)
		}
		if step%1000 == 0 {
			if tbl.len() != len(want) {
				t.Fatalf("step %d: %d contexts, want %d", step, tbl.len(), len(want))
			}
			for id, c := range want {
				if got, ok := tbl.get(id); !ok || got != c {
					t.Fatalf("step %d: get(%d) = %v, %v", step, id, got, ok)
				}
			}
		}
	}
	if _, ok := tbl.get(next + 7); ok {
		t.Fatal("found an id never added")
	}
	if _, ok := tbl.get(0); ok {
		t.Fatal("id 0 found in an empty slot")
	}
}

// len is the number of live contexts.
func (t *contextTable) len() int {
	n := len(t.overflow)
	for i := range t.slots {
		if t.slots[i].id != 0 {
			n++
		}
	}
	return n
}
