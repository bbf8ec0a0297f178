package schema

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cedar-policy/cedar-go"
)

func check(t *testing.T, c *Checker, src string) error {
	t.Helper()
	list, err := cedar.NewPolicyListFromBytes("orders/read.cedar", []byte(src))
	if err != nil || len(list) != 1 {
		t.Fatalf("parse %q: %v", src, err)
	}
	return c.Check("orders/read.cedar#p", list[0])
}

var builtin = Builtin(Options{Headers: []string{"user-agent", "x-tenant"}, Actions: []string{"approve"}})

func TestPoliciesOfTheRequestModelTypeCheck(t *testing.T) {
	for _, src := range []string{
		// docs/policy-model.md and the quickstart.
		`permit (principal, action == Action::"GET", resource == Service::"orders") when { context.request.path like "/catalog*" };`,
		`permit (principal is User, action == Action::"GET", resource == Service::"orders");`,
		`permit (principal in Role::"staff", action in [Action::"POST", Action::"PUT", Action::"DELETE"], resource == Service::"orders");`,
		`permit (principal == Workload::"spiffe://meshguard.local/ns/demo/sa/frontend", action == Action::"POST", resource == Service::"orders");`,
		`forbid (principal in Role::"suspended", action, resource);`,
		`permit (principal is Workload, action == Action::"GET", resource == Service::"orders")
		 when { principal.trust_domain == "meshguard.local" && principal has namespace && principal.namespace == "demo" };`,
		`forbid (principal, action, resource == Service::"payments") unless { context.source has ip && context.source.ip.isInRange(ip("10.0.0.0/8")) };`,
		// Optional parts read behind has; headers by their allow-listed name.
		`permit (principal, action, resource) when { context has jwt && context.jwt has email && context.jwt.email like "*@example.com" };`,
		`permit (principal is User, action, resource) when { principal has groups && principal.groups.contains("ops") };`,
		`permit (principal, action, resource) when { context.request.headers has "x-tenant" && context.request.headers["x-tenant"] == "acme" };`,
		`permit (principal, action, resource) when { context.route.mode == "enforce" && context.route.policy_set == "orders" };`,
		`permit (principal, action == Action::"approve", resource);`,
	} {
		if err := check(t, builtin, src); err != nil {
			t.Errorf("%s\n  refused: %v", src, err)
		}
	}
}

func TestTyposAreReportedWithFileLineAndColumn(t *testing.T) {
	for _, c := range []struct{ name, src, want string }{
		{"misspelt attribute", "permit (principal is Workload, action, resource)\nwhen { principal.namepsace == \"demo\" };",
			"orders/read.cedar:1:1: policy orders/read.cedar#p: attribute `namepsace` on entity type `Workload` not found"},
		{"misspelt entity type", `permit (principal is Usr, action, resource);`, "unrecognized entity type `Usr`"},
		{"misspelt action", `permit (principal, action == Action::"GTE", resource);`, "unrecognized action `Action::\"GTE\"`"},
		{"a header not allow-listed", `permit (principal, action, resource) when { context.request.headers["x-tenat"] == "a" };`,
			"attribute `x-tenat` in context not found"},
		{"an optional claim read without has", `permit (principal, action, resource) when { context.jwt.sub == "a" };`,
			"unable to guarantee safety of access to optional attribute `jwt` in context"},
		{"a type error", `permit (principal, action, resource) when { context.request.path > 3 };`, "Long"},
		{"a context attribute that does not exist", `permit (principal, action, resource) when { context.tenant == "a" };`,
			"attribute `tenant` in context not found"},
	} {
		err := check(t, builtin, c.src)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v\nwant mention of %q", c.name, err, c.want)
			continue
		}
		// Each problem once, not once per HTTP method.
		if n := strings.Count(err.Error(), "; "); n > 1 {
			t.Errorf("%s: the problem is repeated: %v", c.name, err)
		}
	}
}

func TestAnActionNotDeclaredIsRefusedUntilAdded(t *testing.T) {
	src := `permit (principal, action == Action::"refund", resource);`
	if err := check(t, Builtin(Options{}), src); err == nil {
		t.Fatal("an undeclared action type-checked")
	}
	if err := check(t, Builtin(Options{Actions: []string{"refund"}}), src); err != nil {
		t.Fatal(err)
	}
}

func TestHeaderNamesAreQuoted(t *testing.T) {
	// A header name is any token character; the schema must still parse.
	c := Builtin(Options{Headers: []string{`x-a"b`, "x-a.b", "x-a", "x-a"}})
	if err := check(t, c, `permit (principal, action, resource) when { context.request.headers has "x-a.b" };`); err != nil {
		t.Fatal(err)
	}
}

func TestASchemaFileReplacesTheBuiltinOne(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "mine.cedarschema")
	custom := strings.Replace(string(Text(Options{})), "  roles?: Set<String>,\n};\n\n// A caller known", "  roles?: Set<String>,\n  department?: String,\n};\n\n// A caller known", 1)
	if err := os.WriteFile(p, []byte(custom), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	src := `permit (principal is User, action, resource) when { principal has department && principal.department == "sales" };`
	if err := check(t, c, src); err != nil {
		t.Fatalf("custom claim refused: %v", err)
	}
	// (Cedar types `has` of an undeclared attribute as false, so only a
	// read shows that the built-in schema lacks it.)
	if err := check(t, builtin, `permit (principal is User, action, resource) when { principal.department == "sales" };`); err == nil {
		t.Fatal("the built-in schema knows no department")
	}
	if c.Name() != p {
		t.Fatalf("name %q", c.Name())
	}
}

func TestBadSchemaFilesAreRefusedWithTheirName(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{
		"syntax.cedarschema":     "entity User {",
		"unresolved.cedarschema": "entity User in [Group];",
	} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := Load(p); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
	if _, err := Load(filepath.Join(dir, "missing.cedarschema")); err == nil {
		t.Error("a missing schema file loaded")
	}
}
