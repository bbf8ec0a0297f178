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

func TestParsePercent(t *testing.T) {
	for in, want := range map[string]int{"0": 0, "10": 1000, "2.5": 250, "0.25": 25, "99.99": 9999, "100": 10000, "100.00": 10000, "007": 700} {
		if got, ok := ParsePercent(in); !ok || got != want {
			t.Errorf("ParsePercent(%q) = %d, %v; want %d", in, got, ok, want)
		}
		if in == "007" || in == "100.00" {
			continue
		}
		if back := FormatPercent(want); back != in {
			t.Errorf("FormatPercent(%d) = %q, want %q", want, back, in)
		}
	}
	for _, in := range []string{"", "101", "100.01", "1000", "-1", "+1", "1e1", "NaN", "10.", ".5", "1.234", "10%", " 1", "1,5", "0x1"} {
		if got, ok := ParsePercent(in); ok {
			t.Errorf("ParsePercent(%q) = %d, want refused", in, got)
		}
	}
}

func FuzzParsePercent(f *testing.F) {
	for _, s := range []string{"10", "2.5", "100", "1e1", "."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		bp, ok := ParsePercent(s)
		if !ok {
			return
		}
		if bp < 0 || bp > 10000 {
			t.Fatalf("ParsePercent(%q) = %d, outside 0-10000", s, bp)
		}
		if again, ok := ParsePercent(FormatPercent(bp)); !ok || again != bp {
			t.Fatalf("FormatPercent(%d) = %q does not read back", bp, FormatPercent(bp))
		}
	})
}
