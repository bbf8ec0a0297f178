package atomicdir

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestARewriteReplacesEverythingAndCleansUp(t *testing.T) {
	dir := t.TempDir()
	if err := Write(dir, map[string][]byte{"orders/a.cedar": []byte("v1"), "web/b.cedar": []byte("w1")}); err != nil {
		t.Fatal(err)
	}
	if got := read(t, filepath.Join(dir, "orders", "a.cedar")); got != "v1" {
		t.Fatalf("orders/a.cedar = %q", got)
	}
	if err := Write(dir, map[string][]byte{"orders/a.cedar": []byte("v2"), "pay/c.cedar": []byte("p1")}); err != nil {
		t.Fatal(err)
	}
	if got := read(t, filepath.Join(dir, "orders", "a.cedar")); got != "v2" {
		t.Fatalf("orders/a.cedar = %q after the rewrite", got)
	}
	if _, err := os.Stat(filepath.Join(dir, "web")); !os.IsNotExist(err) {
		t.Fatalf("web survived the rewrite that dropped it: %v", err)
	}
	entries, _ := os.ReadDir(dir)
	var versions []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "..v-") {
			versions = append(versions, e.Name())
		}
	}
	if len(versions) != 1 {
		t.Fatalf("version directories left: %v, want only the current", versions)
	}
}

func TestHostilePathsAreRefused(t *testing.T) {
	for _, p := range []string{"../escape.cedar", "/abs.cedar", "a/../../b", ".hidden/x", "a/./b", ""} {
		if err := Write(t.TempDir(), map[string][]byte{p: nil}); err == nil {
			t.Errorf("%q accepted", p)
		}
	}
}

// A reader that resolves a top-level name once sees one version whole.
func TestAReaderNeverSeesHalfAnUpdate(t *testing.T) {
	dir := t.TempDir()
	version := func(v string) map[string][]byte {
		return map[string][]byte{"set/a.cedar": []byte(v), "set/b.cedar": []byte(v)}
	}
	if err := Write(dir, version("0")); err != nil {
		t.Fatal(err)
	}
	var stop atomic.Bool
	var wg sync.WaitGroup
	var mixed, reads atomic.Int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		for !stop.Load() {
			real, err := filepath.EvalSymlinks(filepath.Join(dir, "set"))
			if err != nil {
				continue // the old version went away between the two steps
			}
			a, errA := os.ReadFile(filepath.Join(real, "a.cedar"))
			b, errB := os.ReadFile(filepath.Join(real, "b.cedar"))
			if errA != nil || errB != nil {
				continue
			}
			reads.Add(1)
			if string(a) != string(b) {
				mixed.Add(1)
			}
		}
	}()
	for i := range 300 {
		if err := Write(dir, version(string(rune('a'+i%26)))); err != nil {
			t.Fatal(err)
		}
	}
	stop.Store(true)
	wg.Wait()
	if mixed.Load() != 0 || reads.Load() == 0 {
		t.Fatalf("%d of %d reads mixed two versions", mixed.Load(), reads.Load())
	}
}
