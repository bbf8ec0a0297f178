package rollout

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/meshguard/meshguard/internal/hashchain"
)

// store keeps the controller's state in dir/state.json (replaced whole,
// by rename, so a crash leaves the old or the new file and never half of
// one) and the audit trail in dir/audit.jsonl (one transition per line,
// appended and synced).
type store struct {
	dir string

	mu    sync.Mutex
	audit *os.File
	chain hashchain.Chain // the audit trail's last line
}

// savedState is state.json.
type savedState struct {
	Version  int         `json:"version"`
	Rollouts []*Rollout  `json:"rollouts"`
	Seen     []savedSeen `json:"seen,omitempty"`
}

type savedSeen struct {
	Key    seenKey    `json:"key"`
	Counts seenCounts `json:"counts"`
}

func openStore(dir string) (*store, error) {
	if dir == "" {
		return nil, errors.New("rollout state directory is required")
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("rollout state: %w", err)
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
	return &store{dir: dir, audit: f, chain: chain}, nil
}

func (s *store) statePath() string { return filepath.Join(s.dir, "state.json") }

// AuditPath is where a controller over dir appends its transitions.
func AuditPath(dir string) string { return filepath.Join(dir, "audit.jsonl") }

// load reads state.json; no file is an empty state.
func (s *store) load() (savedState, error) {
	var st savedState
	data, err := os.ReadFile(s.statePath())
	if errors.Is(err, fs.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return st, fmt.Errorf("rollout state: %w", err)
	}
	if err := json.Unmarshal(data, &st); err != nil {
		return st, fmt.Errorf("rollout state %s is damaged (%v): move it away to start every rollout again from the mesh file", s.statePath(), err)
	}
	if st.Version != 1 {
		return st, fmt.Errorf("rollout state %s: version %d is not supported", s.statePath(), st.Version)
	}
	for _, r := range st.Rollouts {
		if r == nil || r.Route == "" || len(r.Plan) == 0 || r.Index < 0 || r.Index >= len(r.Plan) {
			return st, fmt.Errorf("rollout state %s is damaged (a rollout without a valid plan): move it away to start every rollout again from the mesh file", s.statePath())
		}
	}
	return st, nil
}

func (s *store) save(st savedState) error {
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	tmp := s.statePath() + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o640)
	if err != nil {
		return err
	}
	if _, err := f.Write(append(data, '\n')); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, s.statePath())
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
