package gctune

import (
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
)

// restore puts the runtime's GC settings back after a test.
func restore(t *testing.T) {
	percent := debug.SetGCPercent(100)
	limit := debug.SetMemoryLimit(math.MaxInt64)
	t.Cleanup(func() {
		debug.SetGCPercent(percent)
		debug.SetMemoryLimit(limit)
	})
}

func cgroup(t *testing.T, file, content string) string {
	t.Helper()
	root := t.TempDir()
	p := filepath.Join(root, file)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return root
}

func TestApplyTheDefaultsUnlessTheEnvironmentSetsThem(t *testing.T) {
	restore(t)
	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
	got := apply(400, cgroup(t, "memory.max", "1073741824\n"))
	if !strings.Contains(got, "GOGC=400") || !strings.Contains(got, "GOMEMLIMIT=921MiB") {
		t.Errorf("apply = %q", got)
	}
	if prev := debug.SetGCPercent(100); prev != 400 {
		t.Errorf("GC percent %d, want 400", prev)
	}
	if limit := debug.SetMemoryLimit(-1); limit != 1073741824*9/10 {
		t.Errorf("memory limit %d, want 90%% of 1 GiB", limit)
	}

	restore(t)
	t.Setenv("GOGC", "150")
	t.Setenv("GOMEMLIMIT", "512MiB")
	got = apply(400, cgroup(t, "memory.max", "1073741824\n"))
	if !strings.Contains(got, "GOGC=150 (from the environment)") || !strings.Contains(got, "GOMEMLIMIT=512MiB (from the environment)") {
		t.Errorf("apply = %q", got)
	}
	if prev := debug.SetGCPercent(100); prev != 100 {
		t.Errorf("apply changed the GC percent to %d although GOGC is set", prev)
	}
	if limit := debug.SetMemoryLimit(-1); limit != math.MaxInt64 {
		t.Errorf("apply set a memory limit (%d) although GOMEMLIMIT is set", limit)
	}
}

func TestCgroupMemoryLimit(t *testing.T) {
	for _, tc := range []struct {
		file, content string
		want          int64
		ok            bool
	}{
		{"memory.max", "536870912\n", 536870912, true},
		{"memory.max", "max\n", 0, false},
		{"memory/memory.limit_in_bytes", "268435456\n", 268435456, true},
		{"memory/memory.limit_in_bytes", "9223372036854771712\n", 0, false}, // v1: unlimited
		{"memory.max", "garbage", 0, false},
		{"elsewhere", "1", 0, false},
	} {
		got, ok := cgroupMemoryLimit(cgroup(t, tc.file, tc.content))
		if got != tc.want || ok != tc.ok {
			t.Errorf("%s = %q: got %d, %v; want %d, %v", tc.file, tc.content, got, ok, tc.want, tc.ok)
		}
	}
}
