package extauthz

import (
	"encoding/json"
	"fmt"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/genproto/googleapis/rpc/code"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/types/known/structpb"
)

// DecisionIDHeader carries the decision id upstream on allow and to the
// client on deny, to correlate with the decision log.
const DecisionIDHeader = "x-meshguard-decision-id"

// maxClaimHeaderLen bounds a claim copied into a header.
const maxClaimHeaderLen = 1024

// header is one header to set.
type header struct{ name, value string }

// upstreamHeaders computes the headers an allowed request carries upstream:
// the principal and decision id always (overwriting whatever the client
// sent), configured claims when present. Claim headers whose claim is absent
// are removed, so a client cannot supply them itself.
func upstreamHeaders(d *Decision, rc *ResponseConfig) (set []header, remove []string) {
	set = append(make([]header, 0, 2+len(rc.ClaimHeaders)),
		header{rc.PrincipalHeader, d.PrincipalString()},
		header{DecisionIDHeader, d.ID})
	for claim, name := range rc.ClaimHeaders {
		if v, ok := claimHeaderValue(d, claim); ok {
			set = append(set, header{name, v})
		} else {
			remove = append(remove, name)
		}
	}
	if rc.RemoveAuthorization {
		remove = append(remove, "authorization")
	}
	return set, remove
}

// claimHeaderValue renders a top-level scalar claim (or a list of scalars,
// comma-joined) as a header value; anything else, or a value with control
// characters, is not copied.
func claimHeaderValue(d *Decision, claim string) (string, bool) {
	if d.Caller.User == nil {
		return "", false
	}
	v, ok := d.Caller.User.Raw[claim]
	if !ok {
		return "", false
	}
	var s string
	switch t := v.(type) {
	case string:
		s = t
	case json.Number, bool:
		s = fmt.Sprint(t)
	case []any:
		parts := make([]string, 0, len(t))
		for _, e := range t {
			es, ok := e.(string)
			if !ok {
				return "", false
			}
			parts = append(parts, es)
		}
		s = strings.Join(parts, ",")
	default:
		return "", false
	}
	if len(s) > maxClaimHeaderLen || strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return "", false
	}
	return s, true
}

// denyBody is the client-facing JSON body: an error word and the decision
// id, nothing about policies. Decision ids are hex, which needs no JSON
// escaping; anything else goes through encoding/json.
func denyBody(d *Decision) string {
	word := "forbidden"
	if d.Status == 401 {
		word = "unauthorized"
	}
	if isPlainID(d.ID) {
		return `{"error":"` + word + `","decision_id":"` + d.ID + `"}`
	}
	b, _ := json.Marshal(struct {
		Error      string `json:"error"`
		DecisionID string `json:"decision_id"`
	}{word, d.ID})
	return string(b)
}

// isPlainID reports whether s holds only characters JSON strings carry
// unescaped and HTML-safe (encoding/json escapes <, >, &).
func isPlainID(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// wwwAuthenticate is the RFC 6750 §3 challenge for a 401.
func wwwAuthenticate(d *Decision) string {
	if d.Reason == ReasonInvalidToken {
		return `Bearer error="invalid_token"`
	}
	return `Bearer`
}

// CheckResponse shapes a decision for Envoy's gRPC ext_authz filter.
func CheckResponse(d *Decision, rc *ResponseConfig) *authv3.CheckResponse {
	resp := &authv3.CheckResponse{DynamicMetadata: dynamicMetadata(d)}
	if d.Allow {
		set, remove := upstreamHeaders(d, rc)
		resp.Status = &rpcstatus.Status{Code: int32(code.Code_OK)}
		resp.HttpResponse = &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{
			Headers:         overwrite(set),
			HeadersToRemove: remove,
		}}
		return resp
	}
	grpcCode, httpCode := code.Code_PERMISSION_DENIED, typev3.StatusCode_Forbidden
	hdrs := make([]header, 2, 3)
	hdrs[0] = header{"content-type", "application/json"}
	hdrs[1] = header{DecisionIDHeader, d.ID}
	if d.Status == 401 {
		grpcCode, httpCode = code.Code_UNAUTHENTICATED, typev3.StatusCode_Unauthorized
		hdrs = append(hdrs, header{"www-authenticate", wwwAuthenticate(d)})
	}
	resp.Status = &rpcstatus.Status{Code: int32(grpcCode)}
	resp.HttpResponse = &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{
		Status:  &typev3.HttpStatus{Code: httpCode},
		Headers: overwrite(hdrs),
		Body:    denyBody(d),
	}}
	return resp
}

// overwrite turns headers into options that replace any value the request
// already has. The messages are allocated in one block per type rather
// than two allocations per header: this runs on every Check.
func overwrite(hs []header) []*corev3.HeaderValueOption {
	opts := make([]corev3.HeaderValueOption, len(hs))
	vals := make([]corev3.HeaderValue, len(hs))
	out := make([]*corev3.HeaderValueOption, len(hs))
	for i, h := range hs {
		vals[i].Key, vals[i].Value = h.name, h.value
		opts[i].Header = &vals[i]
		opts[i].AppendAction = corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD
		out[i] = &opts[i]
	}
	return out
}

// dynamicMetadata is emitted on every response; Envoy stores it under the
// ext_authz filter's namespace for access logs and later filters.
func dynamicMetadata(d *Decision) *structpb.Struct {
	a := newValues(len(d.Policies)+7, 3) // the strings and bools below
	policies := make([]*structpb.Value, len(d.Policies))
	for i, p := range d.Policies {
		policies[i] = a.str(p)
	}
	// At most 8 keys without would_allow: a map of more than 8 allocates a
	// table instead of a single group.
	n := 8
	if d.Would != nil {
		n++
	}
	set := d.Route.PolicySet
	if d.Rollout != nil && d.Rollout.CandidateEnforced {
		// The set that decided: a canary's candidate for the callers in
		// its share (the decision log has both sets' decisions). It tells
		// which side a caller is on without a key of its own, which would
		// cost every such request a map table.
		set = d.Rollout.Candidate
	}
	f := make(map[string]*structpb.Value, n)
	f["decision_id"] = a.str(d.ID)
	f["principal"] = a.str(d.PrincipalString())
	f["policy_set"] = a.str(set)
	f["policies"] = structpb.NewListValue(&structpb.ListValue{Values: policies})
	f["mode"] = a.str(d.Mode)
	f["allowed"] = a.bool(d.Allow)
	f["reason"] = a.str(d.Reason)
	if d.Route.ID != "" {
		f["route"] = a.str(d.Route.ID)
	}
	if d.Would != nil {
		f["would_allow"] = a.bool(d.Would.Allow)
	}
	return &structpb.Struct{Fields: f}
}

// values hands out structpb values from a few blocks allocated up front
// instead of two allocations per value: metadata is built for every
// response, and its garbage was a third of a Check's allocations. The kind
// blocks may grow (the old arrays stay alive behind the pointers already
// handed out, and their elements are never written again); the Value block
// is not grown because Values must not be copied.
type values struct {
	vals  []structpb.Value
	strs  []structpb.Value_StringValue
	bools []structpb.Value_BoolValue
}

func newValues(strs, bools int) *values {
	return &values{
		vals:  make([]structpb.Value, 0, strs+bools),
		strs:  make([]structpb.Value_StringValue, 0, strs),
		bools: make([]structpb.Value_BoolValue, 0, bools),
	}
}

func (a *values) next() *structpb.Value {
	if len(a.vals) == cap(a.vals) {
		return &structpb.Value{}
	}
	a.vals = a.vals[:len(a.vals)+1]
	return &a.vals[len(a.vals)-1]
}

func (a *values) str(s string) *structpb.Value {
	a.strs = append(a.strs, structpb.Value_StringValue{StringValue: s})
	v := a.next()
	v.Kind = &a.strs[len(a.strs)-1]
	return v
}

func (a *values) bool(b bool) *structpb.Value {
	a.bools = append(a.bools, structpb.Value_BoolValue{BoolValue: b})
	v := a.next()
	v.Kind = &a.bools[len(a.bools)-1]
	return v
}
