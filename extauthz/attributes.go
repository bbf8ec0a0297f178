package extauthz

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
)

// MaxHeaders bounds the headers taken from one request. Envoy's own default
// limit is 100; anything far above it did not come from a sane proxy.
const MaxHeaders = 512

// Attributes is what the authorizer knows about one request, whichever
// transport carried it (gRPC CheckRequest or the HTTP service mode).
type Attributes struct {
	Method string
	Path   string // without the query
	Query  string // without the '?'
	Host   string
	Scheme string
	// Headers has lower-case names; repeated headers are joined with ",".
	Headers map[string]string
	// SourceAddress is the downstream peer, "ip:port".
	SourceAddress string
	// SourcePrincipal is the downstream peer certificate's identity as Envoy
	// reports it (first URI SAN, else DNS SAN, else subject); "" without mTLS.
	SourcePrincipal string
	// DestinationPrincipal is the identity of the local certificate the
	// request arrived on (the destination workload's SPIFFE ID with mTLS).
	DestinationPrincipal string
	// Extensions are the route's context extensions (meshguard.*).
	Extensions map[string]string
}

// FromCheckRequest extracts the attributes of an Envoy CheckRequest. It is a
// pure function; a request without HTTP attributes is an error.
func FromCheckRequest(req *authv3.CheckRequest) (Attributes, error) {
	ac := req.GetAttributes()
	h := ac.GetRequest().GetHttp()
	if h == nil {
		return Attributes{}, errors.New("check request has no HTTP attributes")
	}
	a := Attributes{
		Method:               strings.ToUpper(h.GetMethod()),
		Host:                 h.GetHost(),
		Scheme:               h.GetScheme(),
		SourcePrincipal:      ac.GetSource().GetPrincipal(),
		DestinationPrincipal: ac.GetDestination().GetPrincipal(),
		Extensions:           ac.GetContextExtensions(),
	}
	// Envoy sends the query inside path and leaves query empty.
	a.Path, a.Query, _ = strings.Cut(h.GetPath(), "?")
	if q := h.GetQuery(); q != "" && a.Query == "" {
		a.Query = q
	}
	if sa := ac.GetSource().GetAddress().GetSocketAddress(); sa != nil {
		a.SourceAddress = net.JoinHostPort(sa.GetAddress(), strconv.FormatUint(uint64(sa.GetPortValue()), 10))
	}
	// With encode_raw_headers Envoy fills header_map instead of headers.
	if hm := h.GetHeaderMap().GetHeaders(); len(hm) > 0 {
		if len(hm) > MaxHeaders {
			return Attributes{}, fmt.Errorf("%d headers, over the limit of %d", len(hm), MaxHeaders)
		}
		a.Headers = make(map[string]string, len(hm))
		for _, hv := range hm {
			v := hv.GetValue()
			if v == "" && len(hv.GetRawValue()) > 0 {
				v = string(hv.GetRawValue())
			}
			k := strings.ToLower(hv.GetKey())
			if prev, ok := a.Headers[k]; ok {
				v = prev + "," + v
			}
			a.Headers[k] = v
		}
	} else {
		if len(h.GetHeaders()) > MaxHeaders {
			return Attributes{}, fmt.Errorf("%d headers, over the limit of %d", len(h.GetHeaders()), MaxHeaders)
		}
		a.Headers = h.GetHeaders()
		for k := range a.Headers {
			if k != strings.ToLower(k) {
				a.Headers = lowerKeys(a.Headers)
				break
			}
		}
	}
	if a.Method == "" {
		if m := a.Headers[":method"]; m != "" {
			a.Method = strings.ToUpper(m)
		}
	}
	if a.Method == "" {
		return Attributes{}, errors.New("check request has no method")
	}
	return a, nil
}

func lowerKeys(in map[string]string) map[string]string {
	out := make(map[string]string, len(in))
	for k, v := range in {
		k = strings.ToLower(k)
		if prev, ok := out[k]; ok {
			v = prev + "," + v
		}
		out[k] = v
	}
	return out
}

// BearerToken returns the credential of an "Authorization: Bearer" header
// (RFC 6750 §2.1). ok is false when there is no Authorization header or it
// uses another scheme; a Bearer header with an empty credential returns
// ("", true), which verification then refuses.
func BearerToken(headers map[string]string) (token string, ok bool) {
	v, present := headers["authorization"]
	if !present {
		return "", false
	}
	v = strings.TrimSpace(v)
	scheme, tok, _ := strings.Cut(v, " ")
	if !strings.EqualFold(scheme, "bearer") {
		return "", false
	}
	return strings.TrimSpace(tok), true
}
