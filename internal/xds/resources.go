package xds

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"sync"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// Type URLs served.
const (
	ListenerType = "type.googleapis.com/envoy.config.listener.v3.Listener"
	RouteType    = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
	ClusterType  = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
	EndpointType = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
	SecretType   = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret"
)

// Types lists the served types in the order Envoy should receive them.
var Types = []string{ClusterType, EndpointType, ListenerType, RouteType, SecretType}

// Resource is one resource, marshaled once and shared by every response
// that carries it.
type Resource struct {
	Name    string
	Version string // hash of the marshaled bytes
	Any     *anypb.Any
}

// TypeSet is an immutable set of resources of one type with a content
// version: equal content, equal version, whatever order it was built in.
type TypeSet struct {
	TypeURL   string
	Version   string
	Resources map[string]*Resource
	names     []string // sorted
}

// Named is a resource message with its xDS name.
type Named struct {
	Name string
	Msg  proto.Message
}

// Interner deduplicates marshaled resources and type sets across nodes, so
// a thousand sidecars with the same route configuration hold one copy.
// Entries are kept for the interner's lifetime; make a new one per generation
// of the mesh to let old content go.
type Interner struct {
	mu   sync.Mutex
	res  map[string]*Resource        // type|name|version
	sets map[string]*TypeSet         // type|version
	ptr  map[proto.Message]*Resource // the same message value is marshalled once
}

// NewInterner returns an empty interner.
func NewInterner() *Interner {
	return &Interner{res: map[string]*Resource{}, sets: map[string]*TypeSet{}, ptr: map[proto.Message]*Resource{}}
}

// TypeSet builds (or finds) the set of typeURL resources for items.
func (in *Interner) TypeSet(typeURL string, items []Named) (*TypeSet, error) {
	ts := &TypeSet{TypeURL: typeURL, Resources: make(map[string]*Resource, len(items))}
	for _, it := range items {
		if _, dup := ts.Resources[it.Name]; dup {
			return nil, fmt.Errorf("%s: duplicate resource name %q", typeURL, it.Name)
		}
		r, err := in.resource(typeURL, it)
		if err != nil {
			return nil, err
		}
		ts.Resources[it.Name] = r
		ts.names = append(ts.names, it.Name)
	}
	slices.Sort(ts.names)
	h := sha256.New()
	for _, n := range ts.names {
		fmt.Fprintf(h, "%s\x00%s\x00", n, ts.Resources[n].Version)
	}
	ts.Version = hex.EncodeToString(h.Sum(nil)[:8])
	key := typeURL + "|" + ts.Version
	in.mu.Lock()
	defer in.mu.Unlock()
	if prev, ok := in.sets[key]; ok {
		return prev, nil
	}
	in.sets[key] = ts
	return ts, nil
}

func (in *Interner) resource(typeURL string, it Named) (*Resource, error) {
	in.mu.Lock()
	r, ok := in.ptr[it.Msg]
	in.mu.Unlock()
	if ok && r.Name == it.Name {
		return r, nil
	}
	// Deterministic: maps (per-filter configs, context extensions) must
	// marshal identically, or equal content would get a new version.
	a := &anypb.Any{}
	if err := anypb.MarshalFrom(a, it.Msg, proto.MarshalOptions{Deterministic: true}); err != nil {
		return nil, fmt.Errorf("%s %s: %w", typeURL, it.Name, err)
	}
	if a.TypeUrl != typeURL {
		return nil, fmt.Errorf("resource %s is a %s, not a %s", it.Name, a.TypeUrl, typeURL)
	}
	sum := sha256.Sum256(a.Value)
	r = &Resource{Name: it.Name, Version: hex.EncodeToString(sum[:8]), Any: a}
	key := typeURL + "|" + it.Name + "|" + r.Version
	in.mu.Lock()
	defer in.mu.Unlock()
	if prev, ok := in.res[key]; ok {
		r = prev
	} else {
		in.res[key] = r
	}
	in.ptr[it.Msg] = r
	return r, nil
}

// Names lists the set's resource names, sorted.
func (ts *TypeSet) Names() []string { return ts.names }

// Snapshot is what one node is served: a type set per type URL. It must not
// be modified after it is given to the cache.
type Snapshot map[string]*TypeSet
