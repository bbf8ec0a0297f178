package gctune

import (
	"runtime/debug"
	"strings"
	"testing"
)

func TestApplyAppliesTheDefaultUnlessGOGCIsSet(t *testing.T) {
	restore := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(restore) })

	t.Setenv("GOGC", "")
	if got := Apply(400); !strings.Contains(got, "GOGC=400") {
		t.Errorf("tuneGC = %q", got)
	}
	if prev := debug.SetGCPercent(100); prev != 400 {
		t.Errorf("GC percent %d after Apply(400) without GOGC", prev)
	}

	t.Setenv("GOGC", "150")
	if got := Apply(400); !strings.Contains(got, "GOGC=150") || !strings.Contains(got, "environment") {
		t.Errorf("tuneGC = %q", got)
	}
	if prev := debug.SetGCPercent(100); prev != 100 {
		t.Errorf("Apply changed the GC percent to %d although GOGC is set", prev)
	}
}
