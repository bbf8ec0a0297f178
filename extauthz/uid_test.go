package extauthz

import (
	"testing"

	cedar "github.com/cedar-policy/cedar-go"
)

func TestUIDStringMatchesCedar(t *testing.T) {
	for _, id := range []string{
		"", "alice", "spiffe://meshguard.local/ns/demo/sa/orders", "GET",
		`a"b`, `a\b`, "it's", "with space", "tab\there", "nul\x00", "café", "\u0301accent", "\u200bzero-width",
		"emoji 🙂", "\xff\xfe invalid utf-8", "line\nbreak", "~!@#$%^&*()_+{}|:<>?`-=[];,./",
	} {
		u := cedar.NewEntityUID("User", cedar.String(id))
		if got, want := uidString(u), u.String(); got != want {
			t.Errorf("uidString(%q) = %q, want %q", id, got, want)
		}
	}
}

func FuzzUIDString(f *testing.F) {
	f.Add("Namespace::User", "spiffe://td/x")
	f.Add("User", "a\"'\\b")
	f.Fuzz(func(t *testing.T, typ, id string) {
		u := cedar.NewEntityUID(cedar.EntityType(typ), cedar.String(id))
		if got, want := uidString(u), u.String(); got != want {
			t.Fatalf("uidString(%q, %q) = %q, want %q", typ, id, got, want)
		}
	})
}
