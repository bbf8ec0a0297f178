package main

import (
	"bytes"
	"context"
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
