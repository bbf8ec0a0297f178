// Package policytest runs the test cases written beside Cedar policies, as
// `opa test` runs Rego tests: each case is a request as meshguard builds
// it — principal (with roles and claims, or a SPIFFE ID), action, resource,
// context — and the decision expected of a policy set, optionally with the
// policies that must determine it.
//
// Test files are the *_test.yaml files under a policy directory. A file
// tests the set of the directory it is in (the root's files test
// "default"), unless it names another with `set:`. See docs/policy-model.md
// ("Testing policies") for the format.
package policytest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/cedar-policy/cedar-go"
	"github.com/cedar-policy/cedar-go/types"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"go.yaml.in/yaml/v3"

	"github.com/meshguard/meshguard/extauthz"
	"github.com/meshguard/meshguard/extauthz/jwt"
	"github.com/meshguard/meshguard/extauthz/policy"
	"github.com/meshguard/meshguard/internal/contract"
	"github.com/meshguard/meshguard/internal/yamlfile"
)

// File is one test file.
type File struct {
	// Set is the policy set the cases decide with (default: the set of the
	// file's directory).
	Set   string `yaml:"set"`
	Tests []Case `yaml:"tests"`
}

// Case is one test case.
type Case struct {
	Name      string    `yaml:"name"`
	Principal Principal `yaml:"principal"`
	// Action is a Cedar UID (Action::"GET") or just its id ("GET").
	Action string `yaml:"action"`
	// Resource is a Cedar UID (Service::"orders") or a service name.
	Resource string `yaml:"resource"`
	// Context is the request context as meshguard builds it
	// (docs/policy-model.md); Cedar JSON, so extension values are written
	// {__extn: {fn: ip, arg: "10.0.0.1"}}. source.ip is derived from
	// source.address and jwt from the user's claims when left out.
	Context map[string]any `yaml:"context"`
	// Expect is allow or deny.
	Expect string `yaml:"expect"`
	// Policies, when set, are exactly the policies that must determine
	// the decision ([] for a deny that no policy determined).
	Policies *[]string `yaml:"policies"`
}

// Principal is who asks: a user (with roles and token claims), a workload
// (its SPIFFE ID), anonymous, or any Cedar entity by UID.
type Principal struct {
	User      string         `yaml:"user"`
	Workload  string         `yaml:"workload"`
	Anonymous bool           `yaml:"anonymous"`
	UID       string         `yaml:"uid"`
	Roles     []string       `yaml:"roles"`
	Claims    map[string]any `yaml:"claims"`
	Attrs     map[string]any `yaml:"attrs"`
}

// UnmarshalYAML takes a mapping, or a string: "anonymous" or a Cedar UID
// (User::"alice", Workload::"spiffe://…").
func (p *Principal) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		if n.Value == "anonymous" {
			p.Anonymous = true
		} else {
			p.UID = n.Value
		}
		return nil
	}
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: principal: a mapping or a string", n.Line)
	}
	for i := 0; i < len(n.Content); i += 2 {
		switch k := n.Content[i].Value; k {
		case "user", "workload", "anonymous", "uid", "roles", "claims", "attrs":
		default:
			return fmt.Errorf("line %d: principal: field %s not found (user, workload, anonymous, uid, roles, claims, attrs)", n.Content[i].Line, k)
		}
	}
	type plain Principal
	return n.Decode((*plain)(p))
}

// Result is one case's outcome.
type Result struct {
	File    string `json:"file"` // relative to the policy directory
	Line    int    `json:"line"`
	Set     string `json:"policy_set"`
	Name    string `json:"name"`
	Pass    bool   `json:"pass"`
	Message string `json:"message,omitempty"` // why it failed
}

// Run loads the policies under dir (with the entities file, if any) and
// runs every test file there. It returns an error when the policies, the
// entities or a test file cannot be read; a case that decides otherwise
// than expected is a failed Result.
func Run(dir, entities string) ([]Result, error) {
	store := policy.NewStore(dir, entities, policy.WithLogger(discard))
	if err := store.Reload(); err != nil {
		return nil, fmt.Errorf("policies: %w", err)
	}
	files, err := Files(dir)
	if err != nil {
		return nil, err
	}
	var out []Result
	for _, f := range files {
		rs, err := runFile(store, dir, f)
		if err != nil {
			return out, err
		}
		out = append(out, rs...)
	}
	return out, nil
}

// Files lists the test files under dir, sorted.
func Files(dir string) ([]string, error) {
	var files []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if strings.HasPrefix(d.Name(), ".") && p != dir {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.IsDir() && (strings.HasSuffix(d.Name(), "_test.yaml") || strings.HasSuffix(d.Name(), "_test.yml")) {
			files = append(files, p)
		}
		return nil
	})
	slices.Sort(files)
	return files, err
}

func runFile(store *policy.Store, dir, path string) ([]Result, error) {
	rel, _ := filepath.Rel(dir, path)
	rel = filepath.ToSlash(rel)
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var f File
	if err := yamlfile.Decode(data, &f); err != nil {
		return nil, fmt.Errorf("%s: %w", rel, err)
	}
	lines := caseLines(data)
	set := f.Set
	if set == "" {
		set = contract.DefaultSet
		if i := strings.IndexByte(rel, '/'); i > 0 {
			set = rel[:i]
		}
	}
	var out []Result
	for i, c := range f.Tests {
		r := Result{File: rel, Set: set, Name: c.Name}
		if i < len(lines) {
			r.Line = lines[i]
		}
		req, principal, err := c.request()
		if err != nil {
			return out, fmt.Errorf("%s:%d: test %q: %w", rel, r.Line, c.Name, err)
		}
		view, ok := store.Lookup(set)
		if !ok {
			r.Message = fmt.Sprintf("policy set %q is not among the policies", set)
			out = append(out, r)
			continue
		}
		merged := policy.Merge(principal, view.Entities)
		res := view.Set.Evaluate(policy.Overlay{Static: view.Entities, Extra: &merged}, req)
		r.Pass, r.Message = c.judge(res)
		out = append(out, r)
	}
	return out, nil
}

// caseLines are the lines of the tests' items, in order.
func caseLines(data []byte) []int {
	var root yaml.Node
	if yaml.Unmarshal(data, &root) != nil || len(root.Content) == 0 {
		return nil
	}
	m := root.Content[0]
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == "tests" {
			var lines []int
			for _, item := range m.Content[i+1].Content {
				lines = append(lines, item.Line)
			}
			return lines
		}
	}
	return nil
}

// request builds the case's Cedar request and principal entity, as the
// authorizer builds them.
func (c *Case) request() (cedar.Request, cedar.Entity, error) {
	if c.Name == "" {
		return cedar.Request{}, cedar.Entity{}, errors.New("name is required")
	}
	if c.Expect != "allow" && c.Expect != "deny" {
		return cedar.Request{}, cedar.Entity{}, fmt.Errorf("expect %q: want allow or deny", c.Expect)
	}
	p, claims, err := c.Principal.entity()
	if err != nil {
		return cedar.Request{}, cedar.Entity{}, fmt.Errorf("principal: %w", err)
	}
	if c.Action == "" || c.Resource == "" {
		return cedar.Request{}, cedar.Entity{}, errors.New("action and resource are required")
	}
	action, err := uid(c.Action, extauthz.TypeAction)
	if err != nil {
		return cedar.Request{}, cedar.Entity{}, fmt.Errorf("action: %w", err)
	}
	resource, err := uid(c.Resource, extauthz.TypeService)
	if err != nil {
		return cedar.Request{}, cedar.Entity{}, fmt.Errorf("resource: %w", err)
	}
	ctx := c.Context
	if ctx == nil {
		ctx = map[string]any{}
	}
	if _, ok := ctx["jwt"]; !ok && claims != nil {
		ctx["jwt"] = claims
	}
	if src, ok := ctx["source"].(map[string]any); ok {
		if addr, ok := src["address"].(string); ok && src["ip"] == nil {
			if ap, err := netip.ParseAddrPort(addr); err == nil {
				src["ip"] = map[string]any{"__extn": map[string]any{"fn": "ip", "arg": ap.Addr().Unmap().String()}}
			}
		}
	}
	rec, err := record(ctx)
	if err != nil {
		return cedar.Request{}, cedar.Entity{}, fmt.Errorf("context: %w", err)
	}
	return cedar.Request{Principal: p.UID, Action: action, Resource: resource, Context: rec}, p, nil
}

// entity is the principal as the authorizer makes it: a user from its
// token (claims as attributes, roles as Role parents), a workload from its
// SPIFFE ID. claims, for a user, are also context.jwt.
func (p *Principal) entity() (cedar.Entity, map[string]any, error) {
	n := 0
	for _, set := range []bool{p.User != "", p.Workload != "", p.Anonymous, p.UID != ""} {
		if set {
			n++
		}
	}
	if n != 1 {
		return cedar.Entity{}, nil, errors.New("give exactly one of user, workload, anonymous and uid")
	}
	roles := make([]cedar.EntityUID, len(p.Roles))
	for i, r := range p.Roles {
		roles[i] = cedar.NewEntityUID(extauthz.TypeRole, cedar.String(r))
	}
	var e cedar.Entity
	var claims map[string]any
	switch {
	case p.User != "":
		claims = map[string]any{"sub": p.User}
		for k, v := range p.Claims {
			claims[k] = v
		}
		rec, err := claimsRecord(claims)
		if err != nil {
			return e, nil, fmt.Errorf("claims: %w", err)
		}
		e = jwt.UserEntity(p.User, p.Roles, rec)
	case p.Workload != "":
		id, err := spiffeid.FromString(p.Workload)
		if err != nil {
			return e, nil, fmt.Errorf("workload %q: %w", p.Workload, err)
		}
		e = extauthz.WorkloadEntity(id)
		e.Parents = cedar.NewEntityUIDSet(roles...)
	case p.Anonymous:
		e = cedar.Entity{UID: extauthz.AnonymousUID, Parents: cedar.NewEntityUIDSet(roles...)}
	default:
		u, err := uid(p.UID, "")
		if err != nil {
			return e, nil, err
		}
		e = cedar.Entity{UID: u, Parents: cedar.NewEntityUIDSet(roles...)}
	}
	if p.Attrs != nil {
		attrs, err := record(p.Attrs)
		if err != nil {
			return e, nil, fmt.Errorf("attrs: %w", err)
		}
		m := e.Attributes.Map()
		if m == nil {
			m = cedar.RecordMap{}
		}
		for k, v := range attrs.All() {
			m[k] = v
		}
		e.Attributes = cedar.NewRecord(m)
	}
	return e, claims, nil
}

// uid reads a Cedar UID, or a bare id of typ.
func uid(s string, typ cedar.EntityType) (cedar.EntityUID, error) {
	if !strings.Contains(s, "::") {
		if typ == "" {
			return cedar.EntityUID{}, fmt.Errorf("%q is not a Cedar UID (Type::\"id\")", s)
		}
		return cedar.NewEntityUID(typ, cedar.String(s)), nil
	}
	var u types.EntityUID
	if err := u.UnmarshalCedar([]byte(s)); err != nil {
		return u, fmt.Errorf("%q is not a Cedar UID (Type::\"id\"): %w", s, err)
	}
	return u, nil
}

// record turns a YAML mapping into a Cedar record through Cedar's JSON form.
func record(m map[string]any) (cedar.Record, error) {
	js, err := json.Marshal(m)
	if err != nil {
		return cedar.Record{}, err
	}
	var r cedar.Record
	if err := r.UnmarshalJSON(js); err != nil {
		return r, err
	}
	return r, nil
}

// claimsRecord maps claims as the verifier does a token's (JSON numbers,
// nulls dropped, decimals).
func claimsRecord(claims map[string]any) (cedar.Record, error) {
	js, err := json.Marshal(claims)
	if err != nil {
		return cedar.Record{}, err
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.UseNumber()
	var raw map[string]any
	if err := dec.Decode(&raw); err != nil {
		return cedar.Record{}, err
	}
	rec, _ := jwt.ClaimsRecord(raw)
	return rec, nil
}

// judge compares a result with the case's expectation.
func (c *Case) judge(res policy.Result) (bool, string) {
	got := "deny"
	if res.Allow {
		got = "allow"
	}
	determining := "no policy"
	if len(res.Determining) > 0 {
		determining = strings.Join(res.Determining, ", ")
	}
	var errs string
	for _, e := range res.Errors {
		errs += fmt.Sprintf("; error in %s: %s", e.PolicyID, e.Message)
	}
	if got != c.Expect {
		return false, fmt.Sprintf("want %s, got %s (determined by %s%s)", c.Expect, got, determining, errs)
	}
	if c.Policies != nil {
		want := slices.Clone(*c.Policies)
		slices.Sort(want)
		if !slices.Equal(want, res.Determining) {
			w := "no policy"
			if len(want) > 0 {
				w = strings.Join(want, ", ")
			}
			return false, fmt.Sprintf("%s as expected, but determined by %s, want %s%s", got, determining, w, errs)
		}
	}
	return true, ""
}

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))
