package xds

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"sync"
	"time"

	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"google.golang.org/protobuf/types/known/anypb"
)

// Cache implements go-control-plane's cache.Cache for meshguard's snapshots.
// It is safe for concurrent use.
type Cache struct {
	log    *slog.Logger
	status *Tracker

	mu      sync.Mutex
	nodes   map[string]*nodeState
	watchID int64
}

type nodeState struct {
	snap   Snapshot
	setAt  map[string]time.Time // type → when its current version was set
	sotw   map[int64]*sotwWatch
	delta  map[int64]*deltaWatch
	sent   map[string]string // type → version last sent
	reject map[string]string // type → version the node NACKed
}

type sotwWatch struct {
	req *discovery.DiscoveryRequest
	sub cache.Subscription
	ch  chan cache.Response
}

type deltaWatch struct {
	req *discovery.DeltaDiscoveryRequest
	sub cache.Subscription
	ch  chan cache.DeltaResponse
}

var _ cache.Cache = (*Cache)(nil)

// NewCache returns an empty cache reporting to tracker (may be nil).
func NewCache(log *slog.Logger, tracker *Tracker) *Cache {
	if log == nil {
		log = slog.Default()
	}
	if tracker == nil {
		tracker = NewTracker(nil)
	}
	return &Cache{log: log, status: tracker, nodes: map[string]*nodeState{}}
}

func (c *Cache) node(id string) *nodeState {
	n, ok := c.nodes[id]
	if !ok {
		n = &nodeState{
			setAt: map[string]time.Time{}, sotw: map[int64]*sotwWatch{}, delta: map[int64]*deltaWatch{},
			sent: map[string]string{}, reject: map[string]string{},
		}
		c.nodes[id] = n
	}
	return n
}

// SetSnapshot replaces what node is served and answers its open watches for
// every type whose version changed.
func (c *Cache) SetSnapshot(node string, snap Snapshot) {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.node(node)
	for typ, ts := range snap {
		if old := n.snap[typ]; old == nil || old.Version != ts.Version {
			n.setAt[typ] = now
		}
	}
	n.snap = snap
	c.status.setSnapshot(node, snap)
	for id, w := range n.sotw {
		if c.respondSotw(node, n, w) {
			delete(n.sotw, id)
		}
	}
	for id, w := range n.delta {
		if c.respondDelta(node, n, w) {
			delete(n.delta, id)
		}
	}
}

// ClearSnapshot forgets a node (it left the mesh); open watches stay until
// their streams close.
func (c *Cache) ClearSnapshot(node string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n, ok := c.nodes[node]; ok {
		n.snap = nil
	}
	c.status.forget(node)
}

// Snapshot returns the node's current snapshot.
func (c *Cache) Snapshot(node string) Snapshot {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n, ok := c.nodes[node]; ok {
		return n.snap
	}
	return nil
}

// CreateWatch answers a SotW request now if the node lacks the current
// version, or holds it until SetSnapshot brings one. A NACKed version is
// never sent again to the node that rejected it.
func (c *Cache) CreateWatch(req *cache.Request, sub cache.Subscription, ch chan cache.Response) (func(), error) {
	node := req.GetNode().GetId()
	typ := req.GetTypeUrl()
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.node(node)
	if req.GetResponseNonce() != "" {
		if msg := req.GetErrorDetail(); msg != nil {
			n.reject[typ] = c.nacked(node, n, typ, msg.GetMessage())
		} else {
			c.status.ack(node, typ, req.GetVersionInfo(), n.setAt[typ])
		}
	}
	w := &sotwWatch{req: req, sub: sub, ch: ch}
	if c.respondSotw(node, n, w) {
		return func() {}, nil
	}
	return addWatch(c, n.sotw, w), nil
}

// nacked records that node rejected the version of typ it was last sent,
// and returns that version. Called with c.mu held.
func (c *Cache) nacked(node string, n *nodeState, typ, msg string) string {
	rejected := n.sent[typ]
	c.status.nack(node, typ, rejected, msg)
	c.log.Warn("xDS config rejected by proxy; keeping it on its last good config", "node", node, "type", shortType(typ),
		"version", rejected, "error", msg)
	return rejected
}

// addWatch holds w in watches (a node's SotW or delta watches, under c.mu)
// until SetSnapshot answers it or the returned cancel drops it.
func addWatch[W any](c *Cache, watches map[int64]W, w W) (cancel func()) {
	c.watchID++
	id := c.watchID
	watches[id] = w
	return func() {
		c.mu.Lock()
		delete(watches, id)
		c.mu.Unlock()
	}
}

// respondSotw sends the current version if the watch needs it; it reports
// whether the watch was answered.
func (c *Cache) respondSotw(node string, n *nodeState, w *sotwWatch) bool {
	typ := w.req.GetTypeUrl()
	ts := n.snap[typ]
	if ts == nil || n.reject[typ] == ts.Version {
		return false
	}
	if w.req.GetVersionInfo() == ts.Version && !newlyAvailable(w.sub, ts) {
		return false
	}
	resp := &sotwResponse{req: w.req, version: ts.Version, returned: map[string]string{}}
	for _, name := range ts.Names() {
		if w.sub.IsWildcard() || subscribed(w.sub, name) {
			r := ts.Resources[name]
			resp.resources = append(resp.resources, r.Any)
			resp.returned[name] = r.Version
		}
	}
	select {
	case w.ch <- resp:
	default:
		// The ADS channel holds one response per type; a full one means a
		// response for this type is already queued.
		c.log.Error("xDS response channel full; dropping response", "node", node, "type", shortType(typ))
		return false
	}
	n.sent[typ] = ts.Version
	c.status.sent(node, typ, ts.Version)
	return true
}

func subscribed(sub cache.Subscription, name string) bool {
	_, ok := sub.SubscribedResources()[name]
	return ok
}

// newlyAvailable reports whether a subscribed resource exists that the
// client was never sent (it subscribed to a new name at the same version).
func newlyAvailable(sub cache.Subscription, ts *TypeSet) bool {
	known := sub.ReturnedResources()
	if sub.IsWildcard() {
		for _, name := range ts.Names() {
			if _, ok := known[name]; !ok {
				return true
			}
		}
		return false
	}
	for name := range sub.SubscribedResources() {
		if _, ok := known[name]; ok {
			continue
		}
		if _, ok := ts.Resources[name]; ok {
			return true
		}
	}
	return false
}

// CreateDeltaWatch answers an incremental request with the resources whose
// versions the client lacks and the names it should drop, or holds it.
func (c *Cache) CreateDeltaWatch(req *cache.DeltaRequest, sub cache.Subscription, ch chan cache.DeltaResponse) (func(), error) {
	node := req.GetNode().GetId()
	typ := req.GetTypeUrl()
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.node(node)
	if req.GetResponseNonce() != "" {
		if msg := req.GetErrorDetail(); msg != nil {
			c.nacked(node, n, typ, msg.GetMessage())
		} else if v := n.sent[typ]; v != "" {
			c.status.ack(node, typ, v, n.setAt[typ])
		}
	}
	w := &deltaWatch{req: req, sub: sub, ch: ch}
	if c.respondDelta(node, n, w) {
		return func() {}, nil
	}
	return addWatch(c, n.delta, w), nil
}

func (c *Cache) respondDelta(node string, n *nodeState, w *deltaWatch) bool {
	typ := w.req.GetTypeUrl()
	ts := n.snap[typ]
	if ts == nil {
		return false
	}
	known := w.sub.ReturnedResources()
	next := maps.Clone(known)
	if next == nil {
		next = map[string]string{}
	}
	resp := &deltaResponse{req: w.req, version: ts.Version}
	inScope := func(name string) bool { return w.sub.IsWildcard() || subscribed(w.sub, name) }
	for _, name := range ts.Names() {
		r := ts.Resources[name]
		if inScope(name) && known[name] != r.Version {
			resp.resources = append(resp.resources, &discovery.Resource{Name: name, Version: r.Version, Resource: r.Any})
			next[name] = r.Version
		}
	}
	for name := range known {
		if _, ok := ts.Resources[name]; !ok && inScope(name) {
			resp.removed = append(resp.removed, name)
			delete(next, name)
		}
	}
	if len(resp.resources) == 0 && len(resp.removed) == 0 {
		if n.sent[typ] != ts.Version && len(known) > 0 {
			// Nothing differs for this client: it already holds this version.
			n.sent[typ] = ts.Version
			c.status.sent(node, typ, ts.Version)
			c.status.ack(node, typ, ts.Version, n.setAt[typ])
		}
		return false
	}
	resp.next = next
	select {
	case w.ch <- resp:
	default:
		c.log.Error("xDS delta response channel full; dropping response", "node", node, "type", shortType(typ))
		return false
	}
	n.sent[typ] = ts.Version
	c.status.sent(node, typ, ts.Version)
	return true
}

// Fetch (REST xDS) is not served: proxies must stream.
func (c *Cache) Fetch(context.Context, *cache.Request) (cache.Response, error) {
	return nil, errors.New("REST xDS is not supported; use ADS")
}

type sotwResponse struct {
	req       *discovery.DiscoveryRequest
	version   string
	resources []*anypb.Any
	returned  map[string]string
}

func (r *sotwResponse) GetDiscoveryResponse() (*discovery.DiscoveryResponse, error) {
	return &discovery.DiscoveryResponse{VersionInfo: r.version, Resources: r.resources, TypeUrl: r.req.GetTypeUrl()}, nil
}
func (r *sotwResponse) GetRequest() *discovery.DiscoveryRequest { return r.req }
func (r *sotwResponse) GetVersion() (string, error)             { return r.version, nil }
func (r *sotwResponse) GetResponseVersion() string              { return r.version }
func (r *sotwResponse) GetReturnedResources() map[string]string { return r.returned }
func (r *sotwResponse) GetContext() context.Context             { return context.Background() }

type deltaResponse struct {
	req       *discovery.DeltaDiscoveryRequest
	version   string
	resources []*discovery.Resource
	removed   []string
	next      map[string]string
}

func (r *deltaResponse) GetDeltaDiscoveryResponse() (*discovery.DeltaDiscoveryResponse, error) {
	return &discovery.DeltaDiscoveryResponse{SystemVersionInfo: r.version, Resources: r.resources,
		RemovedResources: r.removed, TypeUrl: r.req.GetTypeUrl()}, nil
}
func (r *deltaResponse) GetDeltaRequest() *discovery.DeltaDiscoveryRequest { return r.req }
func (r *deltaResponse) GetSystemVersion() (string, error)                 { return r.version, nil }
func (r *deltaResponse) GetResponseVersion() string                        { return r.version }
func (r *deltaResponse) GetNextVersionMap() map[string]string              { return r.next }
func (r *deltaResponse) GetReturnedResources() map[string]string           { return r.next }
func (r *deltaResponse) GetContext() context.Context                       { return context.Background() }

func shortType(t string) string {
	for i := len(t) - 1; i >= 0; i-- {
		if t[i] == '.' {
			return t[i+1:]
		}
	}
	return t
}
