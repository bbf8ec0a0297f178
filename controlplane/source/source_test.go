package source

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

const mesh = `apiVersion: meshguard.dev/v1alpha1
kind: Mesh
metadata: {name: m}
spec:
  trustDomain: example.org
  policies: ./policies
  authz: {address: 127.0.0.1:9191}
  filters:
    - {name: h, kind: headers, file: ../wasm/headers.wasm, config: {}}
  services:
    - name: api
      port: 9090
      policy: api
      routes:
        - match: {prefix: /}
      workloads: [{name: api-0, address: 10.0.0.2}]
`

func write(t *testing.T, p, body string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestAFileResolvesItsPathsAndChecksPolicySets(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "mesh.yaml"), mesh)
	write(t, filepath.Join(dir, "policies", "api", "p.cedar"), `permit (principal, action, resource);`)
	f := File{Path: filepath.Join(dir, "mesh.yaml")}
	m, err := f.Load()
	if err != nil {
		t.Fatal(err)
	}
	if m.Spec.Policies != filepath.Join(dir, "policies") || m.Spec.Filters[0].File != filepath.Join(filepath.Dir(dir), "wasm", "headers.wasm") {
		t.Fatalf("paths not resolved against the file: %q %q", m.Spec.Policies, m.Spec.Filters[0].File)
	}
	if f.String() != f.Path {
		t.Fatalf("String = %q", f.String())
	}
	// A route naming a set the directory lacks is refused with the field.
	write(t, filepath.Join(dir, "mesh.yaml"), strings.Replace(mesh, "policy: api", "policy: nope", 1))
	if _, err := f.Load(); err == nil || !strings.Contains(err.Error(), `line 15: spec.services[0].routes[0].policy: policy set "nope" does not exist`) ||
		!strings.Contains(err.Error(), "mesh.yaml") {
		t.Fatalf("err = %v", err)
	}
	if _, err := (File{Path: filepath.Join(dir, "missing.yaml")}).Load(); err == nil {
		t.Fatal("a missing file loaded")
	}
}

// Watch signals edits of the mesh file and of the policy directory, not
// of files that merely sit beside the mesh.
func TestWatchSignalsTheMeshAndItsPolicies(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "mesh.yaml"), mesh)
	write(t, filepath.Join(dir, "policies", "api", "p.cedar"), `permit (principal, action, resource);`)
	var n atomic.Int32
	ctx, cancel := context.WithCancel(context.Background())
	done, err := File{Path: filepath.Join(dir, "mesh.yaml")}.Watch(ctx, func() { n.Add(1) })
	if err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); <-done }()
	wait := func(what string, want int32) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for n.Load() < want {
			if time.Now().After(deadline) {
				t.Fatalf("no signal for %s", what)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	write(t, filepath.Join(dir, "mesh.yaml"), mesh+"\n")
	wait("a mesh edit", 1)
	write(t, filepath.Join(dir, "policies", "web", "p.cedar"), `permit (principal, action, resource);`)
	wait("a new policy set", 2)
	before := n.Load()
	write(t, filepath.Join(dir, "decisions.jsonl"), "{}\n")
	time.Sleep(700 * time.Millisecond) // past the debounce and its bound
	if n.Load() != before {
		t.Fatal("a file beside the mesh signalled a change")
	}
}
