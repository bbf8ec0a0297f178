// Package gctune sets the Go garbage collector's target for meshguard's
// request-serving processes.
package gctune

import (
	"fmt"
	"os"
	"runtime/debug"
)

// AuthzPercent is the Go GC target the authorizer runs with unless GOGC
// is set. Its live heap is small and its allocation rate high, so with
// Go's default of 100 the collector runs constantly and its fixed cost per
// cycle (stacks, globals) took a large share of the CPU under load; 400
// cuts the cycles fourfold for a peak heap of up to five times the live
// heap. Figures in bench/RESULTS.md; how to tune in docs/operations.md.
const AuthzPercent = 400

// Apply applies percent unless the environment sets GOGC, and says which
// setting the process runs with.
func Apply(percent int) string {
	if v := os.Getenv("GOGC"); v != "" {
		return "GOGC=" + v + " (from the environment)"
	}
	debug.SetGCPercent(percent)
	return fmt.Sprintf("GOGC=%d (meshguard's default for the authorizer; set GOGC to override)", percent)
}
