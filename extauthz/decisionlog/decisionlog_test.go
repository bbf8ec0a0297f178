package decisionlog

import (
	"bytes"
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"sync"
	"testing"
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
