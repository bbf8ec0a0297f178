package decisionlog

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/meshguard/meshguard/internal/hashchain"
	"github.com/meshguard/meshguard/internal/logfile"
)

// blockingWriter blocks every write until released, so the buffer fills.
// entered is closed when the first write starts.
type blockingWriter struct {
	release chan struct{}
	entered chan struct{}
	once    sync.Once
	mu      sync.Mutex
	buf     bytes.Buffer
}

func (w *blockingWriter) Write(p []byte) (int, error) {
	w.once.Do(func() { close(w.entered) })
	<-w.release
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

func TestFullBufferDropsAndCounts(t *testing.T) {
	w := &blockingWriter{release: make(chan struct{}), entered: make(chan struct{})}
	var drops int
	var mu sync.Mutex
	l := New(w, 4, func() { mu.Lock(); drops++; mu.Unlock() })
	// The first entry reaches the writer, which then blocks writing it out.
	if !l.Log(&Entry{DecisionID: "first"}) {
		t.Fatal("first entry dropped")
	}
	<-w.entered
	// Now exactly the buffer's 4 slots are free.
	accepted := 1
	for i := range 100 {
		if l.Log(&Entry{DecisionID: string(rune('a' + i%26))}) {
			accepted++
		}
	}
	if accepted != 5 {
		t.Fatalf("accepted %d entries (1 in flight + buffer of 4), want 5", accepted)
	}
	mu.Lock()
	if drops != 96 || l.Dropped() != 96 {
		t.Fatalf("drops = %d (counter %d), want 96", drops, l.Dropped())
	}
	mu.Unlock()
	close(w.release)
	if err := l.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(w.buf.String()), "\n")
	if len(lines) != accepted {
		t.Fatalf("wrote %d lines, want the %d accepted", len(lines), accepted)
	}
	for _, line := range lines {
		var e Entry
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
	}
	if l.Log(&Entry{}) {
		t.Fatal("Log after Close accepted an entry")
	}
}

func TestNilLoggerIsANoOp(t *testing.T) {
	var l *Logger
	if !l.Log(&Entry{}) || l.Dropped() != 0 || l.Close(context.Background()) != nil {
		t.Fatal("nil logger misbehaves")
	}
}

// Entries logged faster than the writer's batches are all written, in order.
func TestBatchesKeepEveryEntryInOrder(t *testing.T) {
	var out bytes.Buffer
	l := New(&out, 20000, nil)
	const n = 10000
	for i := range n {
		if !l.Log(&Entry{DecisionID: strconv.Itoa(i)}) {
			t.Fatalf("entry %d dropped with room in the buffer", i)
		}
	}
	if err := l.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != n {
		t.Fatalf("wrote %d lines, want %d", len(lines), n)
	}
	for i, line := range lines {
		var e Entry
		if err := json.Unmarshal([]byte(line), &e); err != nil || e.DecisionID != strconv.Itoa(i) {
			t.Fatalf("line %d = %q (%v), want decision %d", i, line, err, i)
		}
	}
}

// Log takes a copy: the caller may reuse its entry at once.
func TestLogCopiesTheEntry(t *testing.T) {
	var out bytes.Buffer
	l := New(&out, 4, nil)
	e := Entry{DecisionID: "first"}
	l.Log(&e)
	e.DecisionID = "second"
	l.Log(&e)
	if err := l.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], `"decision_id":"first"`) || !strings.Contains(lines[1], `"decision_id":"second"`) {
		t.Fatalf("log = %q, want the first entry as it was when logged, then the second", out.String())
	}
}

// failingWriter fails every write while fail is set.
type failingWriter struct {
	mu   sync.Mutex
	fail bool
	buf  bytes.Buffer
}

func (w *failingWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.fail {
		return 0, errors.New("no space left on device")
	}
	return w.buf.Write(p)
}

// A full disk loses the batch it refused, counted, and the log goes on
// once the disk has room again.
func TestAFailedWriteLosesItsBatchAndTheLogRecovers(t *testing.T) {
	w := &failingWriter{fail: true}
	dropped := make(chan struct{}, 1)
	var errs []error
	l := New(w, 4, func() { dropped <- struct{}{} }, WithErrorHandler(func(err error) { errs = append(errs, err) }))
	l.Log(&Entry{DecisionID: "lost"})
	<-dropped
	w.mu.Lock()
	w.fail = false
	w.mu.Unlock()
	l.Log(&Entry{DecisionID: "kept"})
	if err := l.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := w.buf.String(); strings.Contains(got, "lost") || !strings.Contains(got, `"decision_id":"kept"`) || strings.Count(got, "\n") != 1 {
		t.Fatalf("log = %q, want only the entry written after the disk recovered", got)
	}
	if l.Dropped() != 1 {
		t.Fatalf("dropped = %d, want the 1 entry whose write failed", l.Dropped())
	}
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "1 entries lost: no space left on device") {
		t.Fatalf("errors reported: %v", errs)
	}
}

// A chained log rotated after every batch and restarted in between is one
// chain across all its files, oldest first.
func TestAChainedLogIsOneChainAcrossRotationsAndRestarts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "decisions.jsonl")
	const backups = 50
	run := func(ids ...string) {
		chain, err := hashchain.Resume(path)
		if err != nil {
			t.Fatal(err)
		}
		f, err := logfile.Open(path, 1, backups) // rotate after every batch
		if err != nil {
			t.Fatal(err)
		}
		l := New(f, 16, nil, WithChain(chain))
		for _, id := range ids {
			l.Log(&Entry{DecisionID: id})
		}
		if err := l.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	run("a", "b", "c")
	run("d", "e")
	run("f")

	var files []string
	for i := backups; i >= 1; i-- {
		if _, err := os.Stat(logfile.Backup(path, i)); err == nil {
			files = append(files, logfile.Backup(path, i))
		}
	}
	if len(files) < 3 {
		t.Fatalf("rotated into %d files, want one per run at least", len(files))
	}
	var ids []string
	var start *[32]byte
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		_, last, brk, err := hashchain.Verify(bytes.NewReader(b), start)
		if brk != nil || err != nil {
			t.Fatalf("%s: %v %v", filepath.Base(name), brk, err)
		}
		start = &last
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			var e Entry
			if err := json.Unmarshal([]byte(line), &e); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, e.DecisionID)
		}
	}
	if got := strings.Join(ids, ""); got != "abcdef" {
		t.Fatalf("entries across the files = %q, want abcdef", got)
	}
}
