package decisionlog

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

func sameAsEncodingJSON(t *testing.T, e *Entry) {
	t.Helper()
	got := e.AppendJSON(nil)
	want, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	if want = rawReplacementChars(want); !bytes.Equal(got, want) {
		t.Fatalf("AppendJSON differs from encoding/json:\n got %s\nwant %s", got, want)
	}
}

// rawReplacementChars writes each escape \ufffd in the JSON text j as the
// raw character: encoding/json replaces invalid UTF-8 by U+FFFD, written
// raw since Go 1.27 and escaped before; the same JSON string either way.
func rawReplacementChars(j []byte) []byte {
	out := make([]byte, 0, len(j))
	for i := 0; i < len(j); i++ {
		switch {
		case j[i] != '\\' || i+1 == len(j):
			out = append(out, j[i])
		case bytes.HasPrefix(j[i+1:], []byte("ufffd")):
			out = append(out, "\uFFFD"...)
			i += len("ufffd")
		default: // any other escape, kept whole so that \\ufffd stays text
			out = append(out, j[i], j[i+1])
			i++
		}
	}
	return out
}

func TestAppendJSONMatchesEncodingJSON(t *testing.T) {
	yes, no := true, false
	sameAsEncodingJSON(t, &Entry{Time: time.Unix(1_800_000_000, 123456789).UTC(), DecisionID: "d", Mode: "enforce", Reason: "allowed"})
	sameAsEncodingJSON(t, &Entry{
		Time: time.Date(2026, 11, 26, 19, 0, 0, 0, time.UTC), DecisionID: "abc", RequestID: "r<1>&",
		Route: "orders/api", Service: "orders", PolicySet: "orders", Mode: "shadow", Allowed: true, Status: 200,
		Reason: "shadow_mode", Detail: "line\nbreak\ttab\x00nul\x1f\f\b", Principal: `User::"alice"`, Action: `Action::"GET"`,
		SourceSPIFFE: "spiffe://td/ns/a/sa/b", SourceAddress: "[::1]:80", Method: "GET", Path: "/ü/\u2028/\xff/\\",
		JWTProvider: "corp", JWTError: "expired", Policies: []string{"a#1", "b#2"},
		Errors:     []PolicyError{{Policy: "p", Message: `bad "x"`}},
		WouldAllow: &no, WouldReason: "policy_denied",
		Shadow:     &Shadow{PolicySet: "cand", Allowed: true, Policies: []string{"c#0"}, Error: "e"},
		DurationUS: 42,
	})
	sameAsEncodingJSON(t, &Entry{WouldAllow: &yes, Shadow: &Shadow{}})
	sameAsEncodingJSON(t, &Entry{Rollout: &Rollout{}})
	sameAsEncodingJSON(t, &Entry{Rollout: &Rollout{Candidate: "orders-v2", Stage: "canary", Canary: "12.5", Revision: "r1-ab",
		Enforced: "orders-v2", Outcome: "allow_to_deny", CurrentAllowed: true, CandidatePolicies: []string{"orders-v2/a.cedar#x"},
		CandidateErrors: 2, Error: "e\n"}})
}

func FuzzAppendJSON(f *testing.F) {
	f.Add("a", "/p", "\xff\xfe", int64(3))
	f.Add(`\ufffd`, "\\ufffd\xff", `\\\ufffd`, int64(-1))
	f.Fuzz(func(t *testing.T, id, path, detail string, d int64) {
		sameAsEncodingJSON(t, &Entry{Time: time.Unix(d%1e10, 0).UTC(), DecisionID: id, Path: path, Detail: detail,
			Policies: []string{detail}, DurationUS: d})
		sameAsEncodingJSON(t, &Entry{DecisionID: id, Rollout: &Rollout{Candidate: path, Stage: detail, Canary: id, Revision: detail,
			CandidatePolicies: []string{path}, CandidateErrors: int(d % 1000)}})
	})
}
