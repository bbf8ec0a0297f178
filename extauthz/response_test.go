package extauthz

import (
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"testing"

	cedar "github.com/cedar-policy/cedar-go"
)

func TestDynamicMetadataValues(t *testing.T) {
	d := &Decision{
		ID: "d-1", Allow: true, Reason: "allowed", Mode: ModeShadow,
		Route:     Route{ID: "orders/read", PolicySet: "orders"},
		Principal: cedar.NewEntityUID("User", "alice"),
		Would:     &Outcome{Allow: false},
	}
	// More policies than any block reserves up front: values handed out
	// before a block grows must keep their contents.
	for i := range 40 {
		d.Policies = append(d.Policies, fmt.Sprintf("orders/read.cedar#p%d", i))
	}
	policies := make([]any, len(d.Policies))
	for i, p := range d.Policies {
		policies[i] = p
	}
	want := map[string]any{
		"decision_id": "d-1", "principal": `User::"alice"`, "policy_set": "orders", "policies": policies,
		"mode": ModeShadow, "allowed": true, "reason": "allowed", "route": "orders/read", "would_allow": false,
	}
	if got := dynamicMetadata(d).AsMap(); !reflect.DeepEqual(got, want) {
		t.Fatalf("metadata\n got %v\nwant %v", got, want)
	}
}

// The deny body is JSON with the decision id and nothing else, whatever
// the id holds.
func TestDenyBodyIsJSON(t *testing.T) {
	for _, tc := range []struct {
		status int
		id     string
		word   string
	}{{403, "0123456789abcdef0123456789abcdef", "forbidden"}, {401, "00ff", "unauthorized"}, {403, `a"b\c`, "forbidden"}, {403, "", "forbidden"},
		{403, "<script>", "forbidden"}, {403, "id\u2028\x7f", "forbidden"}} {
		var got map[string]string
		body := denyBody(&Decision{Status: tc.status, ID: tc.id})
		if err := json.Unmarshal([]byte(body), &got); err != nil {
			t.Fatalf("body %q: %v", body, err)
		}
		if want := map[string]string{"error": tc.word, "decision_id": tc.id}; !maps.Equal(got, want) {
			t.Errorf("body %q = %v, want %v", body, got, want)
		}
		want, _ := json.Marshal(struct {
			Error      string `json:"error"`
			DecisionID string `json:"decision_id"`
		}{tc.word, tc.id})
		if body != string(want) {
			t.Errorf("body %q is not encoding/json's encoding %q", body, want)
		}
	}
}
