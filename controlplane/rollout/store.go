package rollout

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/meshguard/meshguard/internal/hashchain"
)

// StateStore keeps the controller's state (JSON) where the replicas of one
// control plane find it: a file for one replica (FileState), a Kubernetes
// ConfigMap for several. Save replaces the whole state at once.
type StateStore interface {
	// Load returns the saved state; nil without error when there is none.
	Load(ctx context.Context) ([]byte, error)
	Save(ctx context.Context, state []byte) error
	// String names the store in errors ("rollout state <it> is damaged").
	String() string
}

// FileState keeps the state in one file, replaced whole by rename, so a
// crash leaves the old or the new file and never half of one.
type FileState struct{ Path string }

func (f FileState) String() string { return f.Path }

// Load reads the file; no file is no state.
func (f FileState) Load(context.Context) ([]byte, error) {
	data, err := os.ReadFile(f.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return data, err
}

// Save writes the file's replacement, syncs it and renames it in place.
func (f FileState) Save(_ context.Context, data []byte) error {
	tmp := f.Path + ".tmp"
	w, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o640)
	if err != nil {
		return err
	}
	if _, err := w.Write(data); err != nil {
		w.Close()
		return err
	}
	if err := w.Sync(); err != nil {
		w.Close()
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, f.Path)
}

// store keeps the controller's state in a StateStore (default
// dir/state.json) and the audit trail in dir/audit.jsonl (one transition
// per line, appended and synced).
type store struct {
	dir   string
	state StateStore

	mu    sync.Mutex
	audit *os.File
	chain hashchain.Chain // the audit trail's last line
}

// savedState is the state a StateStore keeps.
type savedState struct {
	Version  int         `json:"version"`
	Rollouts []*Rollout  `json:"rollouts"`
	Seen     []savedSeen `json:"seen,omitempty"`
}

type savedSeen struct {
	Key    seenKey    `json:"key"`
	Counts seenCounts `json:"counts"`
}

func openStore(dir string, state StateStore) (*store, error) {
	if dir == "" {
		return nil, errors.New("rollout state directory is required")
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("rollout state: %w", err)
	}
	if state == nil {
		state = FileState{Path: filepath.Join(dir, "state.json")}
	}
	// The audit trail is a hash chain (meshguard audit verify): a restart
	// continues it from the file's last line.
	chain, err := hashchain.Resume(AuditPath(dir))
	if err != nil {
		return nil, fmt.Errorf("rollout audit: %w", err)
	}
	f, err := os.OpenFile(AuditPath(dir), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return nil, fmt.Errorf("rollout audit: %w", err)
	}
	return &store{dir: dir, state: state, audit: f, chain: chain}, nil
}

// AuditPath is where a controller over dir appends its transitions.
func AuditPath(dir string) string { return filepath.Join(dir, "audit.jsonl") }

// storeTimeout bounds one load or save of the state.
const storeTimeout = 10 * time.Second

// load reads the saved state; none is an empty state.
func (s *store) load() (savedState, error) {
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	data, err := s.state.Load(ctx)
	if err != nil {
		return savedState{}, fmt.Errorf("rollout state %s: %w", s.state, err)
	}
	if data == nil {
		return savedState{}, nil
	}
	return parseState(data, s.state.String())
}

// parseState decodes and checks a saved state; where names its origin.
func parseState(data []byte, where string) (savedState, error) {
	var st savedState
	if err := json.Unmarshal(data, &st); err != nil {
		return st, fmt.Errorf("rollout state %s is damaged (%v): move it away to start every rollout again from the mesh", where, err)
	}
	if st.Version != 1 {
		return st, fmt.Errorf("rollout state %s: version %d is not supported", where, st.Version)
	}
	for _, r := range st.Rollouts {
		if r == nil || r.Route == "" || len(r.Plan) == 0 || r.Index < 0 || r.Index >= len(r.Plan) {
			return st, fmt.Errorf("rollout state %s is damaged (a rollout without a valid plan): move it away to start every rollout again from the mesh", where)
		}
	}
	return st, nil
}

func (s *store) save(st savedState) error {
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	return s.state.Save(ctx, append(data, '\n'))
}

func (s *store) appendAudit(t Transition) error {
	line, err := json.Marshal(t)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.audit == nil {
		return errors.New("audit file closed")
	}
	before := s.chain
	sealed, _ := s.chain.Seal(line)
	if _, err := s.audit.Write(sealed); err != nil {
		s.chain = before // the next line links to what the file has
		return err
	}
	return s.audit.Sync()
}

func (s *store) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.audit != nil {
		_ = s.audit.Close()
		s.audit = nil
	}
}
