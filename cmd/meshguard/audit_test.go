package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/meshguard/meshguard/internal/hashchain"
)

// chainedLog writes n sealed lines continuing c to path.
func chainedLog(t *testing.T, path string, c *hashchain.Chain, from, n int) {
	t.Helper()
	var b strings.Builder
	for i := from; i < from+n; i++ {
		line, _ := c.Seal([]byte(fmt.Sprintf(`{"decision_id":"d%d"}`, i)))
		b.Write(line)
	}
	if err := writeFile(path, b.String()); err != nil {
		t.Fatal(err)
	}
}

func exitCode(err error) int {
	var ex *exitError
	if errors.As(err, &ex) {
		return ex.code
	}
	if err != nil {
		return 1
	}
	return 0
}

func TestAuditVerify(t *testing.T) {
	dir := t.TempDir()
	old, cur := filepath.Join(dir, "decisions.jsonl.1"), filepath.Join(dir, "decisions.jsonl")
	var c hashchain.Chain
	chainedLog(t, old, &c, 1, 3)
	chainedLog(t, cur, &c, 4, 2)
	last := c.Last()
	lastHex := fmt.Sprintf("%x", last[:])

	out, err := run(t, "audit", "verify", old, cur)
	if exitCode(err) != 0 || !strings.Contains(out, "5 lines; last line's hash "+lastHex) {
		t.Fatalf("an intact rotated pair: exit %d\n%s", exitCode(err), out)
	}
	if out, err := run(t, "audit", "verify", old, cur, "--expect-last", lastHex); exitCode(err) != 0 {
		t.Fatalf("the recorded last hash: exit %d\n%s", exitCode(err), out)
	}

	// Files in the wrong order: the first line of the older one does not
	// follow the newer one's last.
	out, err = run(t, "audit", "verify", cur, old)
	if exitCode(err) != 1 || !strings.Contains(out, old+": BROKEN at line 1") {
		t.Fatalf("files out of order: exit %d\n%s", exitCode(err), out)
	}

	// The last line changed: only the recorded hash reveals it.
	body, _ := os.ReadFile(cur)
	if err := os.WriteFile(cur, []byte(strings.Replace(string(body), `"d5"`, `"dX"`, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := run(t, "audit", "verify", old, cur); exitCode(err) != 0 {
		t.Fatalf("without --expect-last the last line is unchecked by design: exit %d\n%s", exitCode(err), out)
	}
	out, err = run(t, "audit", "verify", old, cur, "--expect-last", lastHex)
	if exitCode(err) != 1 || !strings.Contains(out, "not the expected "+lastHex) {
		t.Fatalf("a changed last line with --expect-last: exit %d\n%s", exitCode(err), out)
	}

	// A line removed from the middle is reported where the gap is.
	body, _ = os.ReadFile(old)
	lines := strings.SplitAfter(string(body), "\n")
	if err := os.WriteFile(old, []byte(lines[0]+lines[2]), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = run(t, "audit", "verify", old)
	if exitCode(err) != 1 || !strings.Contains(out, "BROKEN at line 2") || !strings.Contains(out, "changed, removed or inserted") {
		t.Fatalf("a removed line: exit %d\n%s", exitCode(err), out)
	}

	if _, err := run(t, "audit", "verify", filepath.Join(dir, "missing")); exitCode(err) != 2 {
		t.Fatalf("a missing file: exit %d, want 2", exitCode(err))
	}
}
