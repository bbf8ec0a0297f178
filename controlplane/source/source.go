// Package source produces the mesh the control plane serves: validated
// model versions, and a signal when a new version may be there. The file
// source reads one mesh file (and checks route policy sets against the
// policy directory it names); a Kubernetes source will assemble the model
// from objects. The control plane applies what a source loads and keeps
// the last good version when a load fails.
package source

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/meshguard/meshguard/controlplane/model"
	"github.com/meshguard/meshguard/extauthz/policy"
	"github.com/meshguard/meshguard/internal/contract"
	"github.com/meshguard/meshguard/internal/filewatch"
)

// Source yields validated meshes.
type Source interface {
	// Load reads and validates the current version. An error names what
	// is wrong (file, line, field); the caller keeps its last good mesh.
	Load() (*model.Mesh, error)
	// Watch starts watching and returns once every later change will be
	// signalled: it calls changed whenever a new version may be available,
	// until ctx ends, and closes done then. A source that cannot watch
	// returns an error.
	Watch(ctx context.Context, changed func()) (done <-chan struct{}, err error)
	// String names the source for logs and status.
	String() string
}

// File is a mesh file: the mesh, and the policy directory it names (route
// policy sets must exist there; a rollout's candidate must load).
type File struct {
	Path string
}

func (f File) String() string { return f.Path }

// Load reads and validates the file (Parse).
func (f File) Load() (*model.Mesh, error) {
	data, err := os.ReadFile(f.Path)
	if err != nil {
		return nil, err
	}
	m, err := Parse(f.Path, data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.Path, err)
	}
	return m, nil
}

// Watch watches the file's directory and the policy directory the current
// version names, coalescing bursts of writes (editors and Kubernetes
// ConfigMap updates replace files by rename, which directory watches see).
func (f File) Watch(ctx context.Context, changed func()) (<-chan struct{}, error) {
	mesh := filepath.Clean(f.Path)
	dirs := []string{filepath.Dir(mesh)}
	var policies string
	if m, err := f.Load(); err == nil && m.Spec.Policies != "" {
		dirs = append(dirs, m.Spec.Policies)
		policies = filepath.Clean(m.Spec.Policies) + string(filepath.Separator)
	}
	fw, err := filewatch.New(dirs, true)
	if err != nil {
		return nil, err
	}
	// The mesh file and the policy set names; not the logs or run state
	// that often sit beside them.
	fw.Only(func(p string) bool {
		return p == mesh || (policies != "" && (strings.HasPrefix(p, policies) || p+string(filepath.Separator) == policies))
	})
	done := make(chan struct{})
	go func() {
		defer close(done)
		fw.Run(ctx, changed)
	}()
	return done, nil
}

// Parse validates a mesh document read from path: relative paths in it
// (policies, wasm files, federation bundles) are resolved against the
// file's directory, and route policy sets are checked against the policy
// directory it names.
func Parse(path string, data []byte) (*model.Mesh, error) {
	m, err := model.Parse(data, nil)
	if err != nil {
		return nil, err
	}
	if m.Spec.Policies != "" {
		dir := m.Spec.Policies
		if !filepath.IsAbs(dir) {
			dir = filepath.Join(filepath.Dir(path), dir)
		}
		// Only the names matter here: whether a set parses is the authorizer's
		// to report (it keeps the last good version).
		names, err := policy.SetNames(dir)
		if err != nil {
			return nil, fmt.Errorf("spec.policies: %w", err)
		}
		sets := func(s string) bool { return s == contract.DefaultSet || slices.Contains(names, s) }
		// A rollout's candidate must load now: the authorizer would keep
		// the candidate's last good version, or have none, and the rollout
		// would compare against something other than the file's text.
		candidate := func(s string) error {
			_, err := policy.LoadSet(dir, s)
			return err
		}
		if m, err = model.ParseWith(data, model.Checks{Sets: sets, Candidate: candidate}); err != nil {
			return nil, err
		}
		m.Spec.Policies = dir
	}
	base := filepath.Dir(path)
	for i, f := range m.Spec.Filters {
		if f.File != "" && !filepath.IsAbs(f.File) {
			m.Spec.Filters[i].File = filepath.Join(base, f.File)
		}
	}
	for i, f := range m.Spec.Federation {
		if f.BundleFile != "" && !filepath.IsAbs(f.BundleFile) {
			m.Spec.Federation[i].BundleFile = filepath.Join(base, f.BundleFile)
		}
	}
	return m, nil
}
