// Package proctest holds what tests need around the processes they start.
package proctest

import (
	"bytes"
	"sync"
)

// MaxOutput bounds what an Output keeps: a process that logs in a loop
// cannot grow a test's memory; the start, where failures show, is kept.
const MaxOutput = 4 << 20

// Output collects a process's stdout and stderr: safe for exec's copiers
// and the test to use at once, and bounded (MaxOutput).
type Output struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write keeps p while the output is under MaxOutput, and drops it after.
func (o *Output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if room := MaxOutput - o.b.Len(); room < len(p) {
		o.b.Write(p[:max(room, 0)])
		return len(p), nil
	}
	return o.b.Write(p)
}

// String returns what was kept.
func (o *Output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.String()
}
