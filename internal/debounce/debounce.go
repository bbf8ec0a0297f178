// Package debounce turns bursts of events into single calls.
package debounce

import (
	"context"
	"time"
)

// Run calls fire once events stop arriving for quiet, or maxWait after the
// first event of a burst, whichever is first, until ctx ends.
func Run(ctx context.Context, events <-chan struct{}, quiet, maxWait time.Duration, fire func()) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-events:
		}
		deadline := time.NewTimer(maxWait)
		idle := time.NewTimer(quiet)
	burst:
		for {
			select {
			case <-ctx.Done():
				deadline.Stop()
				idle.Stop()
				return
			case <-events:
				idle.Reset(quiet)
			case <-idle.C:
				break burst
			case <-deadline.C:
				break burst
			}
		}
		deadline.Stop()
		idle.Stop()
		fire()
	}
}

// Trigger is a non-blocking poke of a one-slot event channel.
func Trigger(events chan struct{}) {
	select {
	case events <- struct{}{}:
	default:
	}
}
