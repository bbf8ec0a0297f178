package extauthz

import (
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/meshguard/meshguard/internal/contract"
)

// In Envoy's HTTP service mode the authorizer receives a copy of the
// original request and no context extensions or peer principal. The route's
// settings must arrive as headers that Envoy adds itself
// (authorization_request.headers_to_add, in a per-route http_service
// override), and the caller's identity in x-forwarded-client-cert
// (forward_client_cert_details: SANITIZE_SET). Because the sidecar strips
// client-supplied x-meshguard-* headers first, clients cannot forge them —
// so this listener must only be reachable by the sidecar.
var routeHeaders = func() map[string]string {
	m := make(map[string]string, len(contract.Extensions))
	for _, k := range contract.Extensions {
		m[contract.Header(k)] = k
	}
	return m
}()

// authHeadersToRemove is the response header Envoy's HTTP ext_authz reads to
// remove headers from the upstream request.
const authHeadersToRemove = "x-envoy-auth-headers-to-remove"

// FromHTTPRequest extracts attributes from a request forwarded by Envoy's
// HTTP ext_authz service. prefix is the http_service path_prefix to strip.
func FromHTTPRequest(r *http.Request, prefix string) Attributes {
	a := Attributes{
		Method:     strings.ToUpper(r.Method),
		Host:       r.Host,
		Headers:    make(map[string]string, len(r.Header)),
		Extensions: map[string]string{},
		Scheme:     "http",
	}
	path := r.RequestURI
	if path == "" {
		path = r.URL.RequestURI()
	}
	a.Path, a.Query, _ = strings.Cut(path, "?")
	if prefix != "" {
		a.Path = strings.TrimPrefix(a.Path, strings.TrimSuffix(prefix, "/"))
		if a.Path == "" {
			a.Path = "/"
		}
	}
	for k, vs := range r.Header {
		lk := strings.ToLower(k)
		if ext, ok := routeHeaders[lk]; ok {
			a.Extensions[ext] = vs[0]
			continue
		}
		a.Headers[lk] = strings.Join(vs, ",")
	}
	if p := a.Headers["x-forwarded-proto"]; p != "" {
		a.Scheme = p
	}
	a.SourcePrincipal = XFCCURI(a.Headers["x-forwarded-client-cert"])
	return a
}

// XFCCURI returns the URI field of the last element of an
// x-forwarded-client-cert header: the element the nearest proxy added for its
// own downstream peer. Values may be quoted and contain ',' or ';'.
func XFCCURI(xfcc string) string {
	if xfcc == "" {
		return ""
	}
	elems := splitQuoted(xfcc, ',')
	for _, kv := range splitQuoted(elems[len(elems)-1], ';') {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if ok && strings.EqualFold(k, "URI") {
			return unquote(v)
		}
	}
	return ""
}

func splitQuoted(s string, sep byte) []string {
	var out []string
	start, inQuote := 0, false
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '\\' && inQuote:
			i++
		case s[i] == '"':
			inQuote = !inQuote
		case s[i] == sep && !inQuote:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

func unquote(v string) string {
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		v = v[1 : len(v)-1]
		v = strings.ReplaceAll(v, `\"`, `"`)
	}
	return v
}

// httpService is Envoy's HTTP ext_authz service: 200 allows (with headers
// for upstream), anything else is returned to the client as is.
type httpService struct {
	a      *Authorizer
	tr     *tracing
	prefix string
}

func (s *httpService) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	attrs := FromHTTPRequest(r, s.prefix)
	ctx, span := s.tr.start(r.Context(), "meshguard.authz/HTTPCheck", attrs.Headers)
	d := s.a.decideSafely(ctx, &attrs)
	h := w.Header()
	if d.Allow {
		set, remove := upstreamHeaders(&d, &s.a.cfg.Response)
		for _, hd := range set {
			h.Set(hd.name, hd.value)
		}
		if len(remove) > 0 {
			h.Set(authHeadersToRemove, strings.Join(remove, ","))
		}
		w.WriteHeader(http.StatusOK)
	} else {
		h.Set("content-type", "application/json")
		h.Set(DecisionIDHeader, d.ID)
		if d.Status == http.StatusUnauthorized {
			h.Set("www-authenticate", wwwAuthenticate(&d))
		}
		w.WriteHeader(d.Status)
		_, _ = io.WriteString(w, denyBody(&d))
	}
	s.a.record(&d, &attrs, "http", start)
	s.tr.end(span, &d)
}
