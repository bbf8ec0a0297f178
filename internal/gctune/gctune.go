// Package gctune sets the Go garbage collector's targets for meshguard's
// request-serving processes.
package gctune

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
)

// AuthzPercent is the Go GC target the authorizer runs with unless GOGC
// is set. Its live heap is small and its allocation rate high, so with
// Go's default of 100 the collector runs constantly and its fixed cost per
// cycle (stacks, globals) took a large share of the CPU under load; 400
// cuts the cycles fourfold for a peak heap of up to five times the live
// heap. Figures in bench/RESULTS.md; how to tune in docs/operations.md.
const AuthzPercent = 400

// memoryLimitShare of a container's memory limit becomes the runtime's
// soft memory limit unless GOMEMLIMIT is set: near it the collector runs
// as often as needed, so a higher GOGC cannot push the process into the
// container's OOM kill.
const memoryLimitShare = 0.9

// Apply sets the GC target to percent unless GOGC is set, and a soft memory
// limit from the container's cgroup unless GOMEMLIMIT is set. It says what
// the process runs with, for the startup log.
func Apply(percent int) string { return apply(percent, "/sys/fs/cgroup") }

func apply(percent int, cgroupRoot string) string {
	var out []string
	if v := os.Getenv("GOGC"); v != "" {
		out = append(out, "GOGC="+v+" (from the environment)")
	} else {
		debug.SetGCPercent(percent)
		out = append(out, fmt.Sprintf("GOGC=%d (meshguard's default; set GOGC to override)", percent))
	}
	switch limit, ok := cgroupMemoryLimit(cgroupRoot); {
	case os.Getenv("GOMEMLIMIT") != "":
		out = append(out, "GOMEMLIMIT="+os.Getenv("GOMEMLIMIT")+" (from the environment)")
	case ok:
		soft := int64(float64(limit) * memoryLimitShare)
		debug.SetMemoryLimit(soft)
		out = append(out, fmt.Sprintf("GOMEMLIMIT=%dMiB (%.0f%% of the cgroup memory limit)", soft>>20, memoryLimitShare*100))
	default:
		out = append(out, "no memory limit (no cgroup limit found; set GOMEMLIMIT to bound the heap)")
	}
	return strings.Join(out, ", ")
}

// cgroupMemoryLimit reads the memory limit of the process's cgroup as
// mounted in a container: cgroup v2's memory.max, else v1's
// memory/memory.limit_in_bytes. "max", or v1's near-2^63 value, means none.
func cgroupMemoryLimit(root string) (int64, bool) {
	for _, f := range []string{"memory.max", filepath.Join("memory", "memory.limit_in_bytes")} {
		b, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		if err != nil || n <= 0 || n >= 1<<60 {
			return 0, false // "max" or unlimited
		}
		return n, true
	}
	return 0, false
}
