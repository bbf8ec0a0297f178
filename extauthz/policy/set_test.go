package policy

import (
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
