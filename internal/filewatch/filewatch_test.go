package filewatch

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// watch runs a watcher on dir and returns a channel fed by its callbacks
// and the callback count.
func watch(t *testing.T, dir string, recursive bool, match func(string) bool) (<-chan struct{}, *atomic.Int32) {
	t.Helper()
	w, err := New([]string{dir}, recursive)
	if err != nil {
		t.Fatal(err)
	}
	if match != nil {
		w.Only(match)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	calls := make(chan struct{}, 100)
	var n atomic.Int32
	go func() {
		defer close(done)
		w.Run(ctx, func() { n.Add(1); calls <- struct{}{} })
	}()
	t.Cleanup(func() { cancel(); <-done })
	return calls, &n
}

// await fails the test if no callback arrives: a liveness bound, far above
// the debounce, not a measurement.
func await(t *testing.T, calls <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-calls:
	case <-time.After(10 * time.Second):
		t.Fatalf("no change callback after %s", what)
	}
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestBurstOfWritesIsCoalesced(t *testing.T) {
	dir := t.TempDir()
	calls, n := watch(t, dir, false, nil)
	const writes = 50
	for i := range writes {
		write(t, filepath.Join(dir, "policy.cedar"), strings.Repeat("x", i))
	}
	await(t, calls, "a burst of writes")
	// A reload per write would be 50 callbacks; debouncing leaves a few at
	// most even on a slow machine, where the burst may straddle a window.
	if got := n.Load(); got >= writes/2 {
		t.Fatalf("%d callbacks for %d writes: not debounced", got, writes)
	}
}

func TestOnlyIgnoresUnrelatedFiles(t *testing.T) {
	dir := t.TempDir()
	calls, n := watch(t, dir, false, func(p string) bool { return strings.HasSuffix(p, ".yaml") })
	for range 20 {
		write(t, filepath.Join(dir, "access.log"), "noise")
	}
	// Give ignored events time to (wrongly) fire a callback of their own,
	// then make a change that matters: correct code calls back exactly once.
	time.Sleep(3 * Debounce)
	if got := n.Load(); got != 0 {
		t.Fatalf("%d callbacks for edits of an ignored file", got)
	}
	write(t, filepath.Join(dir, "mesh.yaml"), "spec: {}")
	await(t, calls, "an edit of mesh.yaml")
	if got := n.Load(); got != 1 {
		t.Fatalf("%d callbacks, want 1: unrelated files triggered reloads", got)
	}
}

func TestRecursiveWatchSeesNewSubdirectories(t *testing.T) {
	dir := t.TempDir()
	calls, _ := watch(t, dir, true, func(p string) bool { return strings.HasSuffix(p, ".cedar") })
	sub := filepath.Join(dir, "payments")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	// The new directory's watch is added when its create event is handled;
	// write until the file inside is seen (each write is a fresh event).
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; ; i++ {
		write(t, filepath.Join(sub, "charge.cedar"), strings.Repeat("y", i))
		select {
		case <-calls:
			return
		case <-time.After(2 * Debounce):
		}
		if time.Now().After(deadline) {
			t.Fatal("a file in a subdirectory created after New was never seen")
		}
	}
}

func TestMissingDirectoryIsAnError(t *testing.T) {
	_, err := New([]string{filepath.Join(t.TempDir(), "nope")}, false)
	if err == nil || !strings.Contains(err.Error(), "nope") {
		t.Fatalf("New on a missing directory: %v", err)
	}
}
