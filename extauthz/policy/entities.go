package policy

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/cedar-policy/cedar-go"
)

// MaxEntitiesSize bounds the entities file.
const MaxEntitiesSize = 64 << 20

// LoadEntities reads a Cedar entities JSON file (the format of the Cedar
// documentation: a list of {uid, parents, attrs}). An empty path yields an
// empty store.
func LoadEntities(path string) (cedar.EntityMap, error) {
	if path == "" {
		return cedar.EntityMap{}, nil
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("entities: %w", err)
	}
	if fi.Size() > MaxEntitiesSize {
		return nil, fmt.Errorf("entities %s: %d bytes, over the %d byte limit", path, fi.Size(), MaxEntitiesSize)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("entities: %w", err)
	}
	var m cedar.EntityMap
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("entities %s: %w", path, err)
	}
	if m == nil {
		m = cedar.EntityMap{}
	}
	return m, nil
}

// Overlay serves one per-request entity (the principal) over a shared,
// read-only store. Copying the store per request would cost tens of
// microseconds at a thousand entities; the overlay costs one comparison.
type Overlay struct {
	Static cedar.EntityMap
	Extra  *cedar.Entity
}

// Get implements cedar.EntityGetter.
func (o Overlay) Get(uid cedar.EntityUID) (cedar.Entity, bool) {
	if o.Extra != nil && o.Extra.UID == uid {
		return *o.Extra, true
	}
	e, ok := o.Static[uid]
	return e, ok
}

// Merge combines an entity derived from the request (token claims, SPIFFE ID)
// with the operator's static definition of the same UID, if any: parents are
// united; derived attributes win, static ones fill the gaps.
func Merge(derived cedar.Entity, static cedar.EntityMap) cedar.Entity {
	s, ok := static[derived.UID]
	if !ok {
		return derived
	}
	parents := make([]cedar.EntityUID, 0, derived.Parents.Len()+s.Parents.Len())
	for p := range derived.Parents.All() {
		parents = append(parents, p)
	}
	for p := range s.Parents.All() {
		parents = append(parents, p)
	}
	attrs := s.Attributes.Map()
	if attrs == nil {
		attrs = cedar.RecordMap{}
	}
	for k, v := range derived.Attributes.All() {
		attrs[k] = v
	}
	return cedar.Entity{
		UID:        derived.UID,
		Parents:    cedar.NewEntityUIDSet(parents...),
		Attributes: cedar.NewRecord(attrs),
		Tags:       s.Tags,
	}
}
