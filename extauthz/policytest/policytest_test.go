package policytest

import (
	"bytes"
	"encoding/xml"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func write(t *testing.T, path, body string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

const policies = `
@id("users") permit (principal is User, action == Action::"GET", resource == Service::"orders") when { context.jwt has email };
@id("ns") permit (principal is Workload, action == Action::"GET", resource) when { principal has namespace && principal.namespace == "demo" };
@id("net") forbid (principal, action, resource) unless { context.source.ip.isInRange(ip("10.0.0.0/8")) };
`

func TestTheQuickstartTestsPass(t *testing.T) {
	rs, err := Run("../../examples/quickstart/policies", "../../examples/quickstart/entities.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) < 10 {
		t.Fatalf("%d cases", len(rs))
	}
	for _, r := range rs {
		if !r.Pass {
			t.Errorf("%s:%d %s: %s", r.File, r.Line, r.Name, r.Message)
		}
	}
}

// Each case is decided as the authorizer decides: claims become context.jwt,
// a SPIFFE ID its attributes, source.address its ip.
func TestCasesAreBuiltAsTheAuthorizerBuildsThem(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "orders/p.cedar"), policies)
	write(t, filepath.Join(dir, "orders/p_test.yaml"), `tests:
  - name: a user with an email claim from inside
    principal: {user: alice, claims: {email: a@example.com}}
    action: GET
    resource: orders
    context: {source: {address: "10.1.2.3:4000"}}
    expect: allow
    policies: [orders/p.cedar#users]
  - name: a demo workload from inside
    principal: {workload: "spiffe://td/ns/demo/sa/web"}
    action: Action::"GET"
    resource: Service::"payments"
    context: {source: {address: "10.1.2.3:4000"}}
    expect: allow
  - name: anything from outside
    principal: {workload: "spiffe://td/ns/demo/sa/web"}
    action: GET
    resource: orders
    context: {source: {address: "192.0.2.1:4000"}}
    expect: deny
    policies: [orders/p.cedar#net]
  - name: wrong expectation
    principal: {user: bob}
    action: GET
    resource: orders
    context: {source: {address: "10.1.2.3:4000"}}
    expect: allow
  - name: right decision, wrong policies
    principal: {user: alice, claims: {email: a@example.com}}
    action: GET
    resource: orders
    context: {source: {address: "10.1.2.3:4000"}}
    expect: allow
    policies: [orders/p.cedar#ns]
  - name: an error in a policy
    principal: {user: alice, claims: {email: a@example.com}}
    action: GET
    resource: orders
    expect: allow
`)
	rs, err := Run(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		pass bool
		msg  string
	}{
		{true, ""}, {true, ""}, {true, ""},
		{false, "want allow, got deny (determined by no policy)"},
		{false, "allow as expected, but determined by orders/p.cedar#users, want orders/p.cedar#ns"},
		// No source: the forbid's condition errors, so Cedar skips it and
		// meshguard denies (a failing forbid never lets a permit through).
		{false, "want allow, got deny (determined by orders/p.cedar#net; error in orders/p.cedar#net"},
	}
	if len(rs) != len(want) {
		t.Fatalf("%d results: %+v", len(rs), rs)
	}
	for i, w := range want {
		if rs[i].Pass != w.pass || !strings.HasPrefix(rs[i].Message, w.msg) || rs[i].Set != "orders" {
			t.Errorf("case %d (%s): pass %v %q, want %v %q", i, rs[i].Name, rs[i].Pass, rs[i].Message, w.pass, w.msg)
		}
	}
	if rs[3].Line != 22 {
		t.Errorf("line of the 4th case: %d", rs[3].Line)
	}

	var buf bytes.Buffer
	if err := WriteJUnit(&buf, rs); err != nil {
		t.Fatal(err)
	}
	var doc junitSuites
	if err := xml.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatalf("JUnit report is not XML: %v\n%s", err, buf.String())
	}
	if doc.Tests != 6 || doc.Failures != 3 || len(doc.Suites) != 1 || doc.Suites[0].Cases[3].Failure == nil {
		t.Fatalf("JUnit report: %+v", doc)
	}
}

func TestBadTestFilesAreErrorsWithFileAndLine(t *testing.T) {
	for name, c := range map[string]struct{ body, want string }{
		"unknown key":        {"tests:\n  - name: x\n    principle: anonymous\n", "p_test.yaml: yaml: unmarshal errors:\n  line 3: field principle not found"},
		"unknown principal":  {"tests:\n  - name: x\n    principal: {usr: a}\n    action: GET\n    resource: orders\n    expect: allow\n", "line 3: principal: field usr not found"},
		"two principals":     {"tests:\n  - name: x\n    principal: {user: a, workload: 'spiffe://td/x'}\n    action: GET\n    resource: orders\n    expect: allow\n", `p_test.yaml:2: test "x": principal: give exactly one`},
		"bad expectation":    {"tests:\n  - name: x\n    principal: anonymous\n    action: GET\n    resource: orders\n    expect: maybe\n", `expect "maybe": want allow or deny`},
		"bad UID":            {"tests:\n  - name: x\n    principal: 'User::alice'\n    action: GET\n    resource: orders\n    expect: deny\n", `"User::alice" is not a Cedar UID`},
		"bad SPIFFE ID":      {"tests:\n  - name: x\n    principal: {workload: 'spiffe://TD/x'}\n    action: GET\n    resource: orders\n    expect: deny\n", `workload "spiffe://TD/x"`},
		"no name":            {"tests:\n  - principal: anonymous\n    action: GET\n    resource: orders\n    expect: deny\n", "name is required"},
		"bad context value":  {"tests:\n  - name: x\n    principal: anonymous\n    action: GET\n    resource: orders\n    context: {request: {weight: 1.5}}\n    expect: deny\n", "context:"},
		"two YAML documents": {"tests: []\n---\ntests: []\n", "more than one YAML document"},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			write(t, filepath.Join(dir, "orders/p.cedar"), policies)
			write(t, filepath.Join(dir, "orders/p_test.yaml"), c.body)
			if _, err := Run(dir, ""); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v\nwant mention of %q", err, c.want)
			}
		})
	}
}

func TestAFileMayTestAnotherSet(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "orders/p.cedar"), policies)
	write(t, filepath.Join(dir, "health.cedar"), `permit (principal, action, resource);`)
	write(t, filepath.Join(dir, "tests/cross_test.yaml"), "set: default\ntests:\n  - {name: root set, principal: anonymous, action: GET, resource: x, expect: allow}\n")
	write(t, filepath.Join(dir, "root_test.yaml"), "tests:\n  - {name: root by place, principal: anonymous, action: GET, resource: x, expect: allow}\n")
	write(t, filepath.Join(dir, "nope/n_test.yaml"), "tests:\n  - {name: no such set, principal: anonymous, action: GET, resource: x, expect: allow}\n")
	rs, err := Run(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Result{}
	for _, r := range rs {
		got[r.Name] = r
	}
	if r := got["root set"]; !r.Pass || r.Set != "default" {
		t.Errorf("set: default: %+v", r)
	}
	if r := got["root by place"]; !r.Pass || r.Set != "default" {
		t.Errorf("root file: %+v", r)
	}
	if r := got["no such set"]; r.Pass || !strings.Contains(r.Message, `policy set "nope" is not among the policies`) {
		t.Errorf("missing set: %+v", r)
	}
}
