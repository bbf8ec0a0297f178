package model

import (
	"os"
	"strings"
	"testing"
)

const minimal = `apiVersion: meshguard.dev/v1alpha1
kind: Mesh
metadata: {name: m}
spec:
  trustDomain: example.org
  authz: {address: 127.0.0.1:9191}
  services:
    - name: web
      port: 8080
      calls: [api]
      workloads: [{name: web-0, address: 10.0.0.1}]
    - name: api
      port: 9090
      routes:
        - match: {prefix: /, methods: [get]}
      workloads: [{name: api-0, address: 10.0.0.2}]
`

func TestDefaults(t *testing.T) {
	m, err := Parse([]byte(minimal), nil)
	if err != nil {
		t.Fatal(err)
	}
	api, _ := m.Service("api")
	if api.Namespace != "default" || api.ServiceAccount != "api" || api.Protocol != "http" || api.Policy != "api" {
		t.Fatalf("service defaults: %+v", api)
	}
	r := api.Routes[0]
	if r.ID != "api/0" || r.Mode != "enforce" || r.Policy != "api" || r.Match.Methods[0] != "GET" {
		t.Fatalf("route defaults: %+v", r)
	}
	w := api.Workloads[0]
	if w.InboundPort != 15006 || w.AppPort != 9090 || w.AdminPort != 15000 || w.OutboundAddress != "127.0.0.1" {
		t.Fatalf("workload defaults: %+v", w)
	}
	if m.Spec.Identity.Provider != "meshguard" || m.Spec.XDS.Address != "127.0.0.1:18000" || m.Spec.Authz.Timeout.Duration.String() != "250ms" {
		t.Fatalf("spec defaults: %+v", m.Spec)
	}
	if got := m.SPIFFEID(api); got != "spiffe://example.org/ns/default/sa/api" {
		t.Fatalf("SPIFFE ID %s", got)
	}
	if c := m.Callers("api"); len(c) != 1 || c[0].Name != "web" {
		t.Fatalf("callers of api: %v", c)
	}
}

func TestValidationErrorsNameFieldAndLine(t *testing.T) {
	cases := []struct {
		name, edit, want string
	}{
		{"unknown key", "      port: 8080\n", "      port: 8080\n      prot: x\n"},
		{"bad trust domain", "trustDomain: example.org", "trustDomain: Example Org"},
		{"unknown dependency", "calls: [api]", "calls: [db]"},
		{"duplicate workload", "name: api-0", "name: web-0"},
		{"two path matchers", "match: {prefix: /, methods: [get]}", "match: {prefix: /, path: /x}"},
		{"bad regex", "match: {prefix: /, methods: [get]}", "match: {regex: '(['}"},
		{"bad mode", "match: {prefix: /, methods: [get]}", "match: {prefix: /}\n          mode: audit"},
		{"bad address", "address: 10.0.0.2", "address: api.local"},
		{"duplicate port", "port: 9090", "port: 8080"},
		{"wrong kind", "kind: Mesh", "kind: Cluster"},
		{"spire without socket", "  authz:", "  identity: {provider: spire}\n  authz:"},
		{"relative xds socket", "  authz:", "  xds: {socket: run/xds.sock}\n  authz:"},
		{"negative uid", "address: 10.0.0.2", "address: 10.0.0.2, uid: -1"},
	}
	wantMsg := map[string]string{
		"unknown key":          "line 10: field prot not found",
		"bad trust domain":     "line 5: spec.trustDomain",
		"unknown dependency":   `line 10: spec.services[0].calls[0]: no service "db"`,
		"duplicate workload":   `line 16: spec.services[1].workloads[0].name: workload "web-0" already exists`,
		"two path matchers":    "line 15: spec.services[1].routes[0].match: set exactly one of prefix, path and regex",
		"bad regex":            "spec.services[1].routes[0].match.regex",
		"bad mode":             `spec.services[1].routes[0].mode: "audit"`,
		"bad address":          `spec.services[1].workloads[0].address: "api.local" is not an IP address`,
		"duplicate port":       "spec.services[1].port: 8080 is already the port of service \"web\"",
		"wrong kind":           `line 2: kind: must be "Mesh"`,
		"spire without socket": "spec.identity.spireAgentSocket",
		"relative xds socket":  `spec.xds.socket: "run/xds.sock": an absolute Unix socket path is required`,
		"negative uid":         "cannot unmarshal !!int `-1` into uint32",
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			doc := strings.Replace(minimal, tc.edit, tc.want, 1)
			if doc == minimal {
				t.Fatal("edit did not apply")
			}
			_, err := Parse([]byte(doc), nil)
			if err == nil || !strings.Contains(err.Error(), wantMsg[tc.name]) {
				t.Fatalf("err = %v\nwant mention of %q", err, wantMsg[tc.name])
			}
		})
	}
}

func TestPolicySetsMustExist(t *testing.T) {
	_, err := Parse([]byte(minimal), func(set string) bool { return set == "web" })
	if err == nil || !strings.Contains(err.Error(), `policy set "api" does not exist`) {
		t.Fatalf("err = %v", err)
	}
}

func TestQuickstartMeshIsValid(t *testing.T) {
	data, err := os.ReadFile("../../examples/quickstart/mesh.yaml")
	if err != nil {
		t.Fatal(err)
	}
	sets := map[string]bool{"default": true, "frontend": true, "orders": true, "orders-v2": true, "payments": true}
	m, err := Parse(data, func(s string) bool { return sets[s] })
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Spec.Services) < 3 {
		t.Fatalf("services: %d", len(m.Spec.Services))
	}
}

func TestRateLimitsAreChecked(t *testing.T) {
	const service = "  authz: {address: 127.0.0.1:9191}\n  rateLimitService: {address: 127.0.0.1:8081}\n"
	route := "        - match: {prefix: /, methods: [get]}\n"
	for _, c := range []struct {
		name, spec, route, want string
	}{
		{"no service to ask", "", route + "          rateLimits: [[route]]\n", "spec.services[1].routes[0].rateLimits: needs spec.rateLimitService"},
		{"an unknown part", service, route + "          rateLimits: [[route, user]]\n", `rateLimits[0][1]: "user": want one of route, service, principal, caller, path, remote_address`},
		{"a part twice", service, route + "          rateLimits: [[path, path]]\n", `rateLimits[0][1]: "path" twice`},
		{"an empty descriptor", service, route + "          rateLimits: [[]]\n", "rateLimits[0]: an empty descriptor"},
		{"a principal on a public route", service, route + "          public: true\n          rateLimits: [[principal]]\n", "a public route has no principal"},
		{"a bad address", "  authz: {address: 127.0.0.1:9191}\n  rateLimitService: {address: ratelimit}\n", route, "spec.rateLimitService.address"},
		{"a timeout too long", "  authz: {address: 127.0.0.1:9191}\n  rateLimitService: {address: 127.0.0.1:8081, timeout: 1m}\n", route, "spec.rateLimitService.timeout"},
	} {
		doc := strings.Replace(minimal, route, c.route, 1)
		if c.spec != "" {
			doc = strings.Replace(doc, "  authz: {address: 127.0.0.1:9191}\n", c.spec, 1)
		}
		_, err := Parse([]byte(doc), nil)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v\nwant mention of %q", c.name, err, c.want)
		}
	}
	doc := strings.Replace(strings.Replace(minimal, route, route+"          rateLimits: [[route, principal], [caller]]\n", 1),
		"  authz: {address: 127.0.0.1:9191}\n", service, 1)
	m, err := Parse([]byte(doc), nil)
	if err != nil {
		t.Fatal(err)
	}
	if rl := m.Spec.RateLimitService; rl.Domain != "m" || rl.Timeout.Duration != DefaultRateLimitTimeout {
		t.Fatalf("defaults: %+v", rl)
	}
}
