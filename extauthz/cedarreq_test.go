package extauthz

import (
	"testing"

	"github.com/cedar-policy/cedar-go"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/meshguard/meshguard/extauthz/policy"
)

// Requests on one connection share context.source; requests on another
// must not see it.
func TestSourceRecordFollowsTheConnection(t *testing.T) {
	peer := spiffeid.RequireFromString("spiffe://meshguard.local/ns/demo/sa/frontend")
	source := func(addr string, peer spiffeid.ID) cedar.Record {
		ctx := buildContext(Attributes{SourceAddress: addr}, Route{}, Caller{Peer: peer}, nil, policy.AllUses())
		v, _ := ctx.Get("source")
		return v.(cedar.Record)
	}
	for range 2 { // the second round is served from the cache
		for _, tc := range []struct {
			addr string
			peer spiffeid.ID
		}{{"10.0.0.1:4000", peer}, {"10.0.0.1:4000", spiffeid.ID{}}, {"10.0.0.2:4000", peer}, {"not an address", spiffeid.ID{}}} {
			got, want := source(tc.addr, tc.peer), sourceRecord(tc.addr, tc.peer)
			if !got.Equal(want) {
				t.Errorf("source(%q, %q) = %s, want %s", tc.addr, tc.peer, got, want)
			}
		}
	}
	if v, _ := source("10.0.0.1:4000", peer).Get("spiffe_id"); v != cedar.String(peer.String()) {
		t.Errorf("spiffe_id = %v", v)
	}
	if _, ok := source("10.0.0.1:4000", spiffeid.ID{}).Get("spiffe_id"); ok {
		t.Error("spiffe_id set for a connection without a peer identity")
	}
}
