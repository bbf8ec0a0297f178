// Package poll waits in tests for a condition that other goroutines
// or processes make true: a reload applied, a leader elected, a status
// written. It polls; the bound is a deadline for failing, never a sleep
// the test relies on.
package poll

import (
	"testing"
	"time"
)

// Until polls cond every 20ms until it holds, and fails the test naming
// what was awaited when it does not within the bound.
func Until(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
