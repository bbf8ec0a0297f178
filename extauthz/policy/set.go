package policy

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"iter"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/cedar-policy/cedar-go"

	"github.com/meshguard/meshguard/internal/contract"
)

// DefaultSet is the set formed by the *.cedar files at the root of the policy directory.
const DefaultSet = contract.DefaultSet

// MaxFileSize bounds a single policy file.
const MaxFileSize = 4 << 20

// Set is one immutable, parsed policy set.
type Set struct {
	Name    string
	Version string   // content hash of the set's files
	Files   []string // paths relative to the set's directory, sorted

	policies policyList
	index    scopeIndex // nil for small sets
	forbids  map[cedar.PolicyID]bool
	context  *Uses

	with *usesMemo // UsesWith's results
}

// usesMemo memoizes UsesWith: *Set → *Uses, at most maxUsesWith entries.
type usesMemo struct {
	m sync.Map
	n atomic.Int32
}

// maxUsesWith bounds UsesWith's memo. A set meets the sets of its own load
// (a handful of candidates); one kept across failed reloads meets each
// new load's, which the bound stops from piling up.
const maxUsesWith = 64

// policyList is a set's policies in ID order. Authorize walks it once per
// request; a slice walks faster than cedar.PolicySet's map.
type policyList []listedPolicy

type listedPolicy struct {
	id     cedar.PolicyID
	policy *cedar.Policy
}

// All implements cedar.PolicyIterator.
func (l policyList) All() iter.Seq2[cedar.PolicyID, *cedar.Policy] {
	return func(yield func(cedar.PolicyID, *cedar.Policy) bool) {
		for _, p := range l {
			if !yield(p.id, p.policy) {
				return
			}
		}
	}
}

// ContextUses is what the set's policies observe of the request context;
// the rest of the context cannot change the set's decisions.
func (s *Set) ContextUses() *Uses { return s.context }

// UsesWith is what s or o observes of the context (Union): one context
// built for both serves a request evaluated by both, as a rollout route's
// is. Memoized per o, so a request does not pay for the union.
func (s *Set) UsesWith(o *Set) *Uses {
	if o == nil || o == s {
		return s.context
	}
	if s.with == nil {
		return Union(s.context, o.context)
	}
	if u, ok := s.with.m.Load(o); ok {
		return u.(*Uses)
	}
	u := Union(s.context, o.context)
	if s.with.n.Load() < maxUsesWith {
		if _, loaded := s.with.m.LoadOrStore(o, u); !loaded {
			s.with.n.Add(1)
		}
	}
	return u
}

// Len is the number of policies in the set.
func (s *Set) Len() int { return len(s.policies) }

// IDs lists the set's policy IDs, sorted.
func (s *Set) IDs() []string {
	ids := make([]string, len(s.policies))
	for i, p := range s.policies {
		ids[i] = string(p.id)
	}
	return ids
}

// Check type-checks every policy of the set with c, and reports every
// policy that fails, in ID order.
func (s *Set) Check(c Checker) error {
	var errs []error
	for _, p := range s.policies {
		if err := c.Check(string(p.id), p.policy); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// source is one policy file's name (relative to its set directory) and content.
type source struct {
	name string
	data []byte
}

// parseSet builds a set from its files. Any parse error or duplicate ID fails
// the whole set: a set is enforced all or nothing.
func parseSet(name string, files []source) (*Set, error) {
	slices.SortFunc(files, func(a, b source) int { return strings.Compare(a.name, b.name) })
	ps := cedar.NewPolicySet()
	forbids := map[cedar.PolicyID]bool{}
	h := sha256.New()
	var names []string
	for _, f := range files {
		names = append(names, f.name)
		fmt.Fprintf(h, "%s\x00%d\x00", f.name, len(f.data))
		h.Write(f.data)
		list, err := cedar.NewPolicyListFromBytes(f.name, f.data)
		if err != nil {
			return nil, fmt.Errorf("%s: %s", f.name, strings.ReplaceAll(err.Error(), "<input>", f.name))
		}
		for i, p := range list {
			local := strconv.Itoa(i)
			if v, ok := p.Annotations()["id"]; ok {
				local = string(v)
			}
			id := cedar.PolicyID(name + "/" + f.name + "#" + local)
			if !ps.Add(id, p) {
				pos := p.Position()
				return nil, fmt.Errorf("%s:%d:%d: duplicate policy id %q", f.name, pos.Line, pos.Column, id)
			}
			if p.Effect() == cedar.Forbid {
				forbids[id] = true
			}
		}
	}
	list := make(policyList, 0, len(forbids))
	for id, p := range ps.All() {
		list = append(list, listedPolicy{id, p})
	}
	slices.SortFunc(list, func(a, b listedPolicy) int { return strings.Compare(string(a.id), string(b.id)) })
	return &Set{
		Name:     name,
		Version:  hex.EncodeToString(h.Sum(nil))[:16],
		Files:    names,
		policies: list,
		index:    newScopeIndex(list),
		forbids:  forbids,
		context:  contextUses(ps),
		with:     &usesMemo{},
	}, nil
}

// ParseSet parses in-memory policy text as set name; file names are used in IDs and errors.
func ParseSet(name string, files map[string]string) (*Set, error) {
	src := make([]source, 0, len(files))
	for n, d := range files {
		src = append(src, source{name: n, data: []byte(d)})
	}
	return parseSet(name, src)
}

// readDir discovers the sets under root: the root's own *.cedar files form
// DefaultSet, each subdirectory one set. Names starting with "." are skipped,
// which also skips the "..data" indirection of Kubernetes ConfigMap mounts
// while following its symlinks.
func readDir(root string) (map[string][]source, error) {
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("read policy directory: %w", err)
	}
	sets := map[string][]source{}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		p := filepath.Join(root, e.Name())
		fi, err := os.Stat(p) // follows symlinks
		if err != nil {
			return nil, fmt.Errorf("stat %s: %w", p, err)
		}
		switch {
		case fi.IsDir():
			if !contract.ValidSetName(e.Name()) {
				return nil, fmt.Errorf("%s: directory name is not a valid policy set name (letters, digits, '.', '_', '-')", p)
			}
			// Read the set from where its link points now: a writer
			// swapping versions (a ConfigMap volume, meshguard policy
			// sync) cannot mix two versions' files into one set.
			real, err := filepath.EvalSymlinks(p)
			if err != nil {
				return nil, fmt.Errorf("resolve %s: %w", p, err)
			}
			files, err := readTree(real, "")
			if err != nil {
				return nil, err
			}
			if len(files) == 0 {
				continue // no policies (test files only, say): not a set
			}
			sets[e.Name()] = files
		case strings.HasSuffix(e.Name(), ".cedar"):
			data, err := readFile(p, fi.Size())
			if err != nil {
				return nil, err
			}
			sets[DefaultSet] = append(sets[DefaultSet], source{name: e.Name(), data: data})
		}
	}
	if d, ok := sets[DefaultSet]; ok && len(d) == 0 {
		delete(sets, DefaultSet)
	}
	return sets, nil
}

func readTree(dir, rel string) ([]source, error) {
	entries, err := os.ReadDir(filepath.Join(dir, rel))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", dir, err)
	}
	var out []source
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		r := filepath.Join(rel, e.Name())
		p := filepath.Join(dir, r)
		fi, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("stat %s: %w", p, err)
		}
		if fi.IsDir() {
			sub, err := readTree(dir, r)
			if err != nil {
				return nil, err
			}
			out = append(out, sub...)
			continue
		}
		if !strings.HasSuffix(e.Name(), ".cedar") {
			continue
		}
		data, err := readFile(p, fi.Size())
		if err != nil {
			return nil, err
		}
		out = append(out, source{name: filepath.ToSlash(r), data: data})
	}
	return out, nil
}

func readFile(p string, size int64) ([]byte, error) {
	if size > MaxFileSize {
		return nil, fmt.Errorf("%s: %d bytes, over the %d byte limit", p, size, MaxFileSize)
	}
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	return data, nil
}

// SetNames lists the sets a policy directory defines, without parsing them:
// a set exists whether or not its files currently parse.
func SetNames(root string) ([]string, error) {
	sources, err := readDir(root)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(sources))
	for n := range sources {
		names = append(names, n)
	}
	slices.Sort(names)
	return names, nil
}

// LoadSet reads and parses one set of a policy directory, as a reload
// would: DefaultSet from the root's files, any other from its subdirectory.
func LoadSet(root, name string) (*Set, error) {
	var files []source
	var err error
	if name == DefaultSet {
		var sets map[string][]source
		if sets, err = readDir(root); err == nil {
			files = sets[DefaultSet]
		}
	} else if !contract.ValidSetName(name) {
		return nil, fmt.Errorf("%q is not a valid policy set name", name)
	} else {
		files, err = readTree(filepath.Join(root, name), "")
	}
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("policy set %q has no .cedar files", name)
	}
	return parseSet(name, files)
}

// ErrUnknownSet is returned for a set that is not loaded.
var ErrUnknownSet = errors.New("unknown policy set")
