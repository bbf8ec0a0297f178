// Package periodic runs background refreshes: SVID rotation, bundle and
// SDS refreshes, health updates.
package periodic

import (
	"context"
	"time"
)

// Every calls fn every interval until ctx ends, and returns then. The first
// call is one interval after the start: callers that need a value at once
// call fn themselves first, where they can handle its error.
func Every(ctx context.Context, interval time.Duration, fn func(context.Context)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fn(ctx)
		}
	}
}
