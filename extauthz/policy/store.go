package policy

import (
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cedar-policy/cedar-go"
)

// Store holds the current policy sets and entities. Reads are lock-free
// (one atomic load per request); reloads are serialised.
type Store struct {
	dir          string
	entitiesPath string
	log          *slog.Logger
	onReload     func(set string, err error)
	resultsMax   int
	schema       Checker

	snap  atomic.Pointer[snapshot]
	ready atomic.Bool

	mu     sync.Mutex // serialises Reload and guards status
	status map[string]*SetStatus
	entErr string
}

type snapshot struct {
	sets     map[string]*Set
	entities cedar.EntityMap
	results  *Results // fresh at every load, even for sets kept from the last
}

// SetStatus is what an operator needs to know about one set.
type SetStatus struct {
	Name      string    `json:"name"`
	Version   string    `json:"version,omitempty"` // version being enforced
	Policies  int       `json:"policies"`
	Files     []string  `json:"files,omitempty"`
	LoadedAt  time.Time `json:"loaded_at,omitzero"`
	LastError string    `json:"last_error,omitempty"` // why the newest files are not enforced
	ErrorAt   time.Time `json:"error_at,omitzero"`
}

// Status is the store's state, for the admin endpoint and `meshguard status`.
type Status struct {
	Ready          bool        `json:"ready"`
	Sets           []SetStatus `json:"sets"`
	EntitiesError  string      `json:"entities_error,omitempty"`
	EntitiesLoaded int         `json:"entities"`
}

// StoreOption configures a Store.
type StoreOption func(*Store)

// WithLogger sets the logger for reload results.
func WithLogger(l *slog.Logger) StoreOption { return func(s *Store) { s.log = l } }

// WithReloadHook is called for every set after each reload attempt, with a
// nil error on success. Metrics hang here.
func WithReloadHook(f func(set string, err error)) StoreOption {
	return func(s *Store) { s.onReload = f }
}

// WithResultCache keeps up to max evaluation results per load (see
// Results); 0, the default, keeps none.
func WithResultCache(max int) StoreOption { return func(s *Store) { s.resultsMax = max } }

// Checker type-checks a policy against a schema (schema.Checker): the
// error names the policy's file and line.
type Checker interface {
	Check(id string, p *cedar.Policy) error
}

// WithSchema refuses, like a parse error, a set with a policy that does
// not type-check against c (strict_schema): the set keeps its last good
// version. Without it, sets are not type-checked.
func WithSchema(c Checker) StoreOption { return func(s *Store) { s.schema = c } }

// NewStore creates a store over a policy directory and an optional entities
// file. Call Reload to load them.
func NewStore(dir, entitiesPath string, opts ...StoreOption) *Store {
	s := &Store{
		dir:          dir,
		entitiesPath: entitiesPath,
		log:          slog.Default(),
		onReload:     func(string, error) {},
		status:       map[string]*SetStatus{},
	}
	for _, o := range opts {
		o(s)
	}
	s.snap.Store(&snapshot{sets: map[string]*Set{}, entities: cedar.EntityMap{}})
	return s
}

// Dir is the policy directory.
func (s *Store) Dir() string { return s.dir }

// EntitiesPath is the entities file, or "".
func (s *Store) EntitiesPath() string { return s.entitiesPath }

// Lookup returns the named set with the entities and result cache loaded
// with it, read from one load: a Reload between separate calls to Set and
// Entities could pair a set with another load's entities.
func (s *Store) Lookup(name string) (View, bool) {
	snap := s.snap.Load()
	set, ok := snap.sets[name]
	return View{Set: set, Entities: snap.entities, Results: snap.results, sets: snap.sets}, ok
}

// Results is the current load's result cache (nil when disabled).
func (s *Store) Results() *Results { return s.snap.Load().results }

// Set returns the named set.
func (s *Store) Set(name string) (*Set, bool) {
	set, ok := s.snap.Load().sets[name]
	return set, ok
}

// Entities returns the current static entity store. Callers must not modify it.
func (s *Store) Entities() cedar.EntityMap { return s.snap.Load().entities }

// Ready reports whether a complete, error-free load has happened at least once.
func (s *Store) Ready() bool { return s.ready.Load() }

// Reload re-reads the directory. A set that fails to parse keeps its last
// good version; a set whose directory disappeared is removed. It returns an
// error describing every set that failed, or nil.
func (s *Store) Reload() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	old := s.snap.Load()
	// Results start empty at every load: a set kept from the last load may
	// now see other entities.
	next := &snapshot{sets: map[string]*Set{}, entities: old.entities, results: NewResults(s.resultsMax)}
	var errs []error

	ents, err := LoadEntities(s.entitiesPath)
	if err != nil {
		errs = append(errs, err)
		s.entErr = err.Error()
		s.log.Error("entities not reloaded; keeping last good version", "path", s.entitiesPath, "err", err)
		s.onReload("_entities", err)
	} else {
		next.entities = ents
		s.entErr = ""
	}

	sources, err := readDir(s.dir)
	if err != nil {
		// The directory itself is unreadable: keep everything.
		s.log.Error("policy directory not reloaded; keeping last good sets", "dir", s.dir, "err", err)
		s.onReload("_dir", err)
		next.sets = old.sets
		s.snap.Store(next)
		return fmt.Errorf("policies %s: %w", s.dir, err)
	}
	for name, files := range sources {
		st := s.status[name]
		if st == nil {
			st = &SetStatus{Name: name}
			s.status[name] = st
		}
		set, err := parseSet(name, files)
		if err == nil && s.schema != nil {
			err = set.Check(s.schema)
		}
		if err != nil {
			err = fmt.Errorf("policy set %q: %w", name, err)
			errs = append(errs, err)
			st.LastError, st.ErrorAt = err.Error(), now
			if prev, ok := old.sets[name]; ok {
				next.sets[name] = prev
				s.log.Error("policy set not reloaded; keeping last good version", "policy_set", name, "version", prev.Version, "err", err)
			} else {
				s.log.Error("policy set not loaded; requests for it are denied", "policy_set", name, "err", err)
			}
			s.onReload(name, err)
			continue
		}
		if prev, ok := old.sets[name]; !ok || prev.Version != set.Version {
			s.log.Info("policy set loaded", "policy_set", name, "version", set.Version, "policies", set.Len())
		}
		next.sets[name] = set
		st.Version, st.Policies, st.Files, st.LoadedAt = set.Version, set.Len(), set.Files, now
		st.LastError, st.ErrorAt = "", time.Time{}
		s.onReload(name, nil)
	}
	for name := range s.status {
		if _, ok := sources[name]; !ok {
			if _, had := old.sets[name]; had {
				s.log.Warn("policy set removed; requests for it are denied", "policy_set", name)
			}
			delete(s.status, name)
		}
	}
	s.snap.Store(next)
	if len(errs) == 0 {
		s.ready.Store(true)
		return nil
	}
	return joinErrors(errs)
}

// Status returns a copy of the store's state, sets sorted by name.
func (s *Store) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Status{Ready: s.Ready(), EntitiesError: s.entErr, EntitiesLoaded: len(s.snap.Load().entities)}
	for _, name := range slices.Sorted(maps.Keys(s.status)) {
		st.Sets = append(st.Sets, *s.status[name])
	}
	return st
}

func joinErrors(errs []error) error {
	slices.SortFunc(errs, func(a, b error) int {
		if a.Error() < b.Error() {
			return -1
		}
		return 1
	})
	if len(errs) == 1 {
		return errs[0]
	}
	msg := fmt.Sprintf("%d errors:", len(errs))
	for _, e := range errs {
		msg += "\n  " + e.Error()
	}
	return fmt.Errorf("%s", msg)
}
