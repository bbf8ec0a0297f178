package decisionlog

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
)

// blockingWriter blocks every write until released, so the buffer fills.
type blockingWriter struct {
	release chan struct{}
	mu      sync.Mutex
	buf     bytes.Buffer
}

func (w *blockingWriter) Write(p []byte) (int, error) {
	<-w.release
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

func TestFullBufferDropsAndCounts(t *testing.T) {
	w := &blockingWriter{release: make(chan struct{})}
	var drops int
	var mu sync.Mutex
	l := New(w, 4, func() { mu.Lock(); drops++; mu.Unlock() })
	// The writer goroutine may hold one entry; 4 more fill the buffer.
	accepted := 0
	for i := range 100 {
		if l.Log(&Entry{DecisionID: string(rune('a' + i%26))}) {
			accepted++
		}
	}
	if accepted > 5 || accepted < 4 {
		t.Fatalf("accepted %d entries into a buffer of 4", accepted)
	}
	mu.Lock()
	if drops != 100-accepted || l.Dropped() != uint64(drops) {
		t.Fatalf("drops = %d (counter %d), want %d", drops, l.Dropped(), 100-accepted)
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
