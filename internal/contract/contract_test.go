package contract

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
)

// The set-name rule as the documentation states it.
var setNameRule = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

func TestValidSetName(t *testing.T) {
	for _, name := range []string{"default", "orders", "a", "A.b_c-9", strings.Repeat("x", 128)} {
		if !ValidSetName(name) {
			t.Errorf("ValidSetName(%q) = false", name)
		}
	}
	for _, name := range []string{"", ".hidden", "-x", "_x", "a/b", "../x", "a b", "é", "a\x00", strings.Repeat("x", 129)} {
		if ValidSetName(name) {
			t.Errorf("ValidSetName(%q) = true", name)
		}
	}
}

func FuzzValidSetName(f *testing.F) {
	for _, s := range []string{"orders", ".x", "a..b", strings.Repeat("y", 130)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if got, want := ValidSetName(name), setNameRule.MatchString(name); got != want {
			t.Fatalf("ValidSetName(%q) = %v, the rule says %v", name, got, want)
		}
	})
}

// The bucket is a contract between authorizer replicas (and any other
// implementation): these values pin it.
func TestCanaryBucketIsPinned(t *testing.T) {
	for _, c := range []struct {
		route, principal string
		want             int
	}{
		{"orders/read", `User::"alice"`, 5939},
		{"orders/read", `User::"bob"`, 32},
		{"orders/write", `User::"alice"`, 2780},
		{"", "", 4608},
		{"payments/charge", `Workload::"spiffe://meshguard.local/ns/demo/sa/orders"`, 5749},
	} {
		if got := CanaryBucket(c.route, c.principal); got != c.want {
			t.Errorf("CanaryBucket(%q, %q) = %d, want %d", c.route, c.principal, got, c.want)
		}
	}
}

// A canary share must pick about that share of distinct callers: the
// buckets of 100,000 principals are spread evenly (each tenth of the range
// holds 10 % ± 0.5 %, about five standard deviations).
func TestCanaryBucketsAreEven(t *testing.T) {
	const n = 100000
	var tenths [10]int
	for i := range n {
		tenths[CanaryBucket("orders/read", fmt.Sprintf("User::%q", fmt.Sprint("user-", i)))*10/CanaryBuckets]++
	}
	for i, c := range tenths {
		if c < n/10-n/200 || c > n/10+n/200 {
			t.Errorf("buckets %d-%d hold %d of %d principals", i*1000, i*1000+999, c, n)
		}
	}
}
