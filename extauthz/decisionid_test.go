package extauthz

import (
	"encoding/hex"
	"sync"
	"testing"
)

// Decision ids are 128 bits in hex and do not repeat, also when generated
// concurrently from the pooled generators.
func TestDecisionIDsAreUnique(t *testing.T) {
	const workers, each = 8, 20000
	ids := make([][]string, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for range each {
				ids[w] = append(ids[w], newDecisionID())
			}
		})
	}
	wg.Wait()
	seen := make(map[string]bool, workers*each)
	for _, list := range ids {
		for _, id := range list {
			if b, err := hex.DecodeString(id); err != nil || len(b) != 16 {
				t.Fatalf("id %q is not 128 bits in hex", id)
			}
			if seen[id] {
				t.Fatalf("id %s repeated", id)
			}
			seen[id] = true
		}
	}
}
