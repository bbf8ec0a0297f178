package policy

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cedar-policy/cedar-go"
)

func write(t *testing.T, root, rel, content string) {
	t.Helper()
	p := filepath.Join(root, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func req(principal cedar.EntityUID, action string) cedar.Request {
	return cedar.Request{
		Principal: principal,
		Action:    cedar.NewEntityUID("Action", cedar.String(action)),
		Resource:  cedar.NewEntityUID("Service", "orders"),
		Context:   cedar.NewRecord(cedar.RecordMap{}),
	}
}

var alice = cedar.NewEntityUID("User", "alice")

func TestDirectoryLayoutFormsSets(t *testing.T) {
	root := t.TempDir()
	write(t, root, "base.cedar", `permit(principal, action == Action::"GET", resource);`)
	write(t, root, "orders/a.cedar", `@id("read") permit(principal, action == Action::"GET", resource);`)
	write(t, root, "orders/nested/b.cedar", `permit(principal, action == Action::"POST", resource);`)
	write(t, root, "orders/README.md", `not a policy`)
	write(t, root, ".hidden/x.cedar", `this would not parse`)
	write(t, root, "payments/p.cedar", ``)
	s := NewStore(root, "")
	if err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	if !s.Ready() {
		t.Fatal("not ready after a clean load")
	}
	orders, ok := s.Set("orders")
	if !ok {
		t.Fatal("set orders missing")
	}
	wantIDs := []string{"orders/a.cedar#read", "orders/nested/b.cedar#0"}
	if got := orders.IDs(); strings.Join(got, ",") != strings.Join(wantIDs, ",") {
		t.Fatalf("ids = %v, want %v", got, wantIDs)
	}
	if d, ok := s.Set(DefaultSet); !ok || d.Len() != 1 {
		t.Fatal("root files do not form the default set")
	}
	if _, ok := s.Set(".hidden"); ok {
		t.Fatal("hidden directory loaded")
	}
	if p, ok := s.Set("payments"); !ok || p.Len() != 0 {
		t.Fatal("an empty set should load with no policies (and deny everything)")
	}
	// A view reaches the other sets of its own load (shadow candidates).
	view, ok := s.Lookup("orders")
	other, otherOK := view.Other(DefaultSet)
	if d, _ := s.Set(DefaultSet); !ok || view.Set != orders || !otherOK || other != d {
		t.Fatal("Lookup's view does not hold the load's sets")
	}
	if _, ok := view.Other(".hidden"); ok {
		t.Fatal("Other found a set that did not load")
	}
	res := orders.Evaluate(cedar.EntityMap{}, req(alice, "GET"))
	if !res.Allow || len(res.Determining) != 1 || res.Determining[0] != "orders/a.cedar#read" {
		t.Fatalf("evaluate = %+v", res)
	}
}

func TestParseErrorNamesFileAndLine(t *testing.T) {
	root := t.TempDir()
	write(t, root, "orders/ok.cedar", `permit(principal, action, resource);`)
	write(t, root, "orders/bad.cedar", "permit(principal, action, resource);\n\nforbid(principal,\n  action == Foo, resource);")
	s := NewStore(root, "")
	err := s.Reload()
	if err == nil {
		t.Fatal("broken set loaded")
	}
	if !strings.Contains(err.Error(), "bad.cedar:4:") {
		t.Fatalf("error %q does not name bad.cedar:4", err)
	}
	if s.Ready() {
		t.Fatal("ready although a set never loaded")
	}
	if _, ok := s.Set("orders"); ok {
		t.Fatal("a broken set must not be served")
	}
}

func TestDuplicateIDIsAnError(t *testing.T) {
	_, err := ParseSet("s", map[string]string{
		"a.cedar": `@id("x") permit(principal, action, resource); @id("x") forbid(principal, action, resource);`,
	})
	if err == nil || !strings.Contains(err.Error(), `duplicate policy id "s/a.cedar#x"`) {
		t.Fatalf("err = %v", err)
	}
}

func TestReloadKeepsLastGoodSet(t *testing.T) {
	root := t.TempDir()
	write(t, root, "orders/p.cedar", `@id("get") permit(principal, action == Action::"GET", resource);`)
	var hooks []string
	s := NewStore(root, "", WithReloadHook(func(set string, err error) {
		if err != nil {
			hooks = append(hooks, set)
		}
	}))
	if err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	v1, _ := s.Set("orders")

	write(t, root, "orders/p.cedar", `@id("get") permit(principal, action == Action::"GET", resource`) // broken
	if err := s.Reload(); err == nil {
		t.Fatal("broken edit reported no error")
	}
	v2, ok := s.Set("orders")
	if !ok || v2 != v1 {
		t.Fatal("broken edit replaced the last good set")
	}
	if len(hooks) != 1 || hooks[0] != "orders" {
		t.Fatalf("reload hook errors = %v, want [orders]", hooks)
	}
	st := s.Status()
	if !st.Ready || len(st.Sets) != 1 || st.Sets[0].LastError == "" || st.Sets[0].Version != v1.Version {
		t.Fatalf("status = %+v", st)
	}

	write(t, root, "orders/p.cedar", `@id("post") permit(principal, action == Action::"POST", resource);`)
	if err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	v3, _ := s.Set("orders")
	if v3.Version == v1.Version || !v3.Evaluate(cedar.EntityMap{}, req(alice, "POST")).Allow {
		t.Fatal("good edit not applied")
	}
	if s.Status().Sets[0].LastError != "" {
		t.Fatal("error not cleared after a good load")
	}

	if err := os.RemoveAll(filepath.Join(root, "orders")); err != nil {
		t.Fatal(err)
	}
	if err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Set("orders"); ok {
		t.Fatal("removed set still served")
	}
}

func TestForbidThatErrorsDenies(t *testing.T) {
	set, err := ParseSet("s", map[string]string{"p.cedar": `
		@id("allow") permit(principal, action, resource);
		@id("guard") forbid(principal, action, resource) when { context.missing.field == 1 };`})
	if err != nil {
		t.Fatal(err)
	}
	res := set.Evaluate(cedar.EntityMap{}, req(alice, "GET"))
	if res.Allow {
		t.Fatal("an erroring forbid let the permit through")
	}
	if !res.ForbidErrored || len(res.Errors) != 1 || res.Errors[0].PolicyID != "s/p.cedar#guard" {
		t.Fatalf("result = %+v", res)
	}
	if len(res.Determining) != 1 || res.Determining[0] != "s/p.cedar#guard" {
		t.Fatalf("determining = %v, want the erroring forbid", res.Determining)
	}
}

func TestPermitThatErrorsIsSkipped(t *testing.T) {
	set, err := ParseSet("s", map[string]string{"p.cedar": `
		@id("bad") permit(principal, action, resource) when { context.missing == 1 };`})
	if err != nil {
		t.Fatal(err)
	}
	res := set.Evaluate(cedar.EntityMap{}, req(alice, "GET"))
	if res.Allow || res.ForbidErrored || len(res.Errors) != 1 {
		t.Fatalf("result = %+v", res)
	}
}

func TestEntitiesAndOverlay(t *testing.T) {
	root := t.TempDir()
	write(t, root, "p.cedar", `permit(principal in Role::"staff", action, resource);`)
	write(t, root, "entities.json", `[
		{"uid":{"type":"Role","id":"admin"},"parents":[{"type":"Role","id":"staff"}],"attrs":{}},
		{"uid":{"type":"User","id":"bob"},"parents":[{"type":"Role","id":"staff"}],"attrs":{"team":"ops"}}
	]`)
	s := NewStore(root, filepath.Join(root, "entities.json"))
	if err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	set, _ := s.Set(DefaultSet)
	// alice is admin by token; admin is staff by the static store: transitive membership.
	aliceEnt := cedar.Entity{UID: alice, Parents: cedar.NewEntityUIDSet(cedar.NewEntityUID("Role", "admin"))}
	if !set.Evaluate(Overlay{Static: s.Entities(), Extra: &aliceEnt}, req(alice, "GET")).Allow {
		t.Fatal("transitive role through the static store not honoured")
	}
	// bob has no roles in his token, but the static store makes him staff.
	bob := cedar.NewEntityUID("User", "bob")
	merged := Merge(cedar.Entity{UID: bob, Attributes: cedar.NewRecord(cedar.RecordMap{"email": cedar.String("b@x")})}, s.Entities())
	if !set.Evaluate(Overlay{Static: s.Entities(), Extra: &merged}, req(bob, "GET")).Allow {
		t.Fatal("static parents lost in merge")
	}
	if _, ok := merged.Attributes.Get("team"); !ok {
		t.Fatal("static attributes lost in merge")
	}
	if _, ok := merged.Attributes.Get("email"); !ok {
		t.Fatal("derived attributes lost in merge")
	}

	write(t, root, "entities.json", `[{"uid":`) // broken
	if err := s.Reload(); err == nil {
		t.Fatal("broken entities reported no error")
	}
	if len(s.Entities()) != 2 || s.Status().EntitiesError == "" {
		t.Fatal("broken entities file replaced the last good store")
	}
}

func TestConfigMapStyleSymlinks(t *testing.T) {
	root := t.TempDir()
	write(t, root, "..2026_11_26/orders/p.cedar", `permit(principal, action, resource);`)
	if err := os.Symlink("..2026_11_26", filepath.Join(root, "..data")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("..data/orders", filepath.Join(root, "orders")); err != nil {
		t.Fatal(err)
	}
	s := NewStore(root, "")
	if err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Set("orders"); !ok {
		t.Fatal("symlinked set not loaded")
	}
	if len(s.Status().Sets) != 1 {
		t.Fatalf("sets = %+v, want only orders", s.Status().Sets)
	}
}

func TestMissingDirectory(t *testing.T) {
	s := NewStore(filepath.Join(t.TempDir(), "nope"), "")
	err := s.Reload()
	if err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("err = %v", err)
	}
	if s.Ready() {
		t.Fatal("ready without a policy directory")
	}
}

func TestInvalidSetDirectoryName(t *testing.T) {
	root := t.TempDir()
	write(t, root, "bad name/p.cedar", `permit(principal, action, resource);`)
	if err := NewStore(root, "").Reload(); err == nil || !strings.Contains(err.Error(), "not a valid policy set name") {
		t.Fatalf("err = %v", err)
	}
}
