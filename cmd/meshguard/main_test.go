package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
)

func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := newRootCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(context.Background())
	return out.String(), err
}

func TestVersion(t *testing.T) {
	out, err := run(t, "version")
	if err != nil || !strings.HasPrefix(out, "meshguard ") {
		t.Fatalf("version: %q %v", out, err)
	}
}

func TestEverySubcommandHasHelp(t *testing.T) {
	for _, c := range newRootCmd().Commands() {
		if c.Short == "" {
			t.Errorf("%s has no short help", c.Name())
		}
		out, err := run(t, c.Name(), "--help")
		if err != nil || !strings.Contains(out, "Usage:") {
			t.Errorf("%s --help: %v %q", c.Name(), err, out)
		}
	}
}

func TestAuthzCheckQuickstart(t *testing.T) {
	out, err := run(t, "authz", "--config", "../../examples/quickstart/authz.yaml", "--check")
	if err != nil || !strings.Contains(out, "configuration OK") || !strings.Contains(out, "orders") {
		t.Fatalf("authz --check: %v\n%s", err, out)
	}
}

func TestAuthzRequiresConfig(t *testing.T) {
	if _, err := run(t, "authz"); err == nil || !strings.Contains(err.Error(), "config") {
		t.Fatalf("err = %v", err)
	}
}

func TestPolicyValidateReportsBrokenSet(t *testing.T) {
	dir := t.TempDir()
	if err := writeFile(dir+"/orders/p.cedar", "permit(principal, action, resource"); err != nil {
		t.Fatal(err)
	}
	out, err := run(t, "policy", "validate", dir)
	if err == nil || !strings.Contains(out, "FAIL orders") || !strings.Contains(out, "p.cedar:1:") {
		t.Fatalf("validate: %v\n%s", err, out)
	}
}

func TestPolicyValidateTypeChecksAgainstTheSchema(t *testing.T) {
	dir := t.TempDir()
	if err := writeFile(dir+"/orders/p.cedar", "permit (principal is Workload, action == Action::\"GET\", resource)\nwhen { principal.namepsace == \"demo\" };\n"+
		"permit (principal, action == Action::\"approve\", resource);"); err != nil {
		t.Fatal(err)
	}
	if err := writeFile(dir+"/ok/p.cedar", `permit (principal is User, action == Action::"GET", resource) when { context.request.headers has "x-tenant" };`); err != nil {
		t.Fatal(err)
	}
	out, err := run(t, "policy", "validate", dir)
	var ex *exitError
	if !errors.As(err, &ex) || ex.code != 1 {
		t.Fatalf("validate: %v, want exit 1\n%s", err, out)
	}
	for _, want := range []string{
		"schema: meshguard.cedarschema",
		"FAIL orders",
		"p.cedar:1:1: policy orders/p.cedar#0: attribute `namepsace` on entity type `Workload` not found",
		"p.cedar:3:1: policy orders/p.cedar#1: unrecognized action `Action::\"approve\"`",
		"ok   ok ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("validate output lacks %q:\n%s", want, out)
		}
	}
	// --no-schema parses only; --action declares a route's action.
	if out, err := run(t, "policy", "validate", dir, "--no-schema"); err != nil {
		t.Fatalf("--no-schema: %v\n%s", err, out)
	}
	if out, err := run(t, "policy", "validate", dir, "--action", "approve"); err == nil || strings.Contains(out, "approve") {
		t.Fatalf("--action approve: %v\n%s", err, out)
	}
	// The quickstart type-checks, with its own configuration's headers.
	if out, err := run(t, "policy", "validate", "--config", "../../examples/quickstart/authz.yaml"); err != nil || !strings.Contains(out, "ok   orders-v2") {
		t.Fatalf("quickstart: %v\n%s", err, out)
	}
}

func TestPolicySchemaPrintsTheConfiguredHeaders(t *testing.T) {
	dir := t.TempDir()
	if err := writeFile(dir+"/authz.yaml", "policies: ./policies\nrequest_headers: [x-tenant]\n"); err != nil {
		t.Fatal(err)
	}
	out, err := run(t, "policy", "schema", "--config", dir+"/authz.yaml", "--action", "approve")
	if err != nil || !strings.Contains(out, `"x-tenant"?: String`) || strings.Contains(out, "user-agent") || !strings.Contains(out, `"approve" appliesTo`) {
		t.Fatalf("schema: %v\n%s", err, out)
	}
	if err := writeFile(dir+"/s.cedarschema", out); err != nil {
		t.Fatal(err)
	}
	// What it prints is a schema validate takes.
	if err := writeFile(dir+"/policies/p.cedar", `permit (principal, action == Action::"approve", resource) when { context.request.headers has "x-tenant" };`); err != nil {
		t.Fatal(err)
	}
	if out, err := run(t, "policy", "validate", dir+"/policies", "--schema", dir+"/s.cedarschema"); err != nil {
		t.Fatalf("validate --schema: %v\n%s", err, out)
	}
}

func TestDemoTokenNeedsSub(t *testing.T) {
	if _, err := run(t, "demo", "token", "--key", "../../examples/quickstart/demo-issuer.jwk"); err == nil {
		t.Fatal("token minted without --sub")
	}
	out, err := run(t, "demo", "token", "--key", "../../examples/quickstart/demo-issuer.jwk", "--sub", "alice", "--roles", "admin")
	if err != nil || strings.Count(strings.TrimSpace(out), ".") != 2 {
		t.Fatalf("demo token: %v %q", err, out)
	}
}

func TestIdentityIssueAndInspect(t *testing.T) {
	dir := t.TempDir()
	out, err := run(t, "identity", "issue", "--spiffe-id", "spiffe://meshguard.test/ns/demo/sa/orders", "--out", dir+"/svid", "--ca-dir", dir+"/ca")
	if err != nil || !strings.Contains(out, "issued spiffe://meshguard.test/ns/demo/sa/orders") {
		t.Fatalf("issue: %v %s", err, out)
	}
	out, err = run(t, "identity", "inspect", dir+"/svid/cert.pem", "--bundle", dir+"/svid/bundle.pem")
	if err != nil || !strings.Contains(out, "verdict:     VALID") || !strings.Contains(out, "ECDSA P-256") {
		t.Fatalf("inspect: %v\n%s", err, out)
	}
	// Against another CA's bundle the chain does not verify.
	if _, err := run(t, "identity", "ca", "init", "--trust-domain", "meshguard.test", "--dir", dir+"/other"); err != nil {
		t.Fatal(err)
	}
	out, err = run(t, "identity", "inspect", dir+"/svid/cert.pem", "--bundle", dir+"/other/ca.crt")
	if err == nil || !strings.Contains(out, "INVALID") {
		t.Fatalf("inspect against a foreign bundle: %v\n%s", err, out)
	}
	// The CA certificate itself is not a workload SVID.
	out, err = run(t, "identity", "inspect", dir+"/ca/ca.crt")
	if err == nil || !strings.Contains(out, "CA flag") {
		t.Fatalf("inspect CA: %v\n%s", err, out)
	}
}
