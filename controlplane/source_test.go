package controlplane

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meshguard/meshguard/controlplane/model"
	"github.com/meshguard/meshguard/controlplane/source"
)

// memSource is a mesh source of the test's own: the control plane serves
// whatever a Source loads, not only files.
type memSource struct {
	mu      sync.Mutex
	mesh    *model.Mesh
	err     error
	changed chan struct{}
}

func (m *memSource) Load() (*model.Mesh, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.mesh, m.err
}

func (m *memSource) Watch(ctx context.Context, changed func()) (<-chan struct{}, error) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				return
			case <-m.changed:
				changed()
			}
		}
	}()
	return done, nil
}

func (m *memSource) String() string { return "memory" }

func (m *memSource) set(mesh *model.Mesh, err error) {
	m.mu.Lock()
	m.mesh, m.err = mesh, err
	m.mu.Unlock()
	m.changed <- struct{}{}
}

func TestTheControlPlaneServesAnySource(t *testing.T) {
	path := testMesh(t)
	first, err := source.File{Path: path}.Load()
	if err != nil {
		t.Fatal(err)
	}
	src := &memSource{mesh: first, changed: make(chan struct{})}
	s, err := New(Config{Source: src, MeshPath: path, Listen: "127.0.0.1:0", CADir: filepath.Join(t.TempDir(), "ca")},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer s.Stop(context.Background())
	if s.Builder.Mesh().Metadata.Name != first.Metadata.Name {
		t.Fatal("the source's mesh is not served")
	}
	// A new version from the source is applied...
	next, _ := source.File{Path: path}.Load()
	next.Spec.Authz.Timeout.Duration = 123 * time.Millisecond
	src.set(next, nil)
	eventually(t, "the new version applied", func() bool { return s.Builder.Mesh().Spec.Authz.Timeout.Duration == 123*time.Millisecond })
	// ...a mesh built wrong is refused before translation, the field named
	// (here: a service others call is gone)...
	broken, _ := source.File{Path: path}.Load()
	broken.Spec.Services = broken.Spec.Services[:len(broken.Spec.Services)-1]
	src.set(broken, nil)
	eventually(t, "the invalid mesh refused", func() bool {
		return s.LastError() != nil && strings.Contains(s.LastError().Error(), `memory: spec.services`) && strings.Contains(s.LastError().Error(), "no service")
	})
	// ...and so is a failing load; the last good version stays served.
	src.set(nil, errors.New("the source is broken"))
	eventually(t, "the failure reported", func() bool { return s.LastError() != nil && strings.Contains(s.LastError().Error(), "broken") })
	if s.Builder.Mesh().Spec.Authz.Timeout.Duration != 123*time.Millisecond || len(s.Builder.Mesh().Spec.Services) != len(first.Spec.Services) {
		t.Fatal("a refused version changed the served mesh")
	}
}
