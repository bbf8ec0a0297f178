package hashchain

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// logOf seals n lines into one log.
func logOf(c *Chain, n int) []byte {
	var b bytes.Buffer
	for i := range n {
		line, _ := c.Seal([]byte(fmt.Sprintf(`{"n":%d,"msg":"line %d"}`, i+1, i+1)))
		b.Write(line)
	}
	return b.Bytes()
}

func lines(b []byte) []string { return strings.SplitAfter(string(b), "\n") }

func TestAnIntactChainVerifies(t *testing.T) {
	var c Chain
	log := logOf(&c, 5)
	n, last, brk, err := Verify(bytes.NewReader(log), nil)
	if err != nil || brk != nil || n != 5 || last != c.Last() {
		t.Fatalf("n %d brk %v err %v", n, brk, err)
	}
	if !strings.Contains(lines(log)[0], `"prev":"`+strings.Repeat("0", 64)+`"`) {
		t.Fatalf("the first line of a new chain links to zeros: %s", lines(log)[0])
	}
	empty, _ := (&Chain{}).Seal([]byte(`{}`))
	if string(empty) != `{"prev":"`+strings.Repeat("0", 64)+`"}`+"\n" {
		t.Fatalf("an empty object: %s", empty)
	}
	if _, ok := (&Chain{}).Seal([]byte(`[1]`)); ok {
		t.Fatal("a non-object was sealed")
	}
}

func TestEveryTamperingIsFoundWhereItHappened(t *testing.T) {
	var c Chain
	good := lines(logOf(&c, 6))
	join := func(ls []string) []byte { return []byte(strings.Join(ls, "")) }
	for _, tc := range []struct {
		name   string
		log    []byte
		line   int
		reason string
	}{
		{"a changed line (found at the next)", join(append(append(append([]string{}, good[:2]...), strings.Replace(good[2], "line 3", "line X", 1)), good[3:]...)), 4, "a line was changed, removed or inserted"},
		{"a removed line", join(append(append([]string{}, good[:2]...), good[3:]...)), 3, "a line was changed, removed or inserted"},
		{"two lines swapped", join(append(append(append([]string{}, good[:2]...), good[3], good[2]), good[4:]...)), 3, "a line was changed"},
		{"a line inserted", join(append(append(append([]string{}, good[:3]...), `{"n":99,"prev":"`+strings.Repeat("1", 64)+`"}`+"\n"), good[3:]...)), 4, "a line was changed"},
		{"a line without prev", join(append(append([]string{}, good[:1]...), `{"n":2}`+"\n")), 2, `no "prev"`},
		{"a line that is not JSON", join(append(append([]string{}, good[:1]...), "garbage\n")), 2, "not a JSON object"},
		{"a truncated last line", join(append(append([]string{}, good[:5]...), good[5][:10])), 6, "cut short"},
	} {
		_, _, brk, err := Verify(bytes.NewReader(tc.log), nil)
		if err != nil || brk == nil || brk.Line != tc.line || !strings.Contains(brk.Reason, tc.reason) {
			t.Errorf("%s: %v %v, want line %d (%s)", tc.name, brk, err, tc.line, tc.reason)
		}
	}
}

// A restart continues the chain (Resume), and a rotated file's first line
// links to the previous file's last: verified together, the files form
// one chain.
func TestAChainContinuesAcrossRestartsAndRotations(t *testing.T) {
	dir := t.TempDir()
	first := filepath.Join(dir, "decisions.jsonl.1")
	var c Chain
	if err := os.WriteFile(first, logOf(&c, 3), 0o644); err != nil {
		t.Fatal(err)
	}
	resumed, err := Resume(first)
	if err != nil || resumed.Last() != c.Last() {
		t.Fatalf("resume: %v", err)
	}
	second := logOf(&resumed, 2) // what the new file gets after the rotation
	_, last, brk, err := Verify(bytes.NewReader(must(os.ReadFile(first))), nil)
	if brk != nil || err != nil {
		t.Fatal(brk, err)
	}
	if n, _, brk, err := Verify(bytes.NewReader(second), &last); brk != nil || err != nil || n != 2 {
		t.Fatalf("the second file against the first: %v %v", brk, err)
	}
	// Against another start, its first line is the break.
	other := sha256.Sum256([]byte("something else"))
	if _, _, brk, _ := Verify(bytes.NewReader(second), &other); brk == nil || brk.Line != 1 || !strings.Contains(brk.Reason, "previous file") {
		t.Fatalf("a file verified against the wrong predecessor: %v", brk)
	}
	if c, err := Resume(filepath.Join(dir, "missing")); err != nil || c.Last() != Genesis {
		t.Fatalf("a missing file starts a chain: %v", err)
	}
}

// A restart right after a rotation finds the current file empty (or gone):
// the chain continues from the file rotated last.
func TestARestartAfterARotationContinuesTheRotatedFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "decisions.jsonl")
	var c Chain
	if err := os.WriteFile(path+".1", logOf(&c, 3), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := Resume(path); err != nil || got.Last() != c.Last() {
		t.Fatalf("missing current file: resumed %x, want the rotated file's last line (%v)", got.Last(), err)
	}
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := Resume(path); err != nil || got.Last() != c.Last() {
		t.Fatalf("empty current file: resumed %x, want the rotated file's last line (%v)", got.Last(), err)
	}
	// Once the current file has a line, it wins.
	own := c
	if err := os.WriteFile(path, logOf(&own, 1), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := Resume(path); err != nil || got.Last() != own.Last() {
		t.Fatalf("current file with a line: resumed %x, want its line (%v)", got.Last(), err)
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

func FuzzVerify(f *testing.F) {
	var c Chain
	f.Add(logOf(&c, 3))
	f.Add([]byte("{}\n"))
	f.Add([]byte(`{"prev":"zz"}` + "\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		n, _, brk, err := Verify(bytes.NewReader(data), nil)
		if err != nil {
			t.Fatal(err) // a bytes.Reader never fails
		}
		if brk != nil && (brk.Line < 1 || brk.Line > n) {
			t.Fatalf("break at line %d of %d", brk.Line, n)
		}
	})
}
