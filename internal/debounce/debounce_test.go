package debounce

import (
	"context"
	"testing"
	"time"
)

// A burst of events, each within quiet of the last, fires once; a burst
// longer than maxWait fires at maxWait, not at its end.
func TestABurstFiresOnceAndALongOneAtMaxWait(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events := make(chan struct{}, 1)
	fired := make(chan time.Time, 10)
	go Run(ctx, events, 50*time.Millisecond, 300*time.Millisecond, func() { fired <- time.Now() })

	for range 5 {
		Trigger(events)
		time.Sleep(5 * time.Millisecond)
	}
	<-fired
	select {
	case <-fired:
		t.Fatal("one burst fired twice")
	case <-time.After(150 * time.Millisecond):
	}

	// Events every 20ms for a second: never quiet, so only maxWait can
	// make it fire while the burst lasts.
	stop := time.After(time.Second)
	var first time.Time
loop:
	for {
		select {
		case <-stop:
			break loop
		case f := <-fired:
			if first.IsZero() {
				first = f
			}
		default:
			Trigger(events)
			time.Sleep(20 * time.Millisecond)
		}
	}
	if first.IsZero() {
		t.Fatal("a continuous one-second burst never fired while it lasted (maxWait 300ms)")
	}
}
