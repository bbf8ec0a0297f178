package policy

import (
	"fmt"
	"testing"
)

// Results holds at most max results, starting over when full, and a nil
// *Results (the cache disabled) holds none.
func TestResultsBounded(t *testing.T) {
	r := NewResults(3)
	for i := range 3 {
		r.Put(fmt.Appendf(nil, "k%d", i), Result{Allow: i%2 == 0, Determining: []string{fmt.Sprint(i)}})
	}
	if got, ok := r.Get([]byte("k2")); !ok || !got.Allow || got.Determining[0] != "2" {
		t.Fatalf("Get(k2) = %+v, %v", got, ok)
	}
	if _, ok := r.Get([]byte("k3")); ok {
		t.Fatal("a key never put was found")
	}
	r.Put([]byte("k3"), Result{})
	if r.Len() != 1 {
		t.Fatalf("Len = %d after a put into a full cache, want 1", r.Len())
	}
	if _, ok := r.Get([]byte("k0")); ok {
		t.Fatal("a full cache kept its old results")
	}
	key := []byte("k4")
	r.Put(key, Result{Allow: true})
	key[1] = '5' // the caller reuses its buffer
	if _, ok := r.Get([]byte("k4")); !ok {
		t.Fatal("Put kept the caller's buffer instead of a copy")
	}

	var off *Results = NewResults(0)
	if off != nil {
		t.Fatal("NewResults(0) must disable the cache")
	}
	off.Put([]byte("k"), Result{Allow: true})
	if _, ok := off.Get([]byte("k")); ok || off.Len() != 0 {
		t.Fatal("a nil Results cached something")
	}
}
