package periodic

import (
	"context"
	"testing"
	"time"
)

// Every keeps calling until the context ends, then returns.
func TestEveryCallsUntilCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	calls := make(chan struct{})
	done := make(chan struct{})
	go func() {
		Every(ctx, time.Millisecond, func(context.Context) { calls <- struct{}{} })
		close(done)
	}()
	for range 3 {
		<-calls
	}
	cancel()
	for {
		select {
		case <-calls: // a tick that raced the cancel
		case <-done:
			return
		}
	}
}
